"""security: key-page sessions ended by sign-out; webhook endpoints scoped to a territory

A key minted by a coordinator keeps its territory in `api_key.territory_id` (already stored);
regulator keys now act only there (app/security.py), so no column changes for that. Sign-out
records the session it ends in `ended_web_session`, refused from then on by every worker. A
webhook endpoint registered with such a key gets `territory_id`: only that territory's events.

Revision ID: 0017_key_territory_scope
Revises: 0021_feed_import_report
Create Date: 2026-12-04 15:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017_key_territory_scope"
down_revision: str | None = "0021_feed_import_report"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ended_web_session",
        sa.Column("nonce_digest", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.Uuid(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["key_id"],
            ["api_key.id"],
            name=op.f("fk_ended_web_session_key_id_api_key"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("nonce_digest", name=op.f("pk_ended_web_session")),
    )
    op.create_index(
        op.f("ix_ended_web_session_expires_at"), "ended_web_session", ["expires_at"], unique=False
    )
    op.create_index(
        op.f("ix_ended_web_session_key_id"), "ended_web_session", ["key_id"], unique=False
    )
    op.add_column("webhook_endpoint", sa.Column("territory_id", sa.Uuid(), nullable=True))
    op.create_index(
        op.f("ix_webhook_endpoint_territory_id"), "webhook_endpoint", ["territory_id"], unique=False
    )
    op.create_foreign_key(
        op.f("fk_webhook_endpoint_territory_id_territory"),
        "webhook_endpoint",
        "territory",
        ["territory_id"],
        ["id"],
        ondelete="CASCADE",
    )


def downgrade() -> None:
    op.drop_constraint(
        op.f("fk_webhook_endpoint_territory_id_territory"), "webhook_endpoint", type_="foreignkey"
    )
    op.drop_index(op.f("ix_webhook_endpoint_territory_id"), table_name="webhook_endpoint")
    op.drop_column("webhook_endpoint", "territory_id")
    op.drop_index(op.f("ix_ended_web_session_key_id"), table_name="ended_web_session")
    op.drop_index(op.f("ix_ended_web_session_expires_at"), table_name="ended_web_session")
    op.drop_table("ended_web_session")
