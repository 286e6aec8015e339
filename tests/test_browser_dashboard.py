"""The dashboard in a real headless Chromium (Debian's), against the service served by
uvicorn on 127.0.0.1 and real PostgreSQL. Screenshots land in test-artifacts/."""

import asyncio
import itertools
import shutil
import socket
import uuid
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import uvicorn
from sqlalchemy import insert

from app.activity.models import ActivityEvent

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"

if CHROMIUM is None:  # pragma: no cover - .ci/run installs it
    warnings.warn("Chromium is NOT installed: the browser tests are NOT run", stacklevel=1)
    pytest.skip("chromium missing (apt-get install chromium)", allow_module_level=True)


@pytest.fixture
async def served(settings, sessionmaker):
    from app.main import create_app

    app = create_app(settings)
    app.state.sessionmaker = sessionmaker
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes only a flag
        await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task


@pytest.fixture
async def browser(chromium):
    """The shared Chromium (conftest.chromium); the pages and contexts a test opens are closed
    after it, so no test sees another's cookies or pages."""
    yield chromium
    for context in chromium.contexts:
        await context.close()


async def seed_recent(session, territory_id: str) -> None:
    """A few days of activity in the current year, known figures: 12 slots, 3 bookings."""
    now = datetime.now(UTC)
    day = (now - timedelta(days=1)).date().isoformat()
    gp = uuid.uuid4()
    t = uuid.UUID(territory_id)
    events = [
        {"at": now - timedelta(days=2), "type": "slots.offered", "territory_id": t,
         "practitioner_id": gp, "data": {"modality": "cabinet", "visibility": "sas",
                                         "days": {day: {"slots": 12, "minutes": 240}}}},
    ] + [
        {"at": now - timedelta(days=1, hours=h), "type": "booking.booked", "territory_id": t,
         "practitioner_id": gp, "subject_id": uuid.uuid4(),
         "data": {"modality": "cabinet", "lead_minutes": 90,
                  "start": (now - timedelta(hours=20)).isoformat()}}
        for h in (1, 2, 3)
    ]  # fmt: skip
    await session.execute(insert(ActivityEvent), events)
    await session.commit()


# Left and right edges of each chart's x-axis labels, in order, chart after chart.
AXIS_LABEL_BOXES = """
[...document.querySelectorAll('svg.chart')].flatMap(svg =>
  [...svg.querySelectorAll('text.axis[text-anchor="middle"]')].map(t => {
    const r = t.getBoundingClientRect(); return [r.left + 10000 * [...document
      .querySelectorAll('svg.chart')].indexOf(svg), r.right + 10000 * [...document
      .querySelectorAll('svg.chart')].indexOf(svg)];
  }))
"""


async def test_coordinator_signs_in_and_reads_the_dashboard(served, browser, territory, session):
    await seed_recent(session, territory.id)
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    await page.goto(f"{served}/dashboard")
    assert "/connexion" in page.url
    await page.get_by_label("Clé d'accès").fill(
        territory.coordinator["Authorization"].removeprefix("Bearer ")
    )
    await page.get_by_role("button", name="Se connecter").click()
    await page.wait_for_url(f"{served}/dashboard")
    heading = page.get_by_role("heading", level=1)
    assert await heading.inner_text() == "Tableau de bord — CPTS Test"
    figures = page.get_by_role("list", name="Chiffres clés des soins non programmés")
    text = await figures.inner_text()
    assert "12\ncréneaux SNP proposés" in text
    assert "3\nréservations par le SAS" in text and "25 %\ntaux de remplissage" in text
    assert await page.locator("svg.chart").count() == 2
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
    phone = await browser.new_page(viewport={"width": 390, "height": 844})
    await phone.context.add_cookies(await page.context.cookies())
    await phone.goto(f"{served}/dashboard")
    width = await phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 390  # no horizontal scrolling on a phone
    for viewer in (page, phone):  # the charts' axis labels never overlap
        boxes = await viewer.evaluate(AXIS_LABEL_BOXES)
        assert boxes and all(a[1] <= b[0] for a, b in itertools.pairwise(boxes))
    await phone.screenshot(path=str(ARTIFACTS / "dashboard-phone.png"), full_page=True)


async def test_wrong_key_message_is_next_to_the_field(served, browser):
    page = await browser.new_page()
    await page.goto(f"{served}/connexion")
    await page.get_by_label("Clé d'accès").fill("crn_wrong")
    await page.get_by_role("button", name="Se connecter").click()
    alert = page.get_by_role("alert")
    assert await alert.inner_text() == "Clé inconnue ou révoquée."
    await page.screenshot(path=str(ARTIFACTS / "sign-in-error.png"))
