"""Rate limiting per API key: a token bucket per key in each worker process, so a runaway
client cannot starve the regulators. With N workers the effective limit is up to N times the
setting (documented in README)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from app.errors import TooManyRequests


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    def __init__(self, per_minute: int, burst: int | None = None) -> None:
        self.rate = per_minute / 60.0
        self.capacity = float(burst if burst is not None else max(per_minute // 6, 10))
        self._buckets: dict[uuid.UUID, _Bucket] = {}

    @classmethod
    def hourly(cls, per_hour: int) -> RateLimiter:
        """`per_hour` at once, then one every 3600 / per_hour seconds (0: no limit)."""
        limiter = cls(0, burst=max(per_hour, 1))
        limiter.rate = per_hour / 3600.0
        return limiter

    def check(self, key_id: uuid.UUID) -> None:
        """Take a token, or raise a 429 saying when the next one is due."""
        if self.rate <= 0:
            return
        now = time.monotonic()
        bucket = self._buckets.get(key_id)
        if bucket is None:
            bucket = self._buckets[key_id] = _Bucket(self.capacity, now)
        bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return
        wait = max(1, int((1 - bucket.tokens) / self.rate + 0.999))
        raise TooManyRequests(
            f"Too many requests for this API key; retry in {wait} s",
            headers={"Retry-After": str(wait)},
        )
