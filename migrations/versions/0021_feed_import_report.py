"""agenda_import: skipped events, their count, the encoding read; status `partial` for an
import that skipped some events; agenda_feed.last_skipped

Revision ID: 0021_feed_import_report
Revises: 0018_overbooking_guards
Create Date: 2026-12-04 15:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0021_feed_import_report"
down_revision: str | None = "0018_overbooking_guards"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "agenda_import",
        sa.Column(
            "skipped",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
    )
    op.add_column(
        "agenda_import",
        sa.Column("skipped_count", sa.Integer(), server_default="0", nullable=False),
    )
    op.add_column("agenda_import", sa.Column("encoding", sa.String(length=100), nullable=True))
    op.add_column(
        "agenda_feed",
        sa.Column("last_skipped", sa.Integer(), server_default="0", nullable=False),
    )
    op.drop_constraint(op.f("ck_agenda_import_status"), "agenda_import", type_="check")
    op.create_check_constraint(
        op.f("ck_agenda_import_status"),
        "agenda_import",
        "status IN ('ok', 'partial', 'not_modified', 'failed')",
    )
    op.drop_constraint(op.f("ck_agenda_feed_last_status"), "agenda_feed", type_="check")
    op.create_check_constraint(
        op.f("ck_agenda_feed_last_status"),
        "agenda_feed",
        "last_status IN ('pending', 'ok', 'partial', 'not_modified', 'failed')",
    )


def downgrade() -> None:
    op.execute("UPDATE agenda_import SET status = 'ok' WHERE status = 'partial'")
    op.execute("UPDATE agenda_feed SET last_status = 'ok' WHERE last_status = 'partial'")
    op.drop_constraint(op.f("ck_agenda_feed_last_status"), "agenda_feed", type_="check")
    op.create_check_constraint(
        op.f("ck_agenda_feed_last_status"),
        "agenda_feed",
        "last_status IN ('pending', 'ok', 'not_modified', 'failed')",
    )
    op.drop_constraint(op.f("ck_agenda_import_status"), "agenda_import", type_="check")
    op.create_check_constraint(
        op.f("ck_agenda_import_status"),
        "agenda_import",
        "status IN ('ok', 'not_modified', 'failed')",
    )
    op.drop_column("agenda_feed", "last_skipped")
    op.drop_column("agenda_import", "encoding")
    op.drop_column("agenda_import", "skipped_count")
    op.drop_column("agenda_import", "skipped")
