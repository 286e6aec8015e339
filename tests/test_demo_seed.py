"""`creneau seed-demo` builds a usable territory: a regulator finds slots at once."""

from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import func, select

from app.demo import COMMUNES, PRACTICES, luhn_rpps, seed
from app.directory.models import Practice, Practitioner


def _luhn_ok(number: str) -> bool:
    total = 0
    for i, digit in enumerate(reversed(number)):
        n = int(digit) * (2 if i % 2 else 1)
        total += n - 9 if n > 9 else n
    return total % 10 == 0


def test_demo_rpps_numbers_are_luhn_valid():
    assert all(_luhn_ok(luhn_rpps(i)) and len(luhn_rpps(i)) == 11 for i in range(1, 60))


def test_demo_practices_are_in_known_cantal_communes():
    assert len(PRACTICES) == 12
    assert all(p[2] in COMMUNES for p in PRACTICES)
    assert all(c.insee.startswith("15") and 44.6 < c.lat < 45.4 for c in COMMUNES.values())


async def test_seed_demo_gives_a_regulator_slots(session, client: httpx.AsyncClient):
    keys = await seed(session)
    await session.commit()
    territory_id = keys["territory_id"]
    practices = await session.scalar(
        select(func.count()).select_from(Practice).where(Practice.territory_id == territory_id)
    )
    gps = await session.scalar(
        select(func.count())
        .select_from(Practitioner)
        .where(Practitioner.territory_id == territory_id)
    )
    assert (practices, gps) == (12, 40)
    regulator = {"Authorization": f"Bearer {keys['regulator key']}"}
    # Over a week there are always demo slots (the 48-hour default may fall on a Sunday).
    now = datetime.now(UTC)
    r = await client.get(
        "/v1/slots",
        params={
            "from": now.isoformat(),
            "to": (now + timedelta(days=7)).isoformat(),
            "near": "44.9264,2.4397",
        },
        headers=regulator,
    )
    assert r.status_code == 200, r.text
    assert len(r.json()["items"]) == 50
    # A crisis plan to show (version 1), its volunteers resolved for the ARS.
    coordinator = {"Authorization": f"Bearer {keys['coordinator key']}"}
    plan = (await client.get("/v1/crisis-plans/current", headers=coordinator)).json()
    assert plan["version"] == 1 and plan["review_due"] is False
    assert [v["in_directory"] for v in plan["volunteers"]] == [True, True, True]


async def test_seed_demo_twice_reuses_the_territory(session):
    first = await seed(session)
    second = await seed(session)
    assert first["territory_id"] == second["territory_id"]
    assert first["regulator key"] != second["regulator key"]
