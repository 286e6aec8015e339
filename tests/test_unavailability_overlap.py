"""The same absence entered twice: an unavailability overlapping another of the same GP is a
409 (API and pages) and changes nothing; touching or another GP's absences are fine."""

from __future__ import annotations

from datetime import date
from html import unescape

from sqlalchemy import func, select

from app.scheduling.models import Unavailability
from tests.conftest import assert_problem
from tests.test_web_dashboard import sign_in
from tests.test_web_pages import csrf_of


async def absent(client, t, start: str, end: str, practitioner_id: str | None = None):
    return await client.post(
        f"/v1/practitioners/{practitioner_id or t.practitioner_id}/unavailabilities",
        json={"start": start, "end": end, "reason": "congés"},
        headers=t.coordinator,
    )


async def count(session) -> int:
    return await session.scalar(select(func.count()).select_from(Unavailability))


async def test_the_same_absence_twice_is_a_409_and_is_listed_once(client, territory, session):
    first = await absent(
        client, territory, "2027-02-01T00:00:00+01:00", "2027-02-08T00:00:00+01:00"
    )
    assert first.status_code == 201, first.text
    again = await absent(
        client, territory, "2027-02-01T00:00:00+01:00", "2027-02-08T00:00:00+01:00"
    )
    problem = assert_problem(again, 409)
    assert problem["unavailability_id"] == first.json()["id"]
    assert problem["unavailable_from"] == "2027-02-01T00:00:00+01:00"
    assert await count(session) == 1


async def test_an_absence_overlapping_part_of_another_is_a_409(client, territory, session):
    await absent(client, territory, "2027-02-01T00:00:00+01:00", "2027-02-08T00:00:00+01:00")
    r = await absent(client, territory, "2027-02-07T12:00:00+01:00", "2027-02-10T00:00:00+01:00")
    assert_problem(r, 409)
    inside = await absent(
        client, territory, "2027-02-03T08:00:00+01:00", "2027-02-03T12:00:00+01:00"
    )
    assert_problem(inside, 409)
    assert await count(session) == 1


async def test_touching_absences_and_other_gps_absences_are_accepted(
    client, territory, other_territory, world
):
    await absent(client, territory, "2027-02-01T00:00:00+01:00", "2027-02-08T00:00:00+01:00")
    r = await absent(client, territory, "2027-02-08T00:00:00+01:00", "2027-02-09T00:00:00+01:00")
    assert r.status_code == 201, r.text
    r = await client.post(
        f"/v1/practitioners/{other_territory.practitioner_id}/unavailabilities",
        json={"start": "2027-02-01T00:00:00+01:00", "end": "2027-02-08T00:00:00+01:00"},
        headers=other_territory.coordinator,
    )
    assert r.status_code == 201, r.text


async def test_the_absence_page_refuses_the_same_absence_twice_in_french(
    client, territory, session
):
    await sign_in(client, territory.practice)
    base = f"/cabinet/medecins/{territory.practitioner_id}"
    csrf = csrf_of((await client.get(f"{base}/absence")).text)
    day = date.fromordinal(date.today().toordinal() + 3).isoformat()
    data = {"csrf": csrf, "start": f"{day}T08:00", "end": f"{day}T18:00", "reason": "Congés"}
    r = await client.post(f"{base}/absence", data=data)
    assert r.status_code == 303
    r = await client.post(f"{base}/absence", data=data)
    assert r.status_code == 409
    text = unescape(r.text)
    assert "Une absence est déjà enregistrée du" in text and 'role="alert"' in r.text
    assert "Voir l'absence déjà enregistrée" in text
    assert await count(session) == 1
