#!/usr/bin/env bash
# On demand, not in CI: the pytest suite run with the whole world's clock set to chosen instants
# (UTC) — the PostgreSQL server, the tests and the service they start all run under
# libfaketime (the `libfaketime` wheel of the dev dependencies) with the same offset, so a test
# that only passes on today's date, or at some hours, fails here. The browser tests are left
# out (Chromium spins under a faked clock). A throwaway PostgreSQL cluster is made for the run
# in $SWEEP_DIR (default /tmp/creneau-clock-sweep) on port $SWEEP_PORT (default 5439).
#
#   bash scripts/clock_sweep.sh                          # the instants below
#   bash scripts/clock_sweep.sh "2027-03-28 00:50:00"    # one instant; more arguments: more
#   SWEEP_PYTEST_ARGS="tests/test_bookings.py" bash scripts/clock_sweep.sh
#
# Prints one line per instant (pytest's closing line) and each failure; the whole output of an
# instant is in $SWEEP_DIR/<instant>.log. Needs PostgreSQL's server binaries (pg_ctl, initdb:
# `pg_config --bindir`, else the newest /usr/lib/postgresql/*/bin); run as root, the cluster
# runs as the `postgres` user.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
SWEEP_DIR=${SWEEP_DIR:-/tmp/creneau-clock-sweep}
SWEEP_PORT=${SWEEP_PORT:-5439}

if [ "$#" -eq 0 ]; then
  set -- \
    "2027-01-13 10:00:00" `# an ordinary Wednesday morning: the control` \
    "2026-12-07 02:50:00" `# 03:50 in Paris: a surnuméraire 20 h ahead runs over midnight` \
    "2027-03-28 00:50:00" `# ten minutes before the clocks go forward in Paris` \
    "2027-10-31 00:30:00" `# half an hour before they go back` \
    "2027-12-31 22:50:00" `# New Year's Eve, 23:50 in Paris` \
    "2028-02-28 22:50:00" `# the eve of a leap day, 23:50 in Paris`
fi

faketime_lib=$("$BIN/python" -c 'import libfaketime, pathlib
print(pathlib.Path(libfaketime.__file__).parent / "vendor/libfaketime/src/libfaketime.so.1")')
[ -f "$faketime_lib" ] || { echo "libfaketime missing: make install"; exit 2; }
pg_bin=$(pg_config --bindir 2>/dev/null || true)
[ -x "$pg_bin/initdb" ] || pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -x "$pg_bin/initdb" ] || { echo "PostgreSQL's server binaries (initdb, pg_ctl) not found"; exit 2; }

as_owner=()
if [ "$(id -u)" = 0 ]; then as_owner=(runuser -u postgres --); fi
mkdir -p "$SWEEP_DIR" && chmod 777 "$SWEEP_DIR"
data="$SWEEP_DIR/pgdata"
pg() { "${as_owner[@]}" "$pg_bin/pg_ctl" -D "$data" -l "$SWEEP_DIR/postgres.log" -w "$@" >/dev/null; }
if [ ! -d "$data" ]; then
  mkdir -p "$data" && { [ "${#as_owner[@]}" -eq 0 ] || chown postgres "$data"; }
  "${as_owner[@]}" "$pg_bin/initdb" -D "$data" -A trust -U postgres >/dev/null || exit 2
fi

status=0
for instant in "$@"; do
  offset=$(( $(date -u -d "$instant UTC" +%s) - $(date -u +%s) ))
  log="$SWEEP_DIR/$(echo "$instant" | tr ' :' '__').log"
  (
    export LD_PRELOAD="$faketime_lib" FAKETIME="+${offset}" FAKETIME_DONT_FAKE_MONOTONIC=1
    pg start -o "-p $SWEEP_PORT -k /tmp"
    # shellcheck disable=SC2086  # SWEEP_PYTEST_ARGS: several words on purpose
    TEST_DATABASE_URL="postgresql://postgres@127.0.0.1:$SWEEP_PORT/creneau_test" \
      "$BIN/pytest" -n "${PYTEST_WORKERS:-auto}" --dist loadgroup -q -p no:randomly -rfE \
      --ignore-glob='tests/test_browser_*' ${SWEEP_PYTEST_ARGS:-}
    code=$?
    pg stop
    exit $code
  ) >"$log" 2>&1 || status=1
  echo "$instant UTC: $(tail -n 1 "$log")"
  grep -E '^(FAILED|ERROR) ' "$log" | sed 's/^/  /'
done
exit $status
