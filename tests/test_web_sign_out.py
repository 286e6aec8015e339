"""Signing out of the key pages ends the session on the server: a copy of the cookie taken
before, and its CSRF token, open nothing afterwards."""

from sqlalchemy import func, select

from app.directory.models import ApiKey
from app.web.session import COOKIE
from tests.test_web_dashboard import sign_in
from tests.test_web_pages import csrf_of


async def _signed_in_keys_page(client, territory):
    r = await sign_in(client, territory.coordinator, "/coordination/cles")
    assert r.status_code == 303, r.text
    page = await client.get("/coordination/cles")
    assert page.status_code == 200
    return client.cookies[COOKIE], csrf_of(page.text)


async def test_cookie_copied_before_sign_out_no_longer_opens_the_keys_page(client, territory):
    cookie, csrf = await _signed_in_keys_page(client, territory)
    assert (await client.post("/deconnexion", data={"csrf": csrf})).status_code == 303
    client.cookies.set(COOKIE, cookie)
    r = await client.get("/coordination/cles")
    assert r.status_code == 303 and r.headers["location"].startswith("/connexion")


async def test_csrf_token_of_a_signed_out_session_creates_no_key(client, territory, session):
    cookie, csrf = await _signed_in_keys_page(client, territory)
    before = await session.scalar(select(func.count()).select_from(ApiKey))
    assert (await client.post("/deconnexion", data={"csrf": csrf})).status_code == 303
    client.cookies.set(COOKIE, cookie)
    r = await client.post(
        "/coordination/cles", data={"csrf": csrf, "role": "dashboard", "name": "volée"}
    )
    assert r.status_code == 303 and r.headers["location"].startswith("/connexion")
    assert await session.scalar(select(func.count()).select_from(ApiKey)) == before


async def test_signing_out_ends_only_that_session(client, territory):
    first, _ = await _signed_in_keys_page(client, territory)
    client.cookies.clear()
    _, csrf = await _signed_in_keys_page(client, territory)
    assert (await client.post("/deconnexion", data={"csrf": csrf})).status_code == 303
    client.cookies.set(COOKIE, first)
    assert (await client.get("/coordination/cles")).status_code == 200
