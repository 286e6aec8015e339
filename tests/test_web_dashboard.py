"""Sign-in, sessions, CSRF and the dashboard page, through HTTP."""

import asyncio
import re

from app.config import get_settings
from app.web.auth import FAILURES


async def sign_in(client, key_header, next_="/dashboard"):
    form = await client.get(f"/connexion?next={next_}")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
    key = key_header["Authorization"].removeprefix("Bearer ")
    return await client.post("/connexion", data={"key": key, "csrf": csrf, "next": next_})


async def test_dashboard_sends_visitors_to_sign_in(client):
    r = await client.get("/dashboard")
    assert r.status_code == 303 and r.headers["location"] == "/connexion?next=/dashboard"


async def test_wrong_key_shows_a_message_and_sets_no_session(client):
    FAILURES.succeeded("127.0.0.1")
    r = await sign_in(client, {"Authorization": "Bearer crn_wrong"})
    assert r.status_code == 401
    assert "Clé inconnue ou révoquée" in r.text and 'aria-invalid="true"' in r.text
    assert "creneau_session" not in r.headers.get("set-cookie", "")
    FAILURES.succeeded("127.0.0.1")


async def test_repeated_failures_are_slowed_down():
    FAILURES.succeeded("10.9.9.9")
    assert FAILURES.delay("10.9.9.9") == 0
    for _ in range(3):
        FAILURES.failed("10.9.9.9")
    assert FAILURES.delay("10.9.9.9") == 2.0
    FAILURES.succeeded("10.9.9.9")


async def test_sign_in_sets_a_strict_httponly_session_and_shows_the_dashboard(client, territory):
    r = await sign_in(client, territory.coordinator)
    assert r.status_code == 303 and r.headers["location"] == "/dashboard"
    cookie = r.headers["set-cookie"]
    assert "creneau_session=" in cookie and "HttpOnly" in cookie
    assert "SameSite=strict" in cookie and "Max-Age=43200" in cookie
    page = await client.get("/dashboard")
    assert page.status_code == 200
    assert "Tableau de bord — CPTS Test" in page.text
    assert "créneaux SNP proposés" in page.text and "patients en attente" in page.text
    assert "<svg" in page.text and "<table>" in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    assert page.headers["x-frame-options"] == "DENY"


async def test_sign_in_form_needs_its_csrf_token(client, territory):
    key = territory.coordinator["Authorization"].removeprefix("Bearer ")
    r = await client.post("/connexion", data={"key": key, "csrf": "forged"})
    assert r.status_code == 403 and "creneau_session" not in r.headers.get("set-cookie", "")


async def test_next_never_leaves_the_site(client, territory):
    r = await sign_in(client, territory.coordinator, next_="//evil.example/x")
    assert r.headers["location"] == "/accueil"  # the role's home page, on this site


async def test_practice_session_cannot_open_the_dashboard(client, territory):
    await sign_in(client, territory.practice)
    r = await client.get("/dashboard")
    assert r.status_code == 403 and "Accès refusé" in r.text


async def test_dashboard_key_sees_its_territory_only(client, territory, other_territory):
    await sign_in(client, territory.dashboard)
    assert (await client.get("/dashboard")).status_code == 200
    r = await client.get(f"/dashboard?territory_id={other_territory.id}")
    assert r.status_code == 404


async def test_csv_download_from_the_dashboard_is_for_excel_in_french(client, territory):
    await sign_in(client, territory.dashboard)
    r = await client.get("/dashboard/indicateurs.csv")
    assert r.status_code == 200
    assert r.content.startswith(b"\xef\xbb\xbfD\xc3\xa9but de p\xc3\xa9riode;")


async def test_raw_csv_download_from_the_dashboard(client, territory):
    await sign_in(client, territory.dashboard)
    r = await client.get("/dashboard/indicateurs.csv?dialect=raw")
    assert r.status_code == 200 and r.text.startswith("period_start,period_end,")


async def test_tampered_cookie_is_a_new_sign_in(client):
    client.cookies.set("creneau_session", "forged.value")
    assert (await client.get("/dashboard")).status_code == 303


async def test_session_expires(client, territory, monkeypatch):
    await sign_in(client, territory.coordinator)
    monkeypatch.setattr(get_settings(), "session_hours", 0)
    await asyncio.sleep(1.1)
    assert (await client.get("/dashboard")).status_code == 303


async def test_revoking_the_key_ends_the_session(client, territory, admin):
    await sign_in(client, territory.dashboard)
    keys = (await client.get("/v1/keys", headers=territory.coordinator)).json()["items"]
    dashboard_key = next(k for k in keys if k["role"] == "dashboard")
    await client.delete(f"/v1/keys/{dashboard_key['id']}", headers=territory.coordinator)
    assert (await client.get("/dashboard")).status_code == 303


async def test_sign_out_needs_the_csrf_token(client, territory):
    await sign_in(client, territory.coordinator)
    page = await client.get("/dashboard")
    assert (await client.post("/deconnexion", data={"csrf": "nope"})).status_code == 403
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    r = await client.post("/deconnexion", data={"csrf": csrf})
    assert r.status_code == 303
    assert (await client.get("/dashboard")).status_code == 303
