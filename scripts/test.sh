#!/usr/bin/env bash
# `make test`: every check CI runs. ruff, mypy and `alembic check` run beside the pytest suite,
# which runs in parallel (pytest-xdist, PYTEST_WORKERS processes, default: one per core), each
# worker with its own databases, against real PostgreSQL: TEST_DATABASE_URL if set, else the
# server at 127.0.0.1:5432 (started here when it is installed but down), else the embedded
# PostgreSQL that the tests start themselves (tests/dbtools.py). Arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin

if [ -z "${TEST_DATABASE_URL:-}" ] && ! (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null \
   && command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
  echo "PostgreSQL at 127.0.0.1:5432 is down: starting it"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n 1)" main start || true
fi

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# Static checks, the import contracts (lint-imports), then alembic check (the models and the migrations describe the same schema):
# single-threaded, they take a share of the cores while pytest's workers wait on PostgreSQL.
(
  "$BIN/ruff" check . && "$BIN/ruff" format --check . && "$BIN/mypy" app \
    && "$BIN/lint-imports" && "$BIN/python" -m tests.schema_check
) >"$out/checks" 2>&1 &
checks=$!

# --dist loadgroup: the tests marked xdist_group("servers") start the service in subprocesses
# (several workers each, or the fuzzer): they run one after another on one worker.
pytest_status=0
"$BIN/pytest" -n "${PYTEST_WORKERS:-auto}" --dist loadgroup "$@" 2>&1 | tee "$out/pytest" \
  || pytest_status=$?

checks_status=0
wait "$checks" || checks_status=$?
echo "--- ruff, mypy, alembic check"
cat "$out/checks"
if [ "$checks_status" -ne 0 ]; then
  echo "ruff, mypy or alembic check FAILED (exit $checks_status)"
fi
# pytest's own closing line ("N passed, N failed in ...") stays the last line of the run.
echo "--- pytest"
tail -n 1 "$out/pytest"
[ "$checks_status" -eq 0 ] && [ "$pytest_status" -eq 0 ]
