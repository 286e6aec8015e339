"""activity_event: a partial index of the slots the GPs publish themselves (`slots.offered`
with a rule or an author), by practitioner and time, for the slots a call for slots produced

Revision ID: 0026_slot_call_produced
Revises: 0026_mt_decline_reasons
Create Date: 2026-12-04 18:50:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0026_slot_call_produced"
down_revision: str | None = "0026_mt_decline_reasons"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "CREATE INDEX ix_activity_event_published_practitioner_at "
        "ON activity_event (practitioner_id, at) "
        "WHERE type = 'slots.offered' AND (subject_id IS NOT NULL OR actor_key_id IS NOT NULL)"
    )


def downgrade() -> None:
    op.execute("DROP INDEX ix_activity_event_published_practitioner_at")
