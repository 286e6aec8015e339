"""Prometheus metrics, exposed at /metrics."""

from prometheus_client import Counter, Histogram

REQUEST_LATENCY = Histogram(
    "creneau_http_request_duration_seconds",
    "HTTP request latency by route template",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
JOB_RUNS = Counter("creneau_job_runs_total", "Background job runs", ["job", "outcome"])
