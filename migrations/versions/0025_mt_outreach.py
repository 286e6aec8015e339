"""mt_request: patients who register themselves (source `self`), declared criteria to be
checked by the coordinator, the patient's reference, an optional e-mail and the consent instant

Revision ID: 0025_mt_outreach
Revises: 0022_fhir_identifiers
Create Date: 2026-12-04 16:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0025_mt_outreach"
down_revision: str | None = "0022_fhir_identifiers"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD = "('assurance_maladie', 'hotline', 'sas', 'practice', 'cpts', 'other')"
_NEW = "('assurance_maladie', 'hotline', 'sas', 'practice', 'cpts', 'other', 'self')"


def upgrade() -> None:
    op.drop_constraint(op.f("ck_mt_request_source"), "mt_request", type_="check")
    op.create_check_constraint(op.f("ck_mt_request_source"), "mt_request", f"source IN {_NEW}")
    op.add_column(
        "mt_request",
        sa.Column("criteria_to_check", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.add_column("mt_request", sa.Column("reference", sa.String(length=12), nullable=True))
    op.add_column("mt_request", sa.Column("contact_email", sa.String(length=320), nullable=True))
    op.add_column("mt_request", sa.Column("consent_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("uq_mt_request_reference", "mt_request", ["reference"], unique=True)
    op.create_index(
        "ix_mt_request_self_day",
        "mt_request",
        ["territory_id", "registered_at"],
        postgresql_where=sa.text("source = 'self'"),
    )


def downgrade() -> None:
    op.drop_index("ix_mt_request_self_day", table_name="mt_request")
    op.drop_index("uq_mt_request_reference", table_name="mt_request")
    op.drop_column("mt_request", "consent_at")
    op.drop_column("mt_request", "contact_email")
    op.drop_column("mt_request", "reference")
    op.drop_column("mt_request", "criteria_to_check")
    op.execute("DELETE FROM mt_request WHERE source = 'self'")
    op.drop_constraint(op.f("ck_mt_request_source"), "mt_request", type_="check")
    op.create_check_constraint(op.f("ck_mt_request_source"), "mt_request", f"source IN {_OLD}")
