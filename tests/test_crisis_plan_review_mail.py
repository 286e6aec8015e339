"""The crisis plan's yearly review is e-mailed to the territory's coordinators (their
addresses: `coordinator_emails` on the territory), once per plan version, after the reviews
job has committed, through a real local SMTP server (aiosmtpd). Counts look at this test's own
territory and addresses only (other tests commit plans to the shared database)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from app.config import Settings
from app.crisis import review_mail
from app.crisis.models import CrisisPlan
from app.crisis.plans import record_due_reviews
from tests.conftest import assert_problem
from tests.test_agenda_page import free_port, smtp  # noqa: F401 - fixture
from tests.test_crisis_plan import plan_body, write

DUE = datetime(2026, 3, 9, 23, 0, tzinfo=UTC)  # 10 March 2026 in Paris: a year after the review


def mail_settings(port: int) -> Settings:
    return Settings(
        smtp_host="127.0.0.1", smtp_port=port, public_base_url="https://creneau.example"
    )


def addresses() -> list[str]:
    tag = uuid.uuid4().hex[:8]
    return [f"coordination-{tag}@cpts.example", f"direction-{tag}@cpts.example"]


async def set_addresses(client, territory, emails: list[str]) -> None:
    body = {"coordinator_emails": emails}
    r = await client.patch(
        f"/v1/territories/{territory.id}", json=body, headers=territory.coordinator
    )
    assert r.status_code == 200, r.text
    assert r.json()["coordinator_emails"] == emails


async def plan_due(client, territory, session, clock) -> CrisisPlan:
    clock.set(datetime(2025, 6, 1, 9, tzinfo=UTC))
    r = await write(client, territory.coordinator, plan_body(reviewed_on="2025-03-10"))
    assert r.status_code == 201, r.text
    clock.set(DUE)
    plan = await session.get(CrisisPlan, uuid.UUID(r.json()["id"]))
    assert plan is not None
    return plan


def mine(smtp, emails: list[str]) -> list:  # noqa: F811
    return [m for m in smtp.inbox.messages if emails[0] in str(m["To"])]


async def test_a_due_review_is_mailed_to_the_coordinators_once_per_version(
    client,
    territory,
    session,
    clock,
    smtp,  # noqa: F811
):
    emails = addresses()
    await set_addresses(client, territory, emails)
    plan = await plan_due(client, territory, session, clock)
    await record_due_reviews(session, clock())
    assert plan.review_mail_status == "pending"
    await session.commit()  # the reviews job's commit; the mail job runs after it
    await review_mail.send_pending(session, mail_settings(smtp.port))
    assert plan.review_mail_status == "sent"
    await smtp.inbox.wait(1)
    [message] = mine(smtp, emails)
    assert str(message["To"]) == ", ".join(emails)
    assert message["Subject"] == "Créneau : revue annuelle du plan de crise à faire — CPTS Test"
    body = message.get_content()
    assert "(version 1) a été revu pour la dernière fois le 10/03/2025" in body
    assert "est à faire depuis le 10/03/2026" in body
    assert "https://creneau.example/coordination/crise/plan/modifier" in body
    # The job again, the next day: nothing more for this version.
    clock.advance(days=1)
    await record_due_reviews(session, clock())
    await review_mail.send_pending(session, mail_settings(smtp.port))
    assert len(mine(smtp, emails)) == 1
    # A new version that keeps the old review date falls due at once: its own e-mail.
    r = await write(client, territory.coordinator, plan_body(reviewed_on="2025-03-10"))
    await record_due_reviews(session, clock())
    await review_mail.send_pending(session, mail_settings(smtp.port))
    await smtp.inbox.wait(2)
    assert [m.get_content().count("(version 2)") for m in mine(smtp, emails)] == [0, 1]
    assert r.status_code == 201


async def test_a_territory_without_coordinator_address_gets_no_mail(
    client, territory, session, clock
):
    plan = await plan_due(client, territory, session, clock)
    await record_due_reviews(session, clock())
    assert plan.review_mail_status == "none"


async def test_a_failed_mail_is_marked_and_not_sent_again(
    client,
    territory,
    session,
    clock,
    smtp,  # noqa: F811
):
    emails = addresses()
    await set_addresses(client, territory, emails)
    plan = await plan_due(client, territory, session, clock)
    await record_due_reviews(session, clock())
    await review_mail.send_pending(session, mail_settings(free_port()))  # nobody listens
    assert plan.review_mail_status == "failed"
    await review_mail.send_pending(session, mail_settings(smtp.port))
    assert mine(smtp, emails) == []


async def test_the_mail_job_is_registered():
    from app.jobs import registered_jobs

    assert "crisis_plan_review_mail" in {spec.name for spec in registered_jobs()}


async def test_coordinator_addresses_are_checked(client, territory):
    url = f"/v1/territories/{territory.id}"
    r = await client.patch(url, json={"coordinator_emails": ["pas une adresse"]},
                           headers=territory.coordinator)  # fmt: skip
    problem = assert_problem(r, 422)
    assert problem["errors"][0]["loc"] == ["coordinator_emails", 0]
    r = await client.patch(url, json={"coordinator_emails": None}, headers=territory.coordinator)
    assert_problem(r, 422)
    got = await client.get(url, headers=territory.coordinator)
    assert got.json()["coordinator_emails"] == []
