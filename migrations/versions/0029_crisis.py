"""Crisis response: the territory's plan (versioned), the crises, the calls to volunteers;
`crisis_id` on the slots and rules opened for a crisis

Revision ID: 0029_crisis
Revises: 0026_slot_call_produced
Create Date: 2026-12-05 08:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0029_crisis"
down_revision: str | None = "0026_slot_call_produced"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "crisis_plan",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("territory_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("document", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("reviewed_on", sa.Date(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by_key_id", sa.Uuid(), nullable=True),
        sa.CheckConstraint("version >= 1", name=op.f("ck_crisis_plan_version")),
        sa.ForeignKeyConstraint(
            ["territory_id"],
            ["territory.id"],
            name=op.f("fk_crisis_plan_territory_id_territory"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crisis_plan")),
        sa.UniqueConstraint("territory_id", "version", name="uq_crisis_plan_territory_version"),
    )
    op.create_table(
        "crisis",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("territory_id", sa.Uuid(), nullable=False),
        sa.Column("plan_id", sa.Uuid(), nullable=True),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expected_end_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "communes",
            postgresql.ARRAY(sa.String(length=5)),
            server_default=sa.text("'{}'::varchar[]"),
            nullable=False,
        ),
        sa.Column("declared_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("declared_by_key_id", sa.Uuid(), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_by_key_id", sa.Uuid(), nullable=True),
        sa.CheckConstraint(
            "kind IN ('epidemic', 'heatwave', 'ed_closure', 'cyber_attack', 'other')",
            name=op.f("ck_crisis_kind"),
        ),
        sa.CheckConstraint("expected_end_at > started_at", name=op.f("ck_crisis_expected_end")),
        sa.CheckConstraint(
            "ended_at IS NULL OR ended_at >= declared_at", name=op.f("ck_crisis_ended")
        ),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["crisis_plan.id"],
            name=op.f("fk_crisis_plan_id_crisis_plan"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["territory_id"],
            ["territory.id"],
            name=op.f("fk_crisis_territory_id_territory"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crisis")),
    )
    op.create_index(
        "uq_crisis_running_territory",
        "crisis",
        ["territory_id"],
        unique=True,
        postgresql_where=sa.text("ended_at IS NULL"),
    )
    op.create_index("ix_crisis_territory_declared", "crisis", ["territory_id", "declared_at"])
    op.create_table(
        "crisis_call",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("crisis_id", sa.Uuid(), nullable=False),
        sa.Column("practitioner_id", sa.Uuid(), nullable=False),
        sa.Column("practice_id", sa.Uuid(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "mail_status",
            sa.String(length=10),
            server_default=sa.text("'pending'"),
            nullable=False,
        ),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("slots_opened", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("cap_before", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "mail_status IN ('pending', 'sent', 'failed', 'none')",
            name=op.f("ck_crisis_call_mail_status"),
        ),
        sa.CheckConstraint("slots_opened >= 0", name=op.f("ck_crisis_call_slots_opened")),
        sa.ForeignKeyConstraint(
            ["crisis_id"],
            ["crisis.id"],
            name=op.f("fk_crisis_call_crisis_id_crisis"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["practitioner_id"],
            ["practitioner.id"],
            name=op.f("fk_crisis_call_practitioner_id_practitioner"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crisis_call")),
        sa.UniqueConstraint(
            "crisis_id", "practitioner_id", name="uq_crisis_call_crisis_practitioner"
        ),
    )
    op.add_column("availability_rule", sa.Column("crisis_id", sa.Uuid(), nullable=True))
    op.create_foreign_key(
        op.f("fk_availability_rule_crisis_id_crisis"),
        "availability_rule",
        "crisis",
        ["crisis_id"],
        ["id"],
        ondelete="SET NULL",
    )
    op.add_column("slot", sa.Column("crisis_id", sa.Uuid(), nullable=True))
    op.create_foreign_key(
        op.f("fk_slot_crisis_id_crisis"),
        "slot",
        "crisis",
        ["crisis_id"],
        ["id"],
        ondelete="SET NULL",
    )
    op.create_index(
        "ix_slot_crisis_start",
        "slot",
        ["crisis_id", "start"],
        postgresql_where=sa.text("crisis_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_slot_crisis_start", table_name="slot")
    op.drop_constraint(op.f("fk_slot_crisis_id_crisis"), "slot", type_="foreignkey")
    op.drop_column("slot", "crisis_id")
    op.drop_constraint(
        op.f("fk_availability_rule_crisis_id_crisis"), "availability_rule", type_="foreignkey"
    )
    op.drop_column("availability_rule", "crisis_id")
    op.drop_table("crisis_call")
    op.drop_index("ix_crisis_territory_declared", table_name="crisis")
    op.drop_index("uq_crisis_running_territory", table_name="crisis")
    op.drop_table("crisis")
    op.drop_table("crisis_plan")
