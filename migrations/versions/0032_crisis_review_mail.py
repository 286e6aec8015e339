"""The crisis plan's review is also e-mailed to the territory's coordinators: their addresses
on the territory, the e-mail's fate on each plan version (once per version)

Revision ID: 0032_crisis_review_mail
Revises: 0031_slot_call_areas
Create Date: 2026-12-05 13:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0032_crisis_review_mail"
down_revision: str | None = "0031_slot_call_areas"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "territory",
        sa.Column(
            "coordinator_emails",
            postgresql.ARRAY(sa.String(length=254)),
            server_default=sa.text("'{}'::varchar[]"),
            nullable=False,
        ),
    )
    op.add_column(
        "crisis_plan", sa.Column("review_mail_status", sa.String(length=10), nullable=True)
    )
    op.create_check_constraint(
        op.f("ck_crisis_plan_review_mail_status"),
        "crisis_plan",
        "review_mail_status IN ('pending', 'sent', 'failed', 'none')",
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_crisis_plan_review_mail_status"), "crisis_plan", type_="check")
    op.drop_column("crisis_plan", "review_mail_status")
    op.drop_column("territory", "coordinator_emails")
