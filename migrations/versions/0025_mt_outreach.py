"""mt_request: patients who register themselves (source `self`), declared criteria to be
checked by the coordinator, the patient's reference, an optional e-mail and the consent instant;
mt_proposal: each GP proposed to a request and its answer (who declined, why)

Revision ID: 0025_mt_outreach
Revises: 0024_cpts_booking
Create Date: 2026-12-04 16:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0025_mt_outreach"
down_revision: str | None = "0024_cpts_booking"
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
    upgrade_proposals()


def downgrade() -> None:
    op.drop_table("mt_proposal")
    op.drop_index("ix_mt_request_self_day", table_name="mt_request")
    op.drop_index("uq_mt_request_reference", table_name="mt_request")
    op.drop_column("mt_request", "consent_at")
    op.drop_column("mt_request", "contact_email")
    op.drop_column("mt_request", "reference")
    op.drop_column("mt_request", "criteria_to_check")
    op.execute("DELETE FROM mt_request WHERE source = 'self'")
    op.drop_constraint(op.f("ck_mt_request_source"), "mt_request", type_="check")
    op.create_check_constraint(op.f("ck_mt_request_source"), "mt_request", f"source IN {_OLD}")


def upgrade_proposals() -> None:
    op.create_table(
        "mt_proposal",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("request_id", sa.Uuid(), nullable=False),
        sa.Column("practitioner_id", sa.Uuid(), nullable=False),
        sa.Column("proposed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(length=10), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("declined_by", sa.String(length=12), nullable=True),
        sa.Column("reason", sa.String(length=300), nullable=True),
        sa.CheckConstraint(
            "outcome IN ('pending', 'accepted', 'declined', 'lapsed', 'withdrawn')",
            name=op.f("ck_mt_proposal_outcome"),
        ),
        sa.CheckConstraint(
            "declined_by IS NULL OR (outcome = 'declined' "
            "AND declined_by IN ('patient', 'practitioner'))",
            name=op.f("ck_mt_proposal_declined_by"),
        ),
        sa.ForeignKeyConstraint(
            ["request_id"], ["mt_request.id"], name=op.f("fk_mt_proposal_request_id_mt_request"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["practitioner_id"], ["practitioner.id"],
            name=op.f("fk_mt_proposal_practitioner_id_practitioner"), ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mt_proposal")),
    )  # fmt: skip
    op.create_index("ix_mt_proposal_request", "mt_proposal", ["request_id", "proposed_at"])
    op.create_index(
        "uq_mt_proposal_pending",
        "mt_proposal",
        ["request_id"],
        unique=True,
        postgresql_where=sa.text("outcome = 'pending'"),
    )
