"""unmet_request: SNP requests a regulator could not place (declared, or empty searches)

No patient identity: where, which modality, within how long and why. Empty searches count once
per regulator, commune and half hour (partial unique index).

Revision ID: 0023_unmet_requests
Revises: 0020_indicators_end_state
Create Date: 2026-12-04 15:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023_unmet_requests"
down_revision: str | None = "0020_indicators_end_state"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "unmet_request",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("territory_id", sa.Uuid(), nullable=False),
        sa.Column("regulator_id", sa.Uuid(), nullable=True),
        sa.Column("recorded_by_key_id", sa.Uuid(), nullable=True),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("commune_insee", sa.String(length=5), nullable=True),
        sa.Column("lat", sa.Double(), nullable=True),
        sa.Column("lon", sa.Double(), nullable=True),
        sa.Column("modality", sa.String(length=20), nullable=True),
        sa.Column("wanted_within_hours", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(length=30), nullable=False),
        sa.Column("sas_case_ref", sa.String(length=64), nullable=True),
        sa.Column("half_hour", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "kind IN ('declared', 'empty_search')", name=op.f("ck_unmet_request_kind")
        ),
        sa.CheckConstraint(
            "reason IN ('no_slot', 'no_suitable_slot', 'too_far', 'too_late', "
            "'modality_unavailable', 'patient_refused', 'other')",
            name=op.f("ck_unmet_request_reason"),
        ),
        sa.CheckConstraint(
            "modality IS NULL OR modality IN ('cabinet', 'visite', 'teleconsultation')",
            name=op.f("ck_unmet_request_modality"),
        ),
        sa.CheckConstraint(
            "wanted_within_hours IS NULL OR wanted_within_hours BETWEEN 1 AND 720",
            name=op.f("ck_unmet_request_wanted_within_hours"),
        ),
        sa.CheckConstraint(
            "(kind = 'empty_search') = (half_hour IS NOT NULL)",
            name=op.f("ck_unmet_request_half_hour"),
        ),
        sa.ForeignKeyConstraint(
            ["territory_id"],
            ["territory.id"],
            name=op.f("fk_unmet_request_territory_id_territory"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["regulator_id"],
            ["regulator.id"],
            name=op.f("fk_unmet_request_regulator_id_regulator"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_unmet_request")),
    )
    op.create_index(
        "ix_unmet_request_territory_recorded",
        "unmet_request",
        ["territory_id", "recorded_at"],
    )
    op.create_index(
        "uq_unmet_request_empty_search",
        "unmet_request",
        ["regulator_id", "commune_insee", "half_hour"],
        unique=True,
        postgresql_where=sa.text("kind = 'empty_search'"),
    )

    op.create_table(
        "slot_call_floor",
        sa.Column("territory_id", sa.Uuid(), nullable=False),
        sa.Column("floor", sa.Integer(), nullable=False),
        sa.Column("window_hours", sa.Integer(), server_default=sa.text("48"), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("floor >= 0", name=op.f("ck_slot_call_floor_floor")),
        sa.CheckConstraint(
            "window_hours BETWEEN 1 AND 168", name=op.f("ck_slot_call_floor_window_hours")
        ),
        sa.ForeignKeyConstraint(
            ["territory_id"],
            ["territory.id"],
            name=op.f("fk_slot_call_floor_territory_id_territory"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("territory_id", name=op.f("pk_slot_call_floor")),
    )
    op.create_table(
        "slot_call_opt_in",
        sa.Column("practitioner_id", sa.Uuid(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["practitioner_id"],
            ["practitioner.id"],
            name=op.f("fk_slot_call_opt_in_practitioner_id_practitioner"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("practitioner_id", name=op.f("pk_slot_call_opt_in")),
    )
    op.create_table(
        "slot_call",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("territory_id", sa.Uuid(), nullable=False),
        sa.Column("practitioner_id", sa.Uuid(), nullable=False),
        sa.Column("practice_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("free_slots", sa.Integer(), nullable=False),
        sa.Column("floor", sa.Integer(), nullable=False),
        sa.Column(
            "mail_status",
            sa.String(length=10),
            server_default=sa.text("'pending'"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "mail_status IN ('pending', 'sent', 'failed')", name=op.f("ck_slot_call_mail_status")
        ),
        sa.ForeignKeyConstraint(
            ["territory_id"],
            ["territory.id"],
            name=op.f("fk_slot_call_territory_id_territory"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["practitioner_id"],
            ["practitioner.id"],
            name=op.f("fk_slot_call_practitioner_id_practitioner"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_slot_call")),
        sa.UniqueConstraint("practitioner_id", "day", name="uq_slot_call_practitioner_day"),
    )
    op.create_index("ix_slot_call_territory_sent", "slot_call", ["territory_id", "sent_at"])


def downgrade() -> None:
    op.drop_table("slot_call")
    op.drop_table("slot_call_opt_in")
    op.drop_table("slot_call_floor")
    op.drop_table("unmet_request")
