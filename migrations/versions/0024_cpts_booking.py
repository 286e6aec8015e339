"""booking: booked_by_practice_id (a CPTS-internal booking's booking practice); CPTS-internal
bookings are not SAS bookings in the indicators

A `cpts` slot is booked by one of the CPTS's practices or its coordinator, not by a SAS: the
booking practice (`booked_by_practice_id`) sees it, cancels it and receives its webhooks. Its
activity events carry `"audience": "cpts"`; the roll-up's "made" figures (SAS bookings, within
24 / 48 h, cancellations of booked ones) leave them out, while the slot it takes still counts
as taken. No CPTS-internal booking existed before this revision: nothing to rebuild.

Revision ID: 0024_cpts_booking
Revises: 0022_fhir_identifiers
Create Date: 2026-12-04 16:30:00
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import sqlalchemy as sa
from alembic import op

revision: str = "0024_cpts_booking"
down_revision: str | None = "0022_fhir_identifiers"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A booking is made by the SAS unless its events say it is the CPTS's own.
SAS_MADE = (
    "e.type IN ('booking.booked', 'booking.overbooked') "
    "AND e.data->>'audience' IS DISTINCT FROM 'cpts'"
)


def _end_state() -> ModuleType:
    path = Path(__file__).with_name("0020_indicators_end_state.py")
    spec = importlib.util.spec_from_file_location("end_state_0020", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _refresh_function(m: ModuleType, booking_state: str) -> str:
    """0020's activity_bookings_refresh, over `booking_state` (0020's SQL, or this one's)."""
    return f"""
        CREATE OR REPLACE FUNCTION activity_bookings_refresh(ids uuid[]) RETURNS void
        LANGUAGE plpgsql AS $$
        BEGIN
            IF ids IS NULL THEN
                DELETE FROM booking_state;
                DELETE FROM booking_day;
                INSERT INTO booking_state ({m.BOOKING_COLUMNS})
                SELECT {m.BOOKING_COLUMNS} FROM ({booking_state.format(where="true")}) x;
                INSERT INTO booking_day ({m.TALLY_COLUMNS})
                {m.TALLY.format(source="booking_state", sign="1", shard="0::smallint")};
            ELSE
                INSERT INTO booking_day AS d ({m.TALLY_COLUMNS})
                {
        m.TALLY.format(
            source="(SELECT * FROM booking_state WHERE booking_id = ANY(ids)) o",
            sign="-1",
            shard=m.SHARD,
        )
    }
                ON CONFLICT (territory_id, day, kind, modality, shard)
                DO UPDATE SET {m.ADD_TALLY};
                INSERT INTO booking_state AS b ({m.BOOKING_COLUMNS})
                SELECT {m.BOOKING_COLUMNS}
                FROM ({booking_state.format(where="e.subject_id = ANY(ids)")}) x
                ORDER BY booking_id
                ON CONFLICT (booking_id) DO UPDATE SET {m.UPDATE_BOOKING};
                INSERT INTO booking_day AS d ({m.TALLY_COLUMNS})
                {
        m.TALLY.format(
            source="(SELECT * FROM booking_state WHERE booking_id = ANY(ids)) n",
            sign="1",
            shard=m.SHARD,
        )
    }
                ON CONFLICT (territory_id, day, kind, modality, shard)
                DO UPDATE SET {m.ADD_TALLY};
            END IF;
        END $$
        """


def upgrade() -> None:
    op.add_column("booking", sa.Column("booked_by_practice_id", sa.Uuid(), nullable=True))
    op.create_foreign_key(
        op.f("fk_booking_booked_by_practice_id_practice"),
        "booking",
        "practice",
        ["booked_by_practice_id"],
        ["id"],
        ondelete="RESTRICT",
    )
    op.create_index(
        "ix_booking_booked_by_practice", "booking", ["booked_by_practice_id"], unique=False
    )
    m = _end_state()
    assert m.BOOKING_STATE.count(m.MADE) == 3
    op.execute(_refresh_function(m, m.BOOKING_STATE.replace(m.MADE, SAS_MADE)))


def downgrade() -> None:
    m = _end_state()
    op.execute(_refresh_function(m, m.BOOKING_STATE))
    op.drop_index("ix_booking_booked_by_practice", table_name="booking")
    op.drop_constraint(
        op.f("fk_booking_booked_by_practice_id_practice"), "booking", type_="foreignkey"
    )
    op.drop_column("booking", "booked_by_practice_id")
