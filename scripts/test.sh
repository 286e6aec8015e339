#!/usr/bin/env bash
# Runs `alembic check` and the whole pytest suite against real PostgreSQL:
# TEST_DATABASE_URL if set, else the server at 127.0.0.1:5432 (started here when it is installed
# but down), else the embedded PostgreSQL that the tests start themselves (tests/dbtools.py).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin

if [ -z "${TEST_DATABASE_URL:-}" ] && ! (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null \
   && command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
  echo "PostgreSQL at 127.0.0.1:5432 is down: starting it"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n 1)" main start || true
fi

# alembic check: the models and the migrations describe the same schema.
"$BIN/python" -m tests.schema_check

"$BIN/pytest" "$@"
