"""/agenda/connexion does the same work before answering whatever the address: the account
lookup, the link and the e-mail all come after the answer, so that timing cannot tell a known
address from an unknown one."""

import httpx
from sqlalchemy import event

from app.main import create_app
from tests.test_agenda_page import EMAIL, account_id, csrf_of, settings, smtp

__all__ = ["account_id", "settings", "smtp"]  # fixtures, imported for this module


async def _ask(settings, sessionmaker, connection, email: str) -> list[str]:
    """Ask for a link; the order in which the answer left and the account was looked up."""
    order: list[str] = []
    app = create_app(settings)
    app.state.sessionmaker = sessionmaker

    async def recording(scope, receive, send):
        async def sending(message):
            if message["type"] == "http.response.body" and not message.get("more_body"):
                order.append("answer")
            await send(message)

        await app(scope, receive, sending)

    def on_statement(conn, cursor, statement, *args):
        if "regulator_account" in statement:
            order.append("lookup")

    event.listen(connection.sync_connection, "before_cursor_execute", on_statement)
    try:
        transport = httpx.ASGITransport(app=recording)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            form = await http.get("/agenda/connexion")
            order.clear()
            r = await http.post(
                "/agenda/connexion", data={"csrf": csrf_of(form.text), "email": email}
            )
            assert r.status_code == 200
    finally:
        event.remove(connection.sync_connection, "before_cursor_execute", on_statement)
    return order


async def test_a_known_address_is_looked_up_only_after_the_answer(
    settings, sessionmaker, connection, account_id, smtp
):
    order = await _ask(settings, sessionmaker, connection, EMAIL)
    assert order[0] == "answer" and "lookup" in order
    await smtp.inbox.wait(1)  # and the link still leaves


async def test_an_unknown_address_gets_the_same_answer_before_any_lookup(
    settings, sessionmaker, connection, account_id
):
    order = await _ask(settings, sessionmaker, connection, "personne@inconnu.fr")
    assert order[0] == "answer" and "lookup" in order
