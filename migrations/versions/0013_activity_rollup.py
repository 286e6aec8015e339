"""the activity log rolled up for the indicators, kept by a trigger on the log

Revision ID: 0013_activity_rollup
Revises: 0012_agenda_feeds
Create Date: 2026-11-29 18:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_activity_rollup"
down_revision: str | None = "0012_agenda_feeds"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Each roll-up is a GROUP BY over a set of events ({source}: the statement's new rows, or the
# whole log for the first fill). Rows are upserted in key order, so two transactions touching
# the same rows lock them in the same order and cannot deadlock; booking counters are spread
# over 8 shards (by backend) so that concurrent bookings of a territory rarely wait on a row.
SIGN = "CASE WHEN e.type = 'slots.offered' THEN 1 ELSE -1 END"
OFFER = f"""
    SELECT e.territory_id, g.granularity,
           date_trunc(g.unit, d.key::date)::date AS period_start, e.practitioner_id,
           sum({SIGN} * (d.value->>'slots')::int) AS slots,
           sum({SIGN} * (d.value->>'minutes')::int) AS minutes
    FROM {{source}} e
         CROSS JOIN jsonb_each(e.data->'days') AS d
         CROSS JOIN (VALUES ('w', 'week'), ('m', 'month')) AS g(granularity, unit)
    WHERE e.type IN ('slots.offered', 'slots.withdrawn')
      AND e.territory_id IS NOT NULL AND e.practitioner_id IS NOT NULL
    GROUP BY 1, 2, 3, 4
    ORDER BY 1, 2, 3, 4
"""
BOOKINGS = """
    SELECT e.territory_id, (e.at AT TIME ZONE t.timezone)::date AS day, e.type,
           coalesce(e.data->>'modality', '') AS modality, {shard} AS shard, count(*) AS n,
           count(*) FILTER (WHERE (e.data->>'lead_minutes')::int <= 1440) AS within_24h,
           count(*) FILTER (WHERE (e.data->>'lead_minutes')::int <= 2880) AS within_48h,
           count(*) FILTER (WHERE e.data->>'was' = 'booked') AS was_booked
    FROM {source} e JOIN territory t ON t.id = e.territory_id
    WHERE e.type IN ('booking.booked', 'booking.overbooked', 'booking.cancelled',
                     'booking.honored', 'booking.no_show')
    GROUP BY 1, 2, 3, 4, 5
    ORDER BY 1, 2, 3, 4, 5
"""
BOOKED_SLOTS = """
    SELECT e.territory_id, ((e.data->>'start')::timestamptz AT TIME ZONE t.timezone)::date,
           {shard}, count(*)
    FROM {source} e JOIN territory t ON t.id = e.territory_id
    WHERE e.type = 'booking.booked' AND e.data ? 'start'
    GROUP BY 1, 2, 3
    ORDER BY 1, 2, 3
"""
SHARD = "(pg_backend_pid() % 8)::smallint"


def upgrade() -> None:
    op.create_table(
        "offer_period",
        sa.Column("territory_id", sa.Uuid(), nullable=False),
        sa.Column("granularity", sa.String(length=1), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("practitioner_id", sa.Uuid(), nullable=False),
        sa.Column("slots", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("minutes", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.PrimaryKeyConstraint(
            "territory_id",
            "granularity",
            "period_start",
            "practitioner_id",
            name=op.f("pk_offer_period"),
        ),
    )
    op.create_table(
        "booking_day",
        sa.Column("territory_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("type", sa.String(length=60), nullable=False),
        sa.Column("modality", sa.String(length=20), nullable=False),
        sa.Column("shard", sa.SmallInteger(), nullable=False),
        sa.Column("n", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("within_24h", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("within_48h", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("was_booked", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.PrimaryKeyConstraint(
            "territory_id", "day", "type", "modality", "shard", name=op.f("pk_booking_day")
        ),
    )
    op.create_table(
        "booked_slot_day",
        sa.Column("territory_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("shard", sa.SmallInteger(), nullable=False),
        sa.Column("n", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.PrimaryKeyConstraint("territory_id", "day", "shard", name=op.f("pk_booked_slot_day")),
    )
    op.execute(
        f"""
        CREATE FUNCTION activity_rollup() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF EXISTS (SELECT 1 FROM new_events
                       WHERE type IN ('slots.offered', 'slots.withdrawn')) THEN
                INSERT INTO offer_period AS o
                    (territory_id, granularity, period_start, practitioner_id, slots, minutes)
                {OFFER.format(source="new_events")}
                ON CONFLICT (territory_id, granularity, period_start, practitioner_id) DO UPDATE
                    SET slots = o.slots + EXCLUDED.slots,
                        minutes = o.minutes + EXCLUDED.minutes;
            END IF;
            IF EXISTS (SELECT 1 FROM new_events WHERE type LIKE 'booking.%') THEN
                INSERT INTO booking_day AS b (territory_id, day, type, modality, shard, n,
                                              within_24h, within_48h, was_booked)
                {BOOKINGS.format(source="new_events", shard=SHARD)}
                ON CONFLICT (territory_id, day, type, modality, shard) DO UPDATE
                    SET n = b.n + EXCLUDED.n, within_24h = b.within_24h + EXCLUDED.within_24h,
                        within_48h = b.within_48h + EXCLUDED.within_48h,
                        was_booked = b.was_booked + EXCLUDED.was_booked;
                INSERT INTO booked_slot_day AS s (territory_id, day, shard, n)
                {BOOKED_SLOTS.format(source="new_events", shard=SHARD)}
                ON CONFLICT (territory_id, day, shard) DO UPDATE SET n = s.n + EXCLUDED.n;
            END IF;
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER activity_event_rollup
            AFTER INSERT ON activity_event REFERENCING NEW TABLE AS new_events
            FOR EACH STATEMENT EXECUTE FUNCTION activity_rollup()
        """
    )
    # What the log already holds.
    op.execute(
        "INSERT INTO offer_period "
        "(territory_id, granularity, period_start, practitioner_id, slots, minutes) "
        + OFFER.format(source="activity_event")
    )
    op.execute(
        "INSERT INTO booking_day (territory_id, day, type, modality, shard, n, within_24h, "
        "within_48h, was_booked) " + BOOKINGS.format(source="activity_event", shard="0")
    )
    op.execute(
        "INSERT INTO booked_slot_day (territory_id, day, shard, n) "
        + BOOKED_SLOTS.format(source="activity_event", shard="0")
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS activity_event_rollup ON activity_event")
    op.execute("DROP FUNCTION IF EXISTS activity_rollup()")
    op.drop_table("booked_slot_day")
    op.drop_table("booking_day")
    op.drop_table("offer_period")
