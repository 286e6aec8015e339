"""mt_proposal.reason_code: why a proposal was declined, as the figures count it (distance,
schedule, preference, capacity, other); the free-text reason stays beside it

Revision ID: 0026_mt_decline_reasons
Revises: 0026_communes
Create Date: 2026-12-04 18:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0026_mt_decline_reasons"
down_revision: str | None = "0026_communes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_REASONS = "('distance', 'schedule', 'preference', 'capacity', 'other')"


def upgrade() -> None:
    op.add_column("mt_proposal", sa.Column("reason_code", sa.String(length=20), nullable=True))
    op.create_check_constraint(
        op.f("ck_mt_proposal_reason_code"),
        "mt_proposal",
        f"reason_code IS NULL OR (outcome = 'declined' AND reason_code IN {_REASONS})",
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_mt_proposal_reason_code"), "mt_proposal", type_="check")
    op.drop_column("mt_proposal", "reason_code")
