"""The service's one clock. Code that needs the time calls `now_utc()` (or takes `now` as a
parameter); tests and tools set another time with `frozen_at(instant)`, so that the
behaviour around a date (a change of the clocks, a year end) can be run on any day."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

_clock: Callable[[], datetime] | None = None


def now_utc() -> datetime:
    """The current instant (aware, UTC), from the clock set by `frozen_at` if any."""
    if _clock is not None:
        return _clock().astimezone(UTC)
    return datetime.now(UTC)


@contextmanager
def use_clock(clock: Callable[[], datetime]) -> Iterator[None]:
    """Read the time from `clock` until the block ends."""
    global _clock
    previous, _clock = _clock, clock
    try:
        yield
    finally:
        _clock = previous


class FrozenClock:
    """A clock that stands still at `at` until moved (`advance`, `set`)."""

    def __init__(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("the clock needs an aware instant")
        self.at = at.astimezone(UTC)

    def __call__(self) -> datetime:
        return self.at

    def set(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("the clock needs an aware instant")
        self.at = at.astimezone(UTC)

    def advance(self, **delta: float) -> None:
        self.at += timedelta(**delta)


@contextmanager
def frozen_at(at: datetime) -> Iterator[FrozenClock]:
    """The service's time stands at `at` (movable through the yielded clock)."""
    clock = FrozenClock(at)
    with use_clock(clock):
        yield clock
