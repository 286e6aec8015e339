"""What the console shows: job runs are debug detail, job failures are not."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from app.logging_setup import configure_logging


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    names = ("apscheduler.executors", "apscheduler.scheduler")
    levels = {name: logging.getLogger(name).level for name in names}
    yield
    root.handlers[:], level = saved
    root.setLevel(level)
    for name, value in levels.items():
        logging.getLogger(name).setLevel(value)


def test_job_runs_are_not_logged_at_info(restore_logging: None) -> None:
    configure_logging("INFO", "text")
    executor = logging.getLogger("apscheduler.executors.default")
    assert not executor.isEnabledFor(logging.INFO)  # "Running job ..." every 2 s
    assert executor.isEnabledFor(logging.ERROR)  # "Job ... raised an exception"


def test_job_runs_are_logged_at_debug(restore_logging: None) -> None:
    configure_logging("DEBUG", "text")
    assert logging.getLogger("apscheduler.executors.default").isEnabledFor(logging.DEBUG)
