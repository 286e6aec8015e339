"""practitioner: surnuméraire hours and modalities; territory: the SNP window; booking: the
visit address of a home visit

A surnuméraire is refused outside the GP's hours (default 08:00-20:00 local), for a modality
the GP does not accept (NULL: the modalities of its rules) and beyond the territory's SNP
window (default 48 hours).

Revision ID: 0018_overbooking_guards
Revises: 0016_caller_notifications
Create Date: 2026-12-04 15:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0018_overbooking_guards"
down_revision: str | None = "0016_caller_notifications"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "practitioner",
        sa.Column("overbooking_start_time", sa.Time(), server_default="08:00", nullable=False),
    )
    op.add_column(
        "practitioner",
        sa.Column("overbooking_end_time", sa.Time(), server_default="20:00", nullable=False),
    )
    op.add_column(
        "practitioner",
        sa.Column("overbooking_modalities", postgresql.ARRAY(sa.String(20)), nullable=True),
    )
    op.create_check_constraint(
        op.f("ck_practitioner_overbooking_modalities"),
        "practitioner",
        "overbooking_modalities <@ ARRAY['cabinet', 'visite', 'teleconsultation']::varchar[]",
    )
    op.add_column(
        "territory",
        sa.Column("snp_window_hours", sa.Integer(), server_default="48", nullable=False),
    )
    op.create_check_constraint(
        op.f("ck_territory_snp_window_hours"), "territory", "snp_window_hours BETWEEN 1 AND 720"
    )
    op.add_column("booking", sa.Column("visit_address", sa.String(300), nullable=True))


def downgrade() -> None:
    op.drop_column("booking", "visit_address")
    op.drop_constraint(op.f("ck_territory_snp_window_hours"), "territory")
    op.drop_column("territory", "snp_window_hours")
    op.drop_constraint(op.f("ck_practitioner_overbooking_modalities"), "practitioner")
    op.drop_column("practitioner", "overbooking_modalities")
    op.drop_column("practitioner", "overbooking_end_time")
    op.drop_column("practitioner", "overbooking_start_time")
