"""indicators by end state: the offer roll-up split SAS / CPTS and kept per day too, one row per
booking at its final status instead of event counters, one rebuild function, ACI year

The roll-ups stay projections of the append-only log, kept by the statement trigger on
`activity_event` in the events' own transaction. `activity_rollup_rebuild()` empties them and
fills them again from the whole log (the same SQL the trigger runs on the new events); the
tests check that the trigger's tables equal a rebuild after random histories.

Revision ID: 0020_indicators_end_state
Revises: 0017_key_territory_scope
Create Date: 2026-12-04 15:00:00
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision: str = "0020_indicators_end_state"
down_revision: str | None = "0017_key_territory_scope"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The offer per practitioner, audience (`sas`: sas and public slots, which the SAS sees;
# `cpts`: the CPTS's internal slots) and local day, week (`w`) and month (`m`) of the slots.
SIGN = "CASE WHEN e.type = 'slots.offered' THEN 1 ELSE -1 END"
OFFER = f"""
    SELECT e.territory_id, g.granularity,
           date_trunc(g.unit, d.key::date)::date AS period_start, e.practitioner_id,
           CASE WHEN e.data->>'visibility' = 'cpts' THEN 'cpts' ELSE 'sas' END AS audience,
           sum({SIGN} * (d.value->>'slots')::int) AS slots,
           sum({SIGN} * (d.value->>'minutes')::int) AS minutes
    FROM {{source}} e
         CROSS JOIN jsonb_each(e.data->'days') AS d
         CROSS JOIN (VALUES ('d', 'day'), ('w', 'week'), ('m', 'month')) AS g(granularity, unit)
    WHERE e.type IN ('slots.offered', 'slots.withdrawn')
      AND e.territory_id IS NOT NULL AND e.practitioner_id IS NOT NULL
    GROUP BY 1, 2, 3, 4, 5
    ORDER BY 1, 2, 3, 4, 5
"""

BOOKING_TYPES = (
    "'booking.held', 'booking.booked', 'booking.overbooked', 'booking.cancelled', "
    "'booking.honored', 'booking.no_show', 'hold.expired'"
)
MADE = "e.type IN ('booking.booked', 'booking.overbooked')"
# Each booking at its final state, from all its events (`{where}` picks the bookings). The
# status is the last event's; `made_at` the last time it was booked (a confirmed hold: the
# confirmation); local days in the territory's zone.
BOOKING_STATE = f"""
    SELECT s.*,
           (s.made_at AT TIME ZONE t.timezone)::date AS made_day,
           (s.start AT TIME ZONE t.timezone)::date AS start_day,
           (s.ended_at AT TIME ZONE t.timezone)::date AS ended_day
    FROM (
        SELECT e.subject_id AS booking_id,
               (array_agg(e.territory_id ORDER BY e.at DESC, e.id DESC))[1] AS territory_id,
               (array_agg(e.practitioner_id ORDER BY e.at DESC, e.id DESC))[1]
                   AS practitioner_id,
               bool_or(e.type = 'booking.overbooked') AS overbooked,
               coalesce((array_agg(e.data->>'modality' ORDER BY e.at DESC, e.id DESC))[1], '')
                   AS modality,
               (array_agg((e.data->>'start')::timestamptz ORDER BY e.at DESC, e.id DESC)
                   FILTER (WHERE e.data ? 'start'))[1] AS start,
               max(e.at) FILTER (WHERE {MADE}) AS made_at,
               (array_agg((e.data->>'lead_minutes')::int ORDER BY e.at DESC, e.id DESC)
                   FILTER (WHERE {MADE}))[1] AS lead_minutes,
               CASE (array_agg(e.type ORDER BY e.at DESC, e.id DESC))[1]
                   WHEN 'booking.held' THEN 'held'
                   WHEN 'booking.booked' THEN 'booked'
                   WHEN 'booking.overbooked' THEN 'booked'
                   WHEN 'booking.cancelled' THEN 'cancelled'
                   WHEN 'hold.expired' THEN 'expired'
                   WHEN 'booking.honored' THEN 'honored'
                   ELSE 'no_show'
               END AS status,
               bool_or({MADE}) AS was_booked,
               max(e.at) FILTER (WHERE e.type IN ('booking.cancelled', 'hold.expired'))
                   AS ended_at
        FROM activity_event e
        WHERE e.type IN ({BOOKING_TYPES}) AND e.subject_id IS NOT NULL
          AND e.territory_id IS NOT NULL AND {{where}}
        GROUP BY e.subject_id
    ) s JOIN territory t ON t.id = s.territory_id
"""
BOOKING_COLUMNS = (
    "booking_id, territory_id, practitioner_id, overbooked, modality, start, made_at, "
    "lead_minutes, status, was_booked, ended_at, made_day, start_day, ended_day"
)
# The bookings' figures per local day, summed from booking_state rows ({source}) with a sign:
# each refresh subtracts a booking's old row and adds its new one, so the sums always equal
# the sums over booking_state (kinds: `made`, by the day it was booked, and modality; `start`,
# by the appointment's day; `ended`, by the cancellation's day). Spread over 8 shards (by
# backend) so that concurrent bookings rarely wait on one row.
STANDING = "status IN ('booked', 'honored', 'no_show')"
SEEN = "status IN ('booked', 'honored')"
TALLY_COLUMNS = (
    "territory_id, day, kind, modality, shard, booked, overbooked, within_24h, within_48h, "
    "standing, honored, no_show, cancelled"
)
TALLY = f"""
    SELECT territory_id, day, kind, modality, {{shard}} AS shard,
           {{sign}} * sum(booked) AS booked, {{sign}} * sum(overbooked) AS overbooked,
           {{sign}} * sum(within_24h) AS within_24h, {{sign}} * sum(within_48h) AS within_48h,
           {{sign}} * sum(standing) AS standing, {{sign}} * sum(honored) AS honored,
           {{sign}} * sum(no_show) AS no_show, {{sign}} * sum(cancelled) AS cancelled
    FROM (
        SELECT territory_id, made_day AS day, 'made' AS kind, modality,
               (NOT overbooked AND {STANDING})::int AS booked,
               (overbooked AND {STANDING})::int AS overbooked,
               ({SEEN} AND lead_minutes <= 1440)::int AS within_24h,
               ({SEEN} AND lead_minutes <= 2880)::int AS within_48h,
               ({STANDING})::int AS standing, 0 AS honored, 0 AS no_show, 0 AS cancelled
        FROM {{source}} WHERE made_day IS NOT NULL
        UNION ALL
        SELECT territory_id, start_day, 'start', '', (NOT overbooked AND {STANDING})::int,
               0, 0, 0, 0, (status = 'honored')::int, (status = 'no_show')::int, 0
        FROM {{source}} WHERE start_day IS NOT NULL
        UNION ALL
        SELECT territory_id, ended_day, 'ended', '', 0, 0, 0, 0, 0, 0, 0,
               (status = 'cancelled' AND was_booked)::int
        FROM {{source}} WHERE ended_day IS NOT NULL
    ) x
    GROUP BY 1, 2, 3, 4, 5
    ORDER BY 1, 2, 3, 4, 5
"""
ADD_TALLY = ", ".join(f"{c} = d.{c} + EXCLUDED.{c}" for c in TALLY_COLUMNS.split(", ")[5:])
SHARD = "(pg_backend_pid() % 8)::smallint"
UPDATE_BOOKING = ", ".join(
    f"{c} = EXCLUDED.{c}" for c in BOOKING_COLUMNS.split(", ") if c != "booking_id"
)


def upgrade() -> None:
    op.drop_table("booked_slot_day")
    op.drop_table("booking_day")
    op.execute("DELETE FROM offer_period")
    op.add_column(
        "offer_period",
        sa.Column("audience", sa.String(length=4), server_default="sas", nullable=False),
    )
    op.drop_constraint("pk_offer_period", "offer_period", type_="primary")
    op.create_primary_key(
        "pk_offer_period",
        "offer_period",
        ["territory_id", "granularity", "period_start", "practitioner_id", "audience"],
    )
    op.create_table(
        "booking_state",
        sa.Column("booking_id", sa.Uuid(), nullable=False),
        sa.Column("territory_id", sa.Uuid(), nullable=False),
        sa.Column("practitioner_id", sa.Uuid(), nullable=True),
        sa.Column("overbooked", sa.Boolean(), nullable=False),
        sa.Column("modality", sa.String(length=20), nullable=False),
        sa.Column("start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("made_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lead_minutes", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("was_booked", sa.Boolean(), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("made_day", sa.Date(), nullable=True),
        sa.Column("start_day", sa.Date(), nullable=True),
        sa.Column("ended_day", sa.Date(), nullable=True),
        sa.PrimaryKeyConstraint("booking_id", name=op.f("pk_booking_state")),
    )
    op.create_table(
        "booking_day",
        sa.Column("territory_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=5), nullable=False),
        sa.Column("modality", sa.String(length=20), nullable=False),
        sa.Column("shard", sa.SmallInteger(), nullable=False),
        *(
            sa.Column(name, sa.Integer(), server_default=sa.text("0"), nullable=False)
            for name in TALLY_COLUMNS.split(", ")[5:]
        ),
        sa.PrimaryKeyConstraint(
            "territory_id", "day", "kind", "modality", "shard", name=op.f("pk_booking_day")
        ),
    )
    # The events of one booking, found fast when the trigger refreshes its row.
    op.execute(
        f"CREATE INDEX ix_activity_event_booking_subject ON activity_event (subject_id) "
        f"WHERE type IN ({BOOKING_TYPES})"
    )
    op.add_column("territory", sa.Column("aci_signed_on", sa.Date(), nullable=True))

    op.execute(
        f"""
        CREATE OR REPLACE FUNCTION activity_bookings_refresh(ids uuid[]) RETURNS void
        LANGUAGE plpgsql AS $$
        BEGIN
            IF ids IS NULL THEN
                DELETE FROM booking_state;
                DELETE FROM booking_day;
                INSERT INTO booking_state ({BOOKING_COLUMNS})
                SELECT {BOOKING_COLUMNS} FROM ({BOOKING_STATE.format(where="true")}) x;
                INSERT INTO booking_day ({TALLY_COLUMNS})
                {TALLY.format(source="booking_state", sign="1", shard="0::smallint")};
            ELSE
                INSERT INTO booking_day AS d ({TALLY_COLUMNS})
                {
            TALLY.format(
                source="(SELECT * FROM booking_state WHERE booking_id = ANY(ids)) o",
                sign="-1",
                shard=SHARD,
            )
        }
                ON CONFLICT (territory_id, day, kind, modality, shard) DO UPDATE SET {ADD_TALLY};
                INSERT INTO booking_state AS b ({BOOKING_COLUMNS})
                SELECT {BOOKING_COLUMNS}
                FROM ({BOOKING_STATE.format(where="e.subject_id = ANY(ids)")}) x
                ORDER BY booking_id
                ON CONFLICT (booking_id) DO UPDATE SET {UPDATE_BOOKING};
                INSERT INTO booking_day AS d ({TALLY_COLUMNS})
                {
            TALLY.format(
                source="(SELECT * FROM booking_state WHERE booking_id = ANY(ids)) n",
                sign="1",
                shard=SHARD,
            )
        }
                ON CONFLICT (territory_id, day, kind, modality, shard) DO UPDATE SET {ADD_TALLY};
            END IF;
        END $$
        """
    )
    op.execute(
        f"""
        CREATE OR REPLACE FUNCTION activity_rollup() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF EXISTS (SELECT 1 FROM new_events
                       WHERE type IN ('slots.offered', 'slots.withdrawn')) THEN
                INSERT INTO offer_period AS o (territory_id, granularity, period_start,
                                              practitioner_id, audience, slots, minutes)
                {OFFER.format(source="new_events")}
                ON CONFLICT (territory_id, granularity, period_start, practitioner_id, audience)
                DO UPDATE SET slots = o.slots + EXCLUDED.slots,
                              minutes = o.minutes + EXCLUDED.minutes;
            END IF;
            IF EXISTS (SELECT 1 FROM new_events
                       WHERE type IN ({BOOKING_TYPES}) AND subject_id IS NOT NULL) THEN
                PERFORM activity_bookings_refresh(ARRAY(
                    SELECT DISTINCT subject_id FROM new_events
                    WHERE type IN ({BOOKING_TYPES}) AND subject_id IS NOT NULL));
            END IF;
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        f"""
        CREATE OR REPLACE FUNCTION activity_rollup_rebuild() RETURNS void
        LANGUAGE plpgsql AS $$
        BEGIN
            DELETE FROM offer_period;
            INSERT INTO offer_period (territory_id, granularity, period_start,
                                      practitioner_id, audience, slots, minutes)
            {OFFER.format(source="activity_event")};
            PERFORM activity_bookings_refresh(NULL);
        END $$
        """
    )
    op.execute("SELECT activity_rollup_rebuild()")


def downgrade() -> None:
    """Back to 0013's roll-ups (event counters), rebuilt from the log by 0013's own upgrade."""
    op.execute("DROP TRIGGER IF EXISTS activity_event_rollup ON activity_event")
    op.execute("DROP FUNCTION IF EXISTS activity_rollup_rebuild()")
    op.execute("DROP FUNCTION IF EXISTS activity_rollup()")
    op.execute("DROP FUNCTION IF EXISTS activity_bookings_refresh(uuid[])")
    op.execute("DROP INDEX IF EXISTS ix_activity_event_booking_subject")
    op.drop_column("territory", "aci_signed_on")
    op.drop_table("booking_day")
    op.drop_table("booking_state")
    op.drop_table("offer_period")
    path = Path(__file__).with_name("0013_activity_rollup.py")
    spec = importlib.util.spec_from_file_location("rollup_0013", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.upgrade()
