"""Prometheus metrics, exposed at /metrics."""

from prometheus_client import Counter, Gauge, Histogram

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
)
OUTBOX_DELIVERIES = Counter(
    "creneau_outbox_deliveries_total",
    "Outbox delivery attempts by kind (webhook, sas_appointment) and outcome",
    ["kind", "outcome"],
)
BOOKING_CONFLICTS = Counter(
    "creneau_booking_conflicts_total", "Booking attempts refused because the slot was gone"
)
