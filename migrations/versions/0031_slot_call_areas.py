"""Calls for slots per group of communes: the coordinator's floors for groups of communes
(`slot_call_area_floor`) and the group a call was made for (`slot_call.area_id`)

Revision ID: 0031_slot_call_areas
Revises: 0030_crisis_surge
Create Date: 2026-12-05 13:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0031_slot_call_areas"
down_revision: str | None = "0030_crisis_surge"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "slot_call_area_floor",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("territory_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("communes", postgresql.ARRAY(sa.String(length=5)), nullable=False),
        sa.Column("floor", sa.Integer(), nullable=False),
        sa.Column("window_hours", sa.Integer(), server_default=sa.text("48"), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("floor >= 0", name=op.f("ck_slot_call_area_floor_floor")),
        sa.CheckConstraint(
            "window_hours BETWEEN 1 AND 168", name=op.f("ck_slot_call_area_floor_window_hours")
        ),
        sa.CheckConstraint(
            "cardinality(communes) >= 1", name=op.f("ck_slot_call_area_floor_communes")
        ),
        sa.ForeignKeyConstraint(
            ["territory_id"],
            ["territory.id"],
            name=op.f("fk_slot_call_area_floor_territory_id_territory"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_slot_call_area_floor")),
        sa.UniqueConstraint("territory_id", "name", name="uq_slot_call_area_floor_territory_name"),
    )
    op.add_column("slot_call", sa.Column("area_id", sa.Uuid(), nullable=True))
    op.create_foreign_key(
        op.f("fk_slot_call_area_id_slot_call_area_floor"),
        "slot_call",
        "slot_call_area_floor",
        ["area_id"],
        ["id"],
        ondelete="SET NULL",
    )


def downgrade() -> None:
    op.drop_constraint(
        op.f("fk_slot_call_area_id_slot_call_area_floor"), "slot_call", type_="foreignkey"
    )
    op.drop_column("slot_call", "area_id")
    op.drop_table("slot_call_area_floor")
