"""Fault scenarios against a real server under booking load, each ending in PASS or FAIL lines
with the numbers behind them:

(a) PostgreSQL crashes (`pg_ctl stop -m immediate`) and comes back during a booking load. A
    PostgreSQL of its own is started for this (initdb in a temporary directory, another port):
    the shared server at 127.0.0.1:5432 is never stopped. Checks: /health/ready says 503 while
    it is down and 200 after, with no restart of the service; every booking answered 201 is in
    the database; each request that got no answer, retried with its Idempotency-Key, gets
    either its booking or a 409, never a second booking; slots and bookings agree.
(b) Webhook receivers that time out or answer 500: booking latency compared with a healthy
    receiver and with no webhook at all, while the outbox keeps trying.
(c) A uvicorn worker killed with SIGKILL mid-load (2 workers): the other keeps serving, the
    supervisor starts a replacement, and the database is consistent, as in (a).

    .venv/bin/python -m bench.faults [--only a,b,c] [--seconds 12] [--clients 8]
"""

from __future__ import annotations

import argparse
import asyncio

from bench.fault_load import RESULTS
from bench.fault_postgres import scenario_postgres_restart
from bench.fault_webhooks import scenario_bad_webhooks
from bench.fault_worker import scenario_killed_worker


async def main(only: set[str], clients: int, seconds: float) -> int:
    if "a" in only:
        await scenario_postgres_restart(clients, seconds)
    if "b" in only:
        await scenario_bad_webhooks(clients, seconds)
    if "c" in only:
        await scenario_killed_worker(clients, seconds)
    failed = [name for name, ok, _ in RESULTS if not ok]
    print(f"\n{len(RESULTS) - len(failed)} PASS, {len(failed)} FAIL")
    return 1 if failed else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="a,b,c")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=12)
    args = parser.parse_args()
    raise SystemExit(asyncio.run(main(set(args.only.split(",")), args.clients, args.seconds)))
