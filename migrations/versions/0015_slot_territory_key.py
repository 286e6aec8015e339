"""slot: one (practitioner_id, territory_id) foreign key instead of two

The slot's denormalised territory is now checked against its practitioner's, and each inserted
slot costs one referential check instead of two (materialisation inserts hundreds of thousands).

Revision ID: 0015_slot_territory_key
Revises: 0014_agenda_sign_in
Create Date: 2026-11-30 00:10:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0015_slot_territory_key"
down_revision: str | None = "0014_agenda_sign_in"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_unique_constraint(
        "uq_practitioner_id_territory", "practitioner", ["id", "territory_id"]
    )
    # Added unchecked, then validated: validation scans the slots without blocking writes.
    op.execute(
        """
        ALTER TABLE slot ADD CONSTRAINT fk_slot_practitioner_territory
            FOREIGN KEY (practitioner_id, territory_id)
            REFERENCES practitioner (id, territory_id)
            ON UPDATE CASCADE ON DELETE CASCADE NOT VALID
        """
    )
    op.execute("ALTER TABLE slot VALIDATE CONSTRAINT fk_slot_practitioner_territory")
    op.drop_constraint("fk_slot_practitioner_id_practitioner", "slot", type_="foreignkey")
    op.drop_constraint("fk_slot_territory_id_territory", "slot", type_="foreignkey")


def downgrade() -> None:
    op.create_foreign_key(
        "fk_slot_territory_id_territory",
        "slot",
        "territory",
        ["territory_id"],
        ["id"],
        ondelete="CASCADE",
    )
    op.create_foreign_key(
        "fk_slot_practitioner_id_practitioner",
        "slot",
        "practitioner",
        ["practitioner_id"],
        ["id"],
        ondelete="CASCADE",
    )
    op.drop_constraint("fk_slot_practitioner_territory", "slot", type_="foreignkey")
    op.drop_constraint("uq_practitioner_id_territory", "practitioner", type_="unique")
