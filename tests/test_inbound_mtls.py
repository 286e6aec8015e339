"""Inbound mutual TLS (SAS-IG.md, "Transport"): the national SAS platform is let in by its
certificate, Créneau terminating TLS itself or a reverse proxy passing the verified subject.
Certificates are made by trustme; the service runs under a real uvicorn server with the
protocol and settings `creneau serve` uses (`app.tls_server.uvicorn_options`), reached over
real TLS by httpx with and without client certificates."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import shutil
import socket
import ssl
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import trustme
import uvicorn
from pydantic import ValidationError
from sqlalchemy import select

from app.activity.models import ActivityEvent
from app.client_certs import SubjectPattern
from app.config import Settings, get_settings
from app.main import create_app
from app.tls_server import ClientIdentity, server_ssl_context, uvicorn_options
from tests.conftest import assert_problem, make_territory
from tests.test_regulator_accounts import account
from tests.test_slot_search import add_slot

ROOT = Path(__file__).resolve().parent.parent
PLATFORM_CN, PLATFORM_OU = "sas.sante.fr", "318751275100020"
ALLOWED = f"CN={PLATFORM_CN},OU={PLATFORM_OU}"
# What nginx's $ssl_client_s_dn gives for the platform's certificate (RFC 2253).
PLATFORM_DN = f"CN={PLATFORM_CN},OU={PLATFORM_OU},O=GIP Plateforme SAS,C=FR"
PATTERN = SubjectPattern.parse(ALLOWED)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    ca, foreign_ca = trustme.CA(), trustme.CA()
    leaves = {
        "server": ca.issue_cert("127.0.0.1"),
        "platform": ca.issue_cert(
            "sas.sante.fr",
            common_name=PLATFORM_CN,
            organization_unit_name=PLATFORM_OU,
            organization_name="GIP Plateforme SAS",
        ),
        "wrong_cn": ca.issue_cert(
            "intrus.example", common_name="intrus.example", organization_unit_name=PLATFORM_OU
        ),
        "wrong_ou": ca.issue_cert(
            "sas.sante.fr", common_name=PLATFORM_CN, organization_unit_name="999999999"
        ),
        # Same subject as the platform's, another authority.
        "foreign": foreign_ca.issue_cert(
            "sas.sante.fr", common_name=PLATFORM_CN, organization_unit_name=PLATFORM_OU
        ),
    }
    folder = tmp_path_factory.mktemp("pki")
    paths = {"ca": folder / "ca.pem"}
    ca.cert_pem.write_to_path(str(paths["ca"]))
    for name, leaf in leaves.items():
        paths[name] = folder / f"{name}.pem"
        paths[f"{name}_key"] = folder / f"{name}.key"
        leaf.cert_chain_pems[0].write_to_path(str(paths[name]))
        leaf.private_key_pem.write_to_path(str(paths[f"{name}_key"]))
    return paths


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The application's settings (conftest's), with the platform's subject allowed."""
    return settings.model_copy(update={"sas_platform_subjects": [PATTERN]})


async def spawn_serve(
    port: int, database_url: str, log: Path, *, workers: int, **settings: str
) -> asyncio.subprocess.Process:
    """`creneau serve` on `database_url` in a subprocess, its log in `log`, without the
    scheduler; `settings`: more environment (TLS_CERT…). The command makes its own metrics
    directory for its workers, as in production."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SCHEDULER_ENABLED": "false",
        "LOG_LEVEL": "WARNING",
        **settings,
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with log.open("wb") as stderr:
        return await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "app.cli", "serve", "--port", str(port)),
            *("--workers", str(workers)),
            cwd=ROOT, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=stderr,
        )  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@asynccontextmanager
async def serving(
    app_settings: Settings, sessionmaker, monkeypatch, **server
) -> AsyncIterator[str]:
    """The app under uvicorn on 127.0.0.1, in this event loop. `server`: the process-level
    settings `creneau serve` reads (TLS_*, TRUSTED_PROXIES), set on get_settings()."""
    process = get_settings()
    for name, value in server.items():
        monkeypatch.setattr(process, name, value)
    app = create_app(app_settings)
    app.state.sessionmaker = sessionmaker
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", **uvicorn_options(process)
    )
    instance = uvicorn.Server(config)
    task = asyncio.create_task(instance.serve())
    while not instance.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"{'https' if process.tls_cert else 'http'}://127.0.0.1:{port}"
    finally:
        instance.should_exit = True
        await task


def tls_settings(pki: dict[str, Path], **over: object) -> dict[str, object]:
    return {
        "tls_cert": pki["server"],
        "tls_key": pki["server_key"],
        "tls_client_ca": pki["ca"],
        "tls_client_cert": "optional",
        "trusted_proxies": [],
        **over,
    }


def https(
    url: str, pki: dict[str, Path], cert: str | None = None, **context: object
) -> httpx.AsyncClient:
    tls = ssl.create_default_context(cafile=str(pki["ca"]))
    for name, value in context.items():
        setattr(tls, name, value)
    if cert:
        tls.load_cert_chain(str(pki[cert]), str(pki[f"{cert}_key"]))
    return httpx.AsyncClient(base_url=url, verify=tls, timeout=10)


@pytest.fixture
async def published(client, world, admin):
    # ready for the platform: a FINESS, and a practice with postal code and city
    t = await make_territory(client, world, admin, name="CPTS mTLS", finess="150001234")
    r = await client.patch(
        f"/v1/practices/{t.practice_id}",
        json={"postal_code": "15000", "city": "Aurillac"},
        headers=t.coordinator,
    )
    assert r.status_code == 200, r.text
    t.slots = [await add_slot(client, t, t.practitioner_id, h) for h in (2, 3)]
    return t


@pytest.fixture
async def tls_server(settings, sessionmaker, monkeypatch, pki):
    async with serving(settings, sessionmaker, monkeypatch, **tls_settings(pki)) as url:
        yield url


def assert_outcome(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    assert response.json()["resourceType"] == "OperationOutcome"


async def test_the_platforms_certificate_is_the_sas_platform(tls_server, pki, published, session):
    async with https(tls_server, pki, "platform") as http:
        r = await http.get("/fhir/Slot?status=free")
        assert r.status_code == 200, r.text
        slots = [e["resource"]["id"] for e in r.json()["entry"] if e["resource"]["id"]]
        assert set(published.slots) <= set(slots)
        # Managing regulator accounts is the platform's alone.
        tech = str(uuid.uuid4())
        r = await http.post("/fhir/Practitioner", json=account(tech))
        assert r.status_code == 201, r.text
        created = r.json()["id"]
        # Everything else is refused to the role.
        assert_problem(await http.get("/v1/bookings"), 403, "/forbidden")
        assert_problem(await http.get("/v1/keys"), 403, "/forbidden")
    # The stable identity of the certificate is the actor in the activity log.
    actors = (
        await session.scalars(
            select(ActivityEvent.actor_key_id).where(ActivityEvent.subject_id == uuid.UUID(created))
        )
    ).all()
    assert actors == [PATTERN.identity]


async def test_without_a_certificate_there_is_no_platform_access(tls_server, pki, published):
    async with https(tls_server, pki) as http:
        assert_outcome(await http.get("/fhir/Slot?status=free"), 401)
        assert_problem(await http.get("/v1/bookings"), 401, "/unauthorized")
        # Ordinary clients still connect, with their API key.
        r = await http.get("/v1/slots", headers=published.regulator)
        assert r.status_code == 200, r.text
        assert {s["id"] for s in r.json()["items"]} == set(published.slots)


async def test_a_certificate_from_another_authority_is_refused_at_the_handshake(tls_server, pki):
    async with https(tls_server, pki, "foreign") as http:
        with pytest.raises(httpx.TransportError):
            await http.get("/fhir/Slot")
    async with https(tls_server, pki, "platform") as http:  # the server keeps serving
        assert (await http.get("/fhir/Slot")).status_code == 200


@pytest.mark.parametrize("cert", ["wrong_cn", "wrong_ou"])
async def test_a_wrong_cn_or_ou_is_forbidden(tls_server, pki, published, cert):
    async with https(tls_server, pki, cert) as http:
        r = await http.get("/fhir/Slot?status=free")
        assert_outcome(r, 403)
        assert r.json()["issue"][0]["code"] == "forbidden"
        assert_problem(await http.get("/v1/bookings"), 403, "/forbidden")
        # A client with a certificate of its own and an API key is its key.
        r = await http.get("/v1/slots", headers=published.regulator)
        assert r.status_code == 200, r.text


async def test_the_certificate_is_one_rate_limited_identity_across_connections(
    settings, sessionmaker, monkeypatch, pki, published
):
    limited = settings.model_copy(update={"rate_limit_per_minute": 60})  # bursts of 10
    async with serving(limited, sessionmaker, monkeypatch, **tls_settings(pki)) as url:
        async with https(url, pki, "platform") as first:
            for _ in range(10):
                assert (await first.get("/fhir/Slot?status=free")).status_code == 200
        async with https(url, pki, "platform") as second:
            r = await second.get("/fhir/Slot?status=free")
            assert_outcome(r, 429)
            assert int(r.headers["retry-after"]) >= 1
        async with https(url, pki) as other:  # another identity, another bucket
            r = await other.get("/v1/slots", headers=published.regulator)
            assert r.status_code == 200


async def test_required_client_certificates_refuse_clients_without_one(
    settings, sessionmaker, monkeypatch, pki
):
    server = tls_settings(pki, tls_client_cert="required")
    async with serving(settings, sessionmaker, monkeypatch, **server) as url:
        async with https(url, pki) as http:
            with pytest.raises(httpx.TransportError):
                await http.get("/fhir/Slot")
        async with https(url, pki, "platform") as http:
            assert (await http.get("/fhir/Slot")).status_code == 200


async def test_tls_1_2_is_the_minimum_and_is_served(tls_server, pki):
    process = get_settings()
    assert server_ssl_context(process).minimum_version == ssl.TLSVersion.TLSv1_2
    tls12 = {"maximum_version": ssl.TLSVersion.TLSv1_2}
    async with https(tls_server, pki, "platform", **tls12) as http:
        assert (await http.get("/fhir/Slot")).status_code == 200


# Reverse proxy terminating TLS: the service is plain HTTP behind it.


def proxy_headers(dn: str = PLATFORM_DN, verify: str = "SUCCESS") -> dict[str, str]:
    return {"X-SSL-Client-S-DN": dn, "X-SSL-Client-Verify": verify}


@asynccontextmanager
async def behind_proxy(settings, sessionmaker, monkeypatch, trusted: str):
    networks = [ipaddress.ip_network(trusted)]
    server = {"tls_cert": None, "tls_key": None, "tls_client_ca": None, "trusted_proxies": networks}
    async with (
        serving(settings, sessionmaker, monkeypatch, **server) as url,
        httpx.AsyncClient(base_url=url, timeout=10) as http,
    ):
        yield http


async def test_a_trusted_proxy_passes_the_platforms_verified_subject(
    settings, sessionmaker, monkeypatch, published
):
    async with behind_proxy(settings, sessionmaker, monkeypatch, "127.0.0.1/32") as http:
        r = await http.get("/fhir/Slot?status=free", headers=proxy_headers())
        assert r.status_code == 200, r.text
        assert set(published.slots) <= {e["resource"]["id"] for e in r.json()["entry"]}
        tech = str(uuid.uuid4())
        r = await http.post("/fhir/Practitioner", json=account(tech), headers=proxy_headers())
        assert r.status_code == 201, r.text
        assert_problem(await http.get("/v1/bookings", headers=proxy_headers()), 403)
        # nginx escapes non-ASCII characters; case and spacing do not matter.
        other = f"CN=SAS.Sante.FR,OU={PLATFORM_OU},O=GIP \\C3\\89tat,C=FR"
        assert (await http.get("/fhir/Slot", headers=proxy_headers(other))).status_code == 200


@pytest.mark.parametrize("verify", ["NONE", "FAILED:certificate has expired", "success", ""])
async def test_a_proxy_verdict_other_than_success_is_refused(
    settings, sessionmaker, monkeypatch, verify
):
    async with behind_proxy(settings, sessionmaker, monkeypatch, "127.0.0.1/32") as http:
        r = await http.get("/fhir/Slot", headers=proxy_headers(verify=verify))
        assert_outcome(r, 401)


async def test_a_wrong_subject_from_a_trusted_proxy_is_forbidden(
    settings, sessionmaker, monkeypatch
):
    async with behind_proxy(settings, sessionmaker, monkeypatch, "127.0.0.1/32") as http:
        wrong_ou = f"CN={PLATFORM_CN},OU=999999999,O=GIP Plateforme SAS,C=FR"
        assert_outcome(await http.get("/fhir/Slot", headers=proxy_headers(wrong_ou)), 403)
        assert_outcome(await http.get("/fhir/Slot", headers=proxy_headers("not a name")), 403)
        two_cns = f"CN={PLATFORM_CN},CN=autre,OU={PLATFORM_OU}"
        assert_outcome(await http.get("/fhir/Slot", headers=proxy_headers(two_cns)), 403)


async def test_the_same_headers_from_an_untrusted_address_are_ignored(
    settings, sessionmaker, monkeypatch, published
):
    async with behind_proxy(settings, sessionmaker, monkeypatch, "10.0.0.0/8") as http:
        r = await http.get("/fhir/Slot", headers=proxy_headers())
        assert_outcome(r, 401)
        # Claiming to come through a trusted proxy changes nothing: the TCP peer decides.
        spoofed = {**proxy_headers(), "X-Forwarded-For": "10.0.0.1"}
        assert_outcome(await http.get("/fhir/Slot", headers=spoofed), 401)
        # A request with a key is served as that key, the headers dropped.
        r = await http.get("/v1/slots", headers={**proxy_headers(), **published.regulator})
        assert r.status_code == 200, r.text


async def test_the_proxy_headers_never_reach_the_application():
    seen = []

    async def app(scope, receive, send):
        seen.append(scope)

    scope = {
        "type": "http",
        "headers": [
            (b"x-ssl-client-s-dn", PLATFORM_DN.encode()),
            (b"x-ssl-client-verify", b"SUCCESS"),
            (b"accept", b"*/*"),
        ],
    }
    for from_proxy in (True, False):
        identity = ClientIdentity(
            app,
            connection=None,
            from_proxy=from_proxy,
            peer="127.0.0.1",
            subject_header="X-SSL-Client-S-DN",
            verify_header="X-SSL-Client-Verify",
        )
        await identity(scope, None, None)
    trusted, untrusted = seen
    assert trusted["headers"] == untrusted["headers"] == [(b"accept", b"*/*")]
    assert trusted["extensions"]["tls"]["client_cert_name"] == PLATFORM_DN
    assert "tls" not in untrusted["extensions"]


def test_allowed_subjects_from_the_environment():
    both = Settings(sas_platform_subjects=f"{ALLOWED}; CN=sas-test.sante.fr,OU=1,O=GIP")
    assert [p.text for p in both.sas_platform_subjects] == [
        ALLOWED,
        "CN=sas-test.sante.fr,OU=1,O=GIP",
    ]
    assert Settings(sas_platform_subjects=f'["{ALLOWED}"]').sas_platform_subjects == [PATTERN]
    for bad in ("CN=sas.sante.fr", "OU=1", "CN=a,CN=b,OU=1", "not a name"):
        with pytest.raises(ValidationError):
            Settings(sas_platform_subjects=bad)
    with pytest.raises(ValidationError, match="TLS_CERT"):
        Settings(tls_client_ca="ca.pem")
    with pytest.raises(ValidationError, match="TLS_CLIENT_CA"):
        Settings(tls_cert="c.pem", tls_client_cert="required")
    proxies = Settings(trusted_proxies="127.0.0.1, 10.0.0.0/8 ::1").trusted_proxies
    assert [str(n) for n in proxies] == ["127.0.0.1/32", "10.0.0.0/8", "::1/128"]
    # A pattern naming more attributes is narrower; the identity ignores case and order.
    assert SubjectPattern.parse(f"OU={PLATFORM_OU},CN=SAS.sante.fr").identity == PATTERN.identity


NGINX = os.environ.get("NGINX") or shutil.which("nginx") or shutil.which("/usr/sbin/nginx")


@pytest.mark.skipif(NGINX is None, reason="nginx missing (apt-get install nginx)")
async def test_behind_nginx_with_the_documented_configuration(
    settings, sessionmaker, monkeypatch, pki, published, tmp_path
):
    """docs/nginx-sas-mtls.conf, its paths and ports replaced, in front of the service."""
    server = {"tls_cert": None, "tls_key": None, "tls_client_ca": None}
    trusted = [ipaddress.ip_network("127.0.0.1/32")]
    async with serving(
        settings, sessionmaker, monkeypatch, trusted_proxies=trusted, **server
    ) as upstream:
        port = free_port()
        block = (ROOT / "docs" / "nginx-sas-mtls.conf").read_text()
        for old, new in (
            ("listen 443 ssl", f"listen 127.0.0.1:{port} ssl"),
            ("/etc/creneau/tls/server-chain.pem", str(pki["server"])),
            ("/etc/creneau/tls/server.key", str(pki["server_key"])),
            ("/etc/creneau/tls/igc-sante-ca.pem", str(pki["ca"])),
            ("http://127.0.0.1:8000", upstream),
        ):
            assert old in block
            block = block.replace(old, new)
        temp = " ".join(
            f"{kind}_temp_path {tmp_path / kind};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        conf = tmp_path / "nginx.conf"
        conf.write_text(
            f"pid {tmp_path / 'nginx.pid'}; error_log {tmp_path / 'error.log'} warn;\n"
            f"events {{}}\nhttp {{ access_log off; {temp}\n{block}\n}}\n"
        )
        nginx = await asyncio.create_subprocess_exec(
            str(NGINX), "-p", str(tmp_path), "-c", str(conf), "-g", "daemon off;"
        )
        url = f"https://127.0.0.1:{port}"
        try:
            for _ in range(100):
                try:
                    _, writer = await asyncio.open_connection("127.0.0.1", port)
                    writer.close()
                    break
                except OSError:
                    assert nginx.returncode is None, (tmp_path / "error.log").read_text()
                    await asyncio.sleep(0.05)
            async with https(url, pki, "platform") as http:
                r = await http.get("/fhir/Slot?status=free")
                assert r.status_code == 200, r.text
                assert set(published.slots) <= {e["resource"]["id"] for e in r.json()["entry"]}
                r = await http.post("/fhir/Practitioner", json=account(str(uuid.uuid4())))
                assert r.status_code == 201, r.text
                assert_problem(await http.get("/v1/bookings"), 403)
            async with https(url, pki) as http:
                assert_outcome(await http.get("/fhir/Slot"), 401)
                # nginx overwrites what a client sends in the two headers.
                assert_outcome(await http.get("/fhir/Slot", headers=proxy_headers()), 401)
            async with https(url, pki, "wrong_ou") as http:
                assert_outcome(await http.get("/fhir/Slot"), 403)
            async with https(url, pki, "foreign") as http:
                r = await http.get("/fhir/Slot")
                assert r.status_code == 400 and "SSL certificate error" in r.text
        finally:
            nginx.terminate()
            await nginx.wait()


@pytest.mark.xdist_group("servers")  # one service subprocess at a time (scripts/test.sh)
async def test_creneau_serve_terminates_mutual_tls(database_url, pki, tmp_path):
    """The command itself, with two workers: the protocol and the context factory reach them."""
    port = free_port()
    log = tmp_path / "serve.log"
    proc = await spawn_serve(
        port,
        database_url,
        log,
        workers=2,
        TLS_CERT=str(pki["server"]),
        TLS_KEY=str(pki["server_key"]),
        TLS_CLIENT_CA=str(pki["ca"]),
        SAS_PLATFORM_SUBJECTS=ALLOWED,
    )
    url = f"https://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        async with https(url, pki) as anonymous, https(url, pki, "platform") as platform:
            while True:
                try:
                    if (await anonymous.get("/health/live")).status_code == 200:
                        break
                except httpx.TransportError:
                    assert proc.returncode is None, log.read_text()[-3000:]
                    assert time.monotonic() < deadline, "creneau serve did not start"
                    await asyncio.sleep(0.3)
            assert_outcome(await anonymous.get("/fhir/Slot"), 401)
            for _ in range(4):  # new connections, whichever worker takes them
                async with https(url, pki, "platform") as fresh:
                    assert (await fresh.get("/fhir/Slot")).status_code == 200
            assert_problem(await platform.get("/v1/bookings"), 403)
        async with https(url, pki, "wrong_ou") as wrong:
            assert_outcome(await wrong.get("/fhir/Slot"), 403)
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 20)
