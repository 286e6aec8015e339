"""The service never connects to its own network on a client's behalf: webhook and agenda
feed URLs are refused at registration when private by their form or their DNS answer, and every
connection (delivery, fetch, each redirect) resolves once, checks, and connects to the address
checked. Failures are recorded in the same words whatever listens where."""

import ipaddress
import socket
import uuid

import httpx
import pytest
from sqlalchemy import select

from app import outbound_urls
from app.config import get_settings
from app.outbound_urls import COULD_NOT_CONNECT, guarded_client, is_public
from app.outbox.models import OutboxMessage
from app.sas_bridge.feed_fetch import FeedError, feed_client, fetch
from app.sas_bridge.outbox import deliver_due
from tests.conftest import assert_problem
from tests.receiver import Receiver
from tests.test_bookings import book
from tests.test_slot_search import add_slot

PRIVATE_BY_FORM = (
    "https://localhost/hook",
    "https://localhost./hook",
    "https://LOCALHOST./hook",
    "https://db.internal./hook",
    "https://[::1]/hook",
    "https://[::127.0.0.1]/hook",
    "https://[::ffff:127.0.0.1]/hook",
    "https://[::ffff:10.0.0.1]/hook",
    "https://[64:ff9b::7f00:1]/hook",
    "https://[64:ff9b::a00:1]/hook",
    "https://[2002:7f00:1::]/hook",
    "https://[fe80::1]/hook",
    "https://[fd12:3456::1]/hook",
    "https://2130706433/hook",
    "https://0x7f000001/hook",
    "https://0177.0.0.1/hook",
    "https://127.1/hook",
    "https://0/hook",
    "https://169.254.169.254/latest/meta-data",
    "https://100.64.0.1/hook",
    "https://192.168.1.1/hook",
)


@pytest.fixture
def dns(monkeypatch):
    """A DNS of the test's making (the sandbox has none): name -> addresses, calls counted."""
    answers: dict[str, list[str]] = {}
    calls: list[str] = []

    async def resolve(host, port):
        calls.append(host)
        if host in answers:
            return [ipaddress.ip_address(a) for a in answers[host]]
        try:
            return [ipaddress.ip_address(host)]
        except ValueError:
            raise socket.gaierror(socket.EAI_NONAME, "unknown") from None

    monkeypatch.setattr(outbound_urls, "resolve", resolve)
    answers["calls"] = calls  # type: ignore[assignment]
    return answers


@pytest.fixture
async def receiver():
    r = await Receiver().start()
    yield r
    await r.stop()


def test_ipv6_forms_embedding_a_private_ipv4_address_are_not_public():
    for text in ("::ffff:127.0.0.1", "::127.0.0.1", "64:ff9b::7f00:1", "64:ff9b::c0a8:101",
                 "2002:a00:1::1", "64:ff9b:1::1", "2001::1"):  # fmt: skip
        assert not is_public(ipaddress.ip_address(text)), text
    for text in ("93.184.216.34", "64:ff9b::5db8:d822", "2606:4700::1111", "::ffff:93.184.216.34"):
        assert is_public(ipaddress.ip_address(text)), text


async def test_webhook_registration_refuses_private_hosts_in_every_notation(client, territory):
    for url in PRIVATE_BY_FORM:
        r = await client.post("/v1/webhooks", json={"url": url}, headers=territory.practice)
        assert assert_problem(r, 422)["errors"][0]["loc"] == ["body", "url"], url


async def test_feed_registration_refuses_private_hosts_in_every_notation(
    client, territory, monkeypatch
):
    monkeypatch.setattr(get_settings(), "feed_allow_insecure_urls", False)
    path = f"/v1/practitioners/{territory.practitioner_id}/agenda-feed"
    for url in PRIVATE_BY_FORM:
        r = await client.put(path, json={"url": url, "format": "ical"}, headers=territory.practice)
        assert assert_problem(r, 422)["errors"][0]["loc"] == ["body", "url"], url


async def test_webhook_registration_refuses_a_name_that_resolves_to_a_private_address(
    client, territory, dns
):
    dns["hooks.example.org"] = ["93.184.216.34", "127.0.0.1"]
    r = await client.post(
        "/v1/webhooks", json={"url": "https://hooks.example.org/x"}, headers=territory.practice
    )
    assert assert_problem(r, 422)["errors"][0]["msg"] == "must be a public host"
    dns["hooks.example.org"] = ["93.184.216.34"]
    r = await client.post(
        "/v1/webhooks", json={"url": "https://hooks.example.org/x"}, headers=territory.practice
    )
    assert r.status_code == 201, r.text


async def test_delivery_refuses_a_name_that_resolves_to_a_private_address_since_registration(
    client, territory, sessionmaker, session, receiver, dns, monkeypatch
):
    monkeypatch.setattr(get_settings(), "outbox_max_attempts", 1)
    dns["hooks.example.org"] = ["93.184.216.34"]
    r = await client.post(
        "/v1/webhooks",
        json={"url": f"https://hooks.example.org:{receiver.url.rsplit(':', 1)[1]}/x"},
        headers=territory.practice,
    )
    assert r.status_code == 201, r.text
    dns["hooks.example.org"] = ["127.0.0.1"]  # the DNS answer changed (rebinding)
    await book(client, territory, await add_slot(client, territory, territory.practitioner_id, 3))
    async with guarded_client(lambda: False, timeout=2) as http:
        assert (await deliver_due(sessionmaker, http))["failed"] == 1
    assert receiver.received == []
    message = await session.scalar(
        select(OutboxMessage).where(OutboxMessage.endpoint_id == uuid.UUID(r.json()["id"]))
    )
    await session.refresh(message)
    assert message.last_error == COULD_NOT_CONNECT


async def test_delivery_errors_read_the_same_whatever_listens_on_the_port(
    client, territory, sessionmaker, session, monkeypatch
):
    monkeypatch.setattr(get_settings(), "webhook_allow_insecure_urls", True)
    monkeypatch.setattr(get_settings(), "outbox_max_attempts", 1)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    urls = [f"http://127.0.0.1:{closed}/hook", "http://127.0.0.1:5432/hook"]  # PostgreSQL
    for url in urls:
        r = await client.post("/v1/webhooks", json={"url": url}, headers=territory.practice)
        assert r.status_code == 201, r.text
    await book(client, territory, await add_slot(client, territory, territory.practitioner_id, 3))
    async with guarded_client(lambda: True, timeout=2) as http:
        assert (await deliver_due(sessionmaker, http))["failed"] == 2
    errors = (await session.scalars(select(OutboxMessage.last_error))).all()
    assert errors and set(errors) == {COULD_NOT_CONNECT}


async def test_connection_goes_to_the_address_resolved_once_and_keeps_the_host_name(receiver, dns):
    dns["hooks.example.test"] = ["127.0.0.1"]
    port = receiver.url.rsplit(":", 1)[1]
    async with guarded_client(lambda: True, timeout=2) as http:
        r = await http.post(f"http://hooks.example.test:{port}/pinned", content=b"{}")
    assert r.status_code == 200
    [got] = receiver.received
    assert got.headers["host"] == f"hooks.example.test:{port}"
    assert dns["calls"] == ["hooks.example.test"]  # type: ignore[comparison-overlap]


async def test_connection_to_a_private_address_is_refused_before_any_packet(receiver, dns):
    dns["hooks.example.test"] = ["127.0.0.1"]
    port = receiver.url.rsplit(":", 1)[1]
    async with guarded_client(lambda: False, timeout=2) as http:
        with pytest.raises(httpx.ConnectError, match=COULD_NOT_CONNECT):
            await http.post(f"http://hooks.example.test:{port}/x", content=b"{}")
    assert receiver.received == []


async def test_feed_fetch_refuses_a_host_that_resolves_to_a_private_address(
    receiver, dns, monkeypatch
):
    monkeypatch.setattr(get_settings(), "feed_allow_insecure_urls", False)
    monkeypatch.setattr(get_settings(), "feed_retries", 1)
    dns["agenda.example.org"] = ["127.0.0.1"]
    async with feed_client() as http:
        with pytest.raises(FeedError, match=COULD_NOT_CONNECT):
            await fetch(http, "https://agenda.example.org/a.ics")


async def test_each_redirect_hop_is_checked_at_its_own_connection(receiver, dns):
    """The first hop's connection is allowed (here: private addresses allowed for it only);
    the redirect's host is resolved and checked at its own connection, and refused."""
    from dataclasses import dataclass

    from starlette.responses import Response

    @dataclass
    class Redirector(Receiver):
        target: str = ""

        async def __call__(self, scope, receive, send):  # type: ignore[no-untyped-def]
            if scope["type"] == "http":
                await Response(status_code=302, headers={"location": self.target})(
                    scope, receive, send
                )

    port = receiver.url.rsplit(":", 1)[1]
    redirector = await Redirector(target=f"http://internal.example.test:{port}/x").start()
    try:
        dns["first.example.test"] = ["127.0.0.1"]
        dns["internal.example.test"] = ["127.0.0.1"]
        allowed = iter([True])
        first = f"http://first.example.test:{redirector.url.rsplit(':', 1)[1]}/feed"
        async with guarded_client(lambda: next(allowed, False), follow_redirects=True) as http:
            with pytest.raises(httpx.ConnectError, match=COULD_NOT_CONNECT):
                await http.get(first)
    finally:
        await redirector.stop()
    assert receiver.received == []
    assert dns["calls"] == ["first.example.test", "internal.example.test"]  # type: ignore[comparison-overlap]
