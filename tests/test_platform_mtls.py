"""Mutual TLS towards the SAS platform, with certificates made by trustme."""

import ssl

import httpx
import pytest
import trustme

from app.config import get_settings
from app.sas_bridge.outbox import deliver_due
from app.sas_bridge.platform_client import platform_client
from tests.receiver import Receiver
from tests.test_sas_notifications import book_with


@pytest.fixture
def pki(tmp_path):
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1")
    client = ca.issue_cert("creneau.cpts.example", organization_unit_name="CPTS")
    paths = {}
    for name, blob in (
        ("ca", ca.cert_pem),
        ("server", server.cert_chain_pems[0]),
        ("server_key", server.private_key_pem),
        ("client", client.cert_chain_pems[0]),
        ("client_key", client.private_key_pem),
    ):
        paths[name] = tmp_path / f"{name}.pem"
        blob.write_to_path(str(paths[name]))
    return paths


@pytest.fixture
async def mtls_platform(pki, monkeypatch):
    receiver = await Receiver().start(
        ssl_certfile=str(pki["server"]),
        ssl_keyfile=str(pki["server_key"]),
        ssl_ca_certs=str(pki["ca"]),
        ssl_cert_reqs=ssl.CERT_REQUIRED,
    )
    settings = get_settings()
    monkeypatch.setattr(settings, "sas_platform_url", f"{receiver.url}/fhir")
    monkeypatch.setattr(settings, "sas_platform_ca", pki["ca"])
    yield receiver
    await receiver.stop()


async def test_notification_goes_over_mutual_tls(
    client,
    territory,
    operator,
    mtls_platform,
    pki,
    sessionmaker,
    monkeypatch,
):
    settings = get_settings()
    monkeypatch.setattr(settings, "sas_platform_cert", pki["client"])
    monkeypatch.setattr(settings, "sas_platform_key", pki["client_key"])
    await book_with(client, territory, operator)
    platform = platform_client(settings)
    assert platform is not None
    async with httpx.AsyncClient() as http, platform:
        assert (await deliver_due(sessionmaker, http, platform=platform))["delivered"] == 1
    assert [r.path for r in mtls_platform.received] == ["/fhir/Appointment"]


async def test_without_a_client_certificate_the_platform_refuses(
    client,
    territory,
    operator,
    mtls_platform,
    sessionmaker,
):
    await book_with(client, territory, operator)
    platform = platform_client(get_settings())
    assert platform is not None
    async with httpx.AsyncClient() as http, platform:
        result = await deliver_due(sessionmaker, http, platform=platform)
    assert result["retried"] == 1 and mtls_platform.received == []
