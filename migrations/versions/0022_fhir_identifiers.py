"""practice: cabinet_id (RPPS rang / ADELI rang, with prefix) and booking_url

A private practice with neither FINESS nor SIRET is identified to the SAS platform by its
RPPS rang (prefix `4`) or ADELI rang (prefix `0`), as the Annuaire Santé gives it ("ancien
identifiant de la structure"). `booking_url` is the practice's own public booking page, the
SMART Scheduling Links booking deep link of its public slots.

Revision ID: 0022_fhir_identifiers
Revises: 0023_unmet_requests
Create Date: 2026-12-04 15:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022_fhir_identifiers"
down_revision: str | None = "0023_unmet_requests"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("practice", sa.Column("cabinet_id", sa.String(length=20), nullable=True))
    op.add_column("practice", sa.Column("booking_url", sa.String(length=500), nullable=True))


def downgrade() -> None:
    op.drop_column("practice", "booking_url")
    op.drop_column("practice", "cabinet_id")
