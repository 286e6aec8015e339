"""The crisis plan's service and API: versions, validation with field paths, roles and the
territory boundary, the review a year later (29 February included), the ARS export."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime
from typing import Any

import httpx
from sqlalchemy import select

from app.activity.models import ActivityEvent
from app.clock import now_utc
from app.crisis import plans
from app.crisis.models import CrisisPlan
from app.crisis.plan_schemas import PlanDocument
from app.crisis.plans import review, review_due_on
from app.db import make_sessionmaker
from app.errors import AppError
from tests.conftest import ADMIN_CALLER, assert_problem, create_gp, practitioner_body

URL = "/v1/crisis-plans"


def plan_body(volunteers: list[str] = (), reviewed_on: str = "2026-01-15", **over: Any) -> dict:
    return {
        "reviewed_on": reviewed_on,
        "contacts": [
            {"role": "ARS", "name": "Astreinte ARS", "phone": "04 73 74 49 00"},
            {"role": "SAS", "name": "SAS 15", "phone": "0471000000", "email": "sas@example.org"},
        ],
        "volunteers": [
            {
                "practitioner_id": v,
                "email": "gp@example.org",
                "pledges": [
                    {
                        "modality": "cabinet",
                        "weekdays": [1, 3],
                        "start_time": "18:00",
                        "end_time": "20:00",
                    }
                ],
                "crisis_overbooking_cap": 6,
            }
            for v in volunteers
        ],
        "sites": [
            {"name": "Salle des fêtes", "address": "1 place du Square", "commune_insee": "15014"}
        ],
        "steps": [{"title": "Prévenir l'ARS", "who": "Coordinateur"}],
        "raise_overbooking_caps": True,
        **over,
    }


async def write(
    client: httpx.AsyncClient, headers: dict[str, str], body: dict[str, Any]
) -> httpx.Response:
    return await client.post(URL, json=body, headers=headers)


async def test_versions_increment_and_the_current_is_the_highest(client, territory, session):
    r1 = await write(client, territory.coordinator, plan_body([territory.practitioner_id]))
    assert r1.status_code == 201, r1.text
    assert r1.headers["location"] == f"{URL}/{r1.json()['id']}"
    r2 = await write(client, territory.coordinator, plan_body(reviewed_on="2026-02-01"))
    assert r2.status_code == 201, r2.text
    assert (r1.json()["version"], r2.json()["version"]) == (1, 2)
    current = await client.get(f"{URL}/current", headers=territory.coordinator)
    assert current.status_code == 200
    assert (current.json()["id"], current.json()["version"]) == (r2.json()["id"], 2)
    assert current.json()["reviewed_on"] == "2026-02-01"
    listed = (await client.get(URL, headers=territory.coordinator)).json()
    assert [v["version"] for v in listed["items"]] == [2, 1]
    assert listed["next_cursor"] is None
    # Paged like the other lists: one at a time, newest first.
    first = (await client.get(URL, params={"limit": 1}, headers=territory.coordinator)).json()
    assert [v["version"] for v in first["items"]] == [2]
    rest = await client.get(
        URL, params={"limit": 1, "cursor": first["next_cursor"]}, headers=territory.coordinator
    )
    assert [v["version"] for v in rest.json()["items"]] == [1]
    assert rest.json()["next_cursor"] is None
    # The first version is still readable as written.
    old = (await client.get(f"{URL}/{r1.json()['id']}", headers=territory.coordinator)).json()
    assert old["version"] == 1 and len(old["volunteers"]) == 1
    events = (
        await session.scalars(
            select(ActivityEvent)
            .where(ActivityEvent.type == "crisis_plan.version_written")
            .order_by(ActivityEvent.id)
        )
    ).all()
    assert [(str(e.subject_id), e.data) for e in events] == [
        (r1.json()["id"], {"version": 1}),
        (r2.json()["id"], {"version": 2}),
    ]


async def test_the_export_resolves_each_volunteer(client, territory):
    r = await write(client, territory.coordinator, plan_body([territory.practitioner_id]))
    body = (await client.get(f"{URL}/{r.json()['id']}", headers=territory.dashboard)).json()
    gp = (
        await client.get(
            f"/v1/practitioners/{territory.practitioner_id}", headers=territory.coordinator
        )
    ).json()
    assert body["territory"]["id"] == territory.id
    assert body["territory"]["name"] == "CPTS Test"
    assert body["version"] == 1 and body["raise_overbooking_caps"] is True
    assert body["reviewed_on"] == "2026-01-15" and body["review_due_on"] == "2027-01-15"
    [v] = body["volunteers"]
    assert v == {
        "practitioner_id": territory.practitioner_id,
        "in_directory": True,
        "family_name": "Martin",
        "given_name": "Claire",
        "rpps": gp["rpps"],
        "practice_id": territory.practice_id,
        "practice_name": "Maison de santé d'Aurillac",
        "commune_insee": "15014",
        "commune_name": "Aurillac",
        "email": "gp@example.org",
        "pledges": [
            {
                "modality": "cabinet",
                "weekdays": [1, 3],
                "start_time": "18:00:00",
                "end_time": "20:00:00",
                "slot_minutes": 20,
            }
        ],
        "crisis_overbooking_cap": 6,
    }
    assert body["sites"][0]["commune_name"] == "Aurillac"
    assert [c["role"] for c in body["contacts"]] == ["ARS", "SAS"]
    assert body["steps"] == [{"title": "Prévenir l'ARS", "detail": None, "who": "Coordinateur"}]
    assert body["created_at"].endswith(("+01:00", "+02:00"))  # the territory's offset


async def test_every_wrong_reference_is_named_by_its_path(
    client, territory, other_territory, admin
):
    body = plan_body([territory.practitioner_id, other_territory.practitioner_id])
    body["sites"].append({"name": "Gymnase", "address": "rue du Stade", "commune_insee": "99999"})
    r = await write(client, territory.coordinator, body)
    problem = assert_problem(r, 422, "validation-error")
    assert [e["loc"] for e in problem["errors"]] == [
        ["volunteers", 1, "practitioner_id"],
        ["sites", 1, "commune_insee"],
    ]
    assert "volunteers.1.practitioner_id" in problem["detail"]
    # The model's own rules name their field too.
    bad = plan_body([territory.practitioner_id])
    bad["volunteers"][0]["pledges"][0]["weekdays"] = [1, 8]
    problem = assert_problem(await write(client, territory.coordinator, bad), 422)
    assert problem["errors"][0]["loc"] == ["volunteers", 0, "pledges", 0, "weekdays", 1]
    twice = plan_body([territory.practitioner_id, territory.practitioner_id])
    assert_problem(await write(client, territory.coordinator, twice), 422)
    assert_problem(await client.post(URL, content=b"{", headers=territory.coordinator), 422)
    # Nothing was written.
    listed = (await client.get(URL, headers=territory.coordinator)).json()
    assert listed["items"] == []
    # An admin must name the territory.
    problem = assert_problem(await write(client, admin, plan_body()), 422)
    assert problem["errors"][0]["loc"] == ["territory_id"]


async def test_roles_and_the_territory_boundary(client, territory, other_territory, admin):
    theirs = await write(
        client, admin, plan_body([other_territory.practitioner_id], territory_id=other_territory.id)
    )
    assert theirs.status_code == 201, theirs.text
    assert theirs.json()["territory"]["id"] == other_territory.id
    plan_id = theirs.json()["id"]
    # Another territory's coordinator and dashboard: 404, as if it did not exist.
    for key in (territory.coordinator, territory.dashboard):
        assert_problem(await client.get(f"{URL}/{plan_id}", headers=key), 404)
        assert_problem(
            await client.get(URL, params={"territory_id": other_territory.id}, headers=key), 404
        )
    assert_problem(
        await write(client, territory.coordinator, plan_body(territory_id=other_territory.id)),
        404,
    )
    # Its own territory has no plan yet.
    assert_problem(await client.get(f"{URL}/current", headers=territory.coordinator), 404)
    # The dashboard reads, never writes; practices and regulators neither.
    assert (
        await client.get(f"{URL}/{plan_id}", headers=other_territory.dashboard)
    ).status_code == 200
    assert_problem(await write(client, other_territory.dashboard, plan_body()), 403)
    for key in (other_territory.practice, other_territory.regulator):
        assert_problem(await client.get(f"{URL}/{plan_id}", headers=key), 403)
        assert_problem(await write(client, key, plan_body()), 403)
    # Admin reads any.
    r = await client.get(
        f"{URL}/current", params={"territory_id": other_territory.id}, headers=admin
    )
    assert r.json()["id"] == plan_id
    assert_problem(await client.get(f"{URL}/{territory.id}", headers=admin), 404)
    problem = assert_problem(await client.get(URL, headers=admin), 422)
    assert problem["errors"][0]["loc"] == ["query", "territory_id"]
    assert_problem(
        await client.get(URL, params={"cursor": "nope"}, headers=territory.coordinator), 422
    )


def test_a_review_falls_due_a_year_later():
    assert review_due_on(date(2025, 3, 10)) == date(2026, 3, 10)
    # 29 February: due on 28 February of the next year, never later.
    assert review_due_on(date(2024, 2, 29)) == date(2025, 2, 28)
    assert review_due_on(date(2023, 2, 28)) == date(2024, 2, 28)
    assert review_due_on(date(2023, 3, 1)) == date(2024, 3, 1)
    assert not review(date(2024, 2, 29), date(2025, 2, 27)).due
    assert review(date(2024, 2, 29), date(2025, 2, 28)).due
    assert review(date(2024, 2, 29), date(2025, 3, 1)).due


async def test_review_due_at_exactly_one_year_in_the_territory_s_day(client, territory, clock):
    clock.set(datetime(2025, 6, 1, 9, tzinfo=UTC))
    r = await write(client, territory.coordinator, plan_body(reviewed_on="2025-03-10"))
    plan = f"{URL}/{r.json()['id']}"
    # 9 March 2026, 23:59 in Paris (22:59 UTC): not yet.
    clock.set(datetime(2026, 3, 9, 22, 59, tzinfo=UTC))
    body = (await client.get(plan, headers=territory.coordinator)).json()
    assert (body["review_due_on"], body["review_due"]) == ("2026-03-10", False)
    # Midnight in Paris, 10 March: a year has passed, though it is still 9 March in UTC.
    clock.set(datetime(2026, 3, 9, 23, 0, tzinfo=UTC))
    body = (await client.get(plan, headers=territory.coordinator)).json()
    assert body["review_due"] is True


async def test_a_29_february_review(client, territory, clock):
    clock.set(datetime(2024, 3, 1, 9, tzinfo=UTC))
    r = await write(client, territory.coordinator, plan_body(reviewed_on="2024-02-29"))
    assert r.json()["review_due_on"] == "2025-02-28" and r.json()["review_due"] is False
    clock.set(datetime(2025, 2, 27, 22, 59, tzinfo=UTC))  # 27 Feb 23:59 in Paris
    assert (await client.get(f"{URL}/current", headers=territory.coordinator)).json()[
        "review_due"
    ] is False
    clock.set(datetime(2025, 2, 27, 23, 0, tzinfo=UTC))  # 28 Feb 00:00 in Paris
    assert (await client.get(f"{URL}/current", headers=territory.coordinator)).json()[
        "review_due"
    ] is True


async def test_a_volunteer_who_left_the_directory_stays_in_the_version(client, territory, admin):
    r = await client.post(
        "/v1/practitioners", json=practitioner_body(territory.practice_id), headers=admin
    )
    leaving = r.json()["id"]
    plan = await write(client, territory.coordinator, plan_body([leaving]))
    assert plan.status_code == 201
    assert (await client.delete(f"/v1/practitioners/{leaving}", headers=admin)).status_code == 204
    body = (await client.get(f"{URL}/current", headers=territory.coordinator)).json()
    [v] = body["volunteers"]
    assert (v["practitioner_id"], v["in_directory"], v["family_name"]) == (leaving, False, None)
    # A new version may no longer list them.
    assert_problem(await write(client, territory.coordinator, plan_body([leaving])), 422)


async def test_the_job_records_a_due_review_once_per_version(client, territory, session, clock):
    from app.jobs import _crisis_plan_reviews, registered_jobs

    assert "crisis_plan_reviews" in {spec.name for spec in registered_jobs()}

    async def due_events() -> list[tuple[str, dict[str, Any]]]:
        rows = await session.scalars(
            select(ActivityEvent)
            .where(ActivityEvent.type == "crisis_plan.review_due")
            .order_by(ActivityEvent.id)
        )
        return [(str(e.subject_id), e.data) for e in rows]

    clock.set(datetime(2025, 6, 1, 9, tzinfo=UTC))
    v1 = (await write(client, territory.coordinator, plan_body(reviewed_on="2025-03-10"))).json()
    clock.set(datetime(2026, 3, 9, 22, 59, tzinfo=UTC))  # 9 March 23:59 in Paris
    assert await _crisis_plan_reviews(session) == {"reviews_due": 0}
    clock.set(datetime(2026, 3, 9, 23, 0, tzinfo=UTC))  # 10 March in Paris: due
    assert await _crisis_plan_reviews(session) == {"reviews_due": 1}
    assert await _crisis_plan_reviews(session) == {"reviews_due": 0}  # once a version
    clock.advance(days=1)
    assert await _crisis_plan_reviews(session) == {"reviews_due": 0}
    # A new version that keeps the old review date is due at once; a reviewed one is not.
    v2 = (await write(client, territory.coordinator, plan_body(reviewed_on="2025-03-10"))).json()
    assert await _crisis_plan_reviews(session) == {"reviews_due": 1}
    await write(client, territory.coordinator, plan_body(reviewed_on="2026-03-10"))
    assert await _crisis_plan_reviews(session) == {"reviews_due": 0}
    assert await due_events() == [
        (v1["id"], {"version": 1, "due_on": "2026-03-10"}),
        (v2["id"], {"version": 2, "due_on": "2026-03-10"}),
    ]


async def test_concurrent_writers_never_share_a_version(engine):
    factory = make_sessionmaker(engine)
    async with factory() as session:
        gp = await create_gp(session, f"CPTS plan {uuid.uuid4()}")
        await session.commit()
    document = PlanDocument.model_validate(plan_body([str(gp.id)]))

    async def write_one() -> int:
        async with factory() as session:
            try:
                plan = await plans.write_version(
                    session, ADMIN_CALLER, document, gp.territory_id, now_utc()
                )
                await session.commit()
                return plan.version
            except AppError as exc:
                return -exc.status

    results = await asyncio.gather(*(write_one() for _ in range(8)))
    written = sorted(r for r in results if r > 0)
    # Each writer either wrote the next version or was told to send again (409): no version
    # twice, none skipped.
    assert set(results) - set(written) <= {-409}
    assert written == list(range(1, len(written) + 1))
    async with factory() as session:
        stored = (
            await session.scalars(
                select(CrisisPlan.version)
                .where(CrisisPlan.territory_id == gp.territory_id)
                .order_by(CrisisPlan.version)
            )
        ).all()
    assert list(stored) == written
