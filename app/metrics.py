"""Prometheus metrics, exposed at /metrics.

With several workers each process writes its samples into PROMETHEUS_MULTIPROC_DIR (set by
`creneau serve --workers N` before the workers start) and /metrics adds them up, whichever
worker answers; with one, they stay in memory."""

import os
import shutil
from pathlib import Path

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"

REQUEST_LATENCY = Histogram(
    "creneau_http_request_duration_seconds",
    "HTTP request latency by route template",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
JOB_RUNS = Counter("creneau_job_runs_total", "Background job runs", ["job", "outcome"])
OUTBOX_PENDING = Gauge(
    "creneau_outbox_messages",
    "Outbox messages waiting (pending) or dead-lettered (failed), by kind",
    ["kind", "status"],
    # One process (the outbox job's) sets it: the last value set wins.
    multiprocess_mode="mostrecent",
)
OUTBOX_DELIVERIES = Counter(
    "creneau_outbox_deliveries_total",
    "Outbox delivery attempts by kind (webhook, sas_appointment) and outcome",
    ["kind", "outcome"],
)
CALLER_CACHE_LISTENING = Gauge(
    "creneau_caller_cache_listening",
    "Processes whose API-key caller cache is on (its LISTEN connection is up); the others "
    "read every request's key",
    multiprocess_mode="livesum",
)
BOOKING_CONFLICTS = Counter(
    "creneau_booking_conflicts_total", "Booking attempts refused because the slot was gone"
)


def share_between_workers(directory: Path) -> None:
    """Before the workers start: an empty directory for their samples, in the environment
    they inherit."""
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    os.environ[MULTIPROCESS_DIR] = str(directory)


def exposition() -> bytes:
    """Every worker's metrics in the text format."""
    if os.environ.get(MULTIPROCESS_DIR):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest()


def worker_stopped() -> None:
    """A stopping worker's live gauges no longer count."""
    if os.environ.get(MULTIPROCESS_DIR):
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]
