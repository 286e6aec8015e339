"""api_key, practice, regulator_territory: NOTIFY creneau_callers on every change

Each process keeps the callers of recently seen API keys (app/caller_cache.py) and empties its
cache on each notification: a key's role and scope come from these three tables. The trigger is
per statement, so a bulk change sends one notification; NOTIFY is delivered at commit, and not
at all for a rolled-back transaction.

Revision ID: 0016_caller_notifications
Revises: 0015_slot_territory_key
Create Date: 2026-12-02 18:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0016_caller_notifications"
down_revision: str | None = "0015_slot_territory_key"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("api_key", "practice", "regulator_territory")


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION notify_callers_changed() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('creneau_callers', TG_TABLE_NAME);
            RETURN NULL;
        END
        $$
        """
    )
    for table in TABLES:
        op.execute(
            f"""
            CREATE TRIGGER {table}_callers_changed
                AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table}
                FOR EACH STATEMENT EXECUTE FUNCTION notify_callers_changed()
            """
        )


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"DROP TRIGGER {table}_callers_changed ON {table}")
    op.execute("DROP FUNCTION notify_callers_changed()")
