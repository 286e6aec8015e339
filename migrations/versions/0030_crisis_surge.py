"""A crisis call keeps whether its GP accepted surnuméraires before the crisis raised its cap
(restored with the cap when the crisis ends)

Revision ID: 0030_crisis_surge
Revises: 0029_crisis
Create Date: 2026-12-05 08:35:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0030_crisis_surge"
down_revision: str | None = "0029_crisis"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "crisis_call", sa.Column("accepted_overbooking_before", sa.Boolean(), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("crisis_call", "accepted_overbooking_before")
