"""offer ledger rolled up per practitioner and day, kept by a trigger on the activity log

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

# Net slots and minutes per (territory, local day of the slot, practitioner) of a set of
# offer events. Rows are upserted in key order, so two transactions touching the same rows
# lock them in the same order and cannot deadlock.
ROLLUP_SELECT = """
    SELECT e.territory_id, d.key::date AS day, e.practitioner_id,
           sum(CASE WHEN e.type = 'slots.offered' THEN 1 ELSE -1 END
               * (d.value->>'slots')::int) AS slots,
           sum(CASE WHEN e.type = 'slots.offered' THEN 1 ELSE -1 END
               * (d.value->>'minutes')::int) AS minutes
    FROM {source} e, jsonb_each(e.data->'days') AS d
    WHERE e.type IN ('slots.offered', 'slots.withdrawn')
      AND e.territory_id IS NOT NULL AND e.practitioner_id IS NOT NULL
    GROUP BY 1, 2, 3
    ORDER BY 1, 2, 3
"""


def upgrade() -> None:
    op.create_table(
        "offer_day",
        sa.Column("territory_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("practitioner_id", sa.Uuid(), nullable=False),
        sa.Column("slots", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("minutes", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.PrimaryKeyConstraint(
            "territory_id", "day", "practitioner_id", name=op.f("pk_offer_day")
        ),
    )
    op.execute(
        f"""
        CREATE FUNCTION activity_offer_rollup() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO offer_day AS o (territory_id, day, practitioner_id, slots, minutes)
            {ROLLUP_SELECT.format(source="new_events")}
            ON CONFLICT (territory_id, day, practitioner_id) DO UPDATE
                SET slots = o.slots + EXCLUDED.slots, minutes = o.minutes + EXCLUDED.minutes;
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER activity_event_offer_rollup
            AFTER INSERT ON activity_event REFERENCING NEW TABLE AS new_events
            FOR EACH STATEMENT EXECUTE FUNCTION activity_offer_rollup()
        """
    )
    # What the log already holds.
    op.execute(
        "INSERT INTO offer_day (territory_id, day, practitioner_id, slots, minutes) "
        + ROLLUP_SELECT.format(source="activity_event")
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS activity_event_offer_rollup ON activity_event")
    op.execute("DROP FUNCTION IF EXISTS activity_offer_rollup()")
    op.drop_table("offer_day")
