"""commune: the referential of French communes (INSEE code, name, département, postal codes),
loaded from app/directory/data/communes.csv.gz at start-up or by `creneau communes load`

Revision ID: 0026_communes
Revises: 0025_mt_outreach
Create Date: 2026-12-04 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0026_communes"
down_revision: str | None = "0025_mt_outreach"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "commune",
        sa.Column("insee", sa.String(length=5), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("name_key", sa.String(length=100), nullable=False),
        sa.Column("departement", sa.String(length=3), nullable=False),
        sa.Column("postal_codes", postgresql.ARRAY(sa.String(length=5)), nullable=False),
        sa.Column("population", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("insee", name=op.f("pk_commune")),
    )
    op.create_index(
        "ix_commune_name_key",
        "commune",
        ["name_key"],
        postgresql_ops={"name_key": "text_pattern_ops"},
    )
    op.create_index("ix_commune_postal_codes", "commune", ["postal_codes"], postgresql_using="gin")


def downgrade() -> None:
    op.drop_index("ix_commune_postal_codes", table_name="commune")
    op.drop_index("ix_commune_name_key", table_name="commune")
    op.drop_table("commune")
