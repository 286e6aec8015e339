"""X-Forwarded-For is believed from TRUSTED_PROXIES only, never by uvicorn's default (which
trusts 127.0.0.1): a client on the host cannot choose the address its failed sign-ins are
counted against. Served by uvicorn with the options `creneau serve` uses."""

import ipaddress
import re

import httpx
import pytest

from app.config import get_settings
from app.tls_server import uvicorn_options
from app.web.auth import FAILURES
from tests.test_inbound_mtls import serving

FORGED = "203.0.113.9"


async def _failed_sign_in(url: str) -> None:
    async with httpx.AsyncClient(base_url=url) as http:
        form = await http.get("/connexion")
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
        r = await http.post(
            "/connexion",
            data={"key": "crn_wrong", "csrf": csrf, "next": "/"},
            headers={"X-Forwarded-For": FORGED},
        )
    assert r.status_code == 401


@pytest.fixture(autouse=True)
def no_failures():
    for address in ("127.0.0.1", FORGED):
        FAILURES.succeeded(address)
    yield
    for address in ("127.0.0.1", FORGED):
        FAILURES.succeeded(address)


def test_without_trusted_proxies_uvicorn_is_told_to_believe_no_forwarded_header(monkeypatch):
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "*")
    options = uvicorn_options(get_settings().model_copy(update={"trusted_proxies": []}))
    assert options["proxy_headers"] is False and options["forwarded_allow_ips"] == []


async def test_forwarded_for_from_an_untrusted_peer_is_ignored(settings, sessionmaker, monkeypatch):
    async with serving(settings, sessionmaker, monkeypatch, trusted_proxies=[]) as url:
        await _failed_sign_in(url)
    assert FAILURES.delay("127.0.0.1") > 0
    assert FAILURES.delay(FORGED) == 0


async def test_forwarded_for_from_a_trusted_proxy_is_believed(settings, sessionmaker, monkeypatch):
    proxies = [ipaddress.ip_network("127.0.0.1/32")]
    async with serving(settings, sessionmaker, monkeypatch, trusted_proxies=proxies) as url:
        await _failed_sign_in(url)
    assert FAILURES.delay(FORGED) > 0
    assert FAILURES.delay("127.0.0.1") == 0
