"""The callers of recently seen API keys, per process, so that most requests skip the key
lookup's round trip.

A cached caller is only as good as the rows it was read from (`api_key`, the practice's
territory, the SAS's linked territories). Statement-level triggers on those three tables
`NOTIFY creneau_callers` in the changing transaction (delivered when it commits), and every
notification empties the cache. The cache is used only while its LISTEN connection is up: not
before it has connected, not while PostgreSQL restarts (it is emptied on each reconnection, for
the notifications missed while down). A revoked key is therefore refused as soon as the
revocation's commit reaches this process, as it would be by a lookup; entries also expire after
`ttl_seconds`, a bound on staleness should a notification ever be lost.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Final

import asyncpg

from app.metrics import CALLER_CACHE_LISTENING
from app.security import Caller

log = logging.getLogger(__name__)

CHANNEL: Final = "creneau_callers"
# Health check of the LISTEN connection: a connection that silently died (no reset seen)
# would miss notifications; a failed check turns the cache off until it reconnects.
CHECK_SECONDS: Final = 10.0
RECONNECT_MAX_SECONDS: Final = 10.0


class CallerCache:
    def __init__(self, ttl_seconds: float, max_entries: int = 10_000) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self._entries: dict[str, tuple[float, Caller]] = {}
        # Bumped by each invalidation: a lookup that began before one must not store its
        # (possibly stale) answer after it.
        self._generation = 0
        self._listening = False

    @property
    def enabled(self) -> bool:
        return self.ttl_seconds > 0

    @property
    def active(self) -> bool:
        """Whether cached callers may be used: only while changes are being heard."""
        return self._listening

    def __len__(self) -> int:
        return len(self._entries)

    def generation(self) -> int:
        return self._generation

    def get(self, digest: str) -> Caller | None:
        if not self._listening:
            return None
        entry = self._entries.get(digest)
        if entry is None:
            return None
        expires, caller = entry
        if expires <= time.monotonic():
            del self._entries[digest]
            return None
        return caller

    def put(self, digest: str, caller: Caller, generation: int) -> None:
        """Keep the caller read for `digest` by a lookup that began at `generation`."""
        if not self._listening or generation != self._generation:
            return
        if len(self._entries) >= self.max_entries and digest not in self._entries:
            # The oldest entry goes (dicts keep insertion order).
            del self._entries[next(iter(self._entries))]
        self._entries[digest] = (time.monotonic() + self.ttl_seconds, caller)

    def invalidate(self) -> None:
        self._generation += 1
        self._entries.clear()

    def start_listening(self) -> None:
        self.invalidate()  # what was cached before may have changed unheard
        self._listening = True

    def stop_listening(self) -> None:
        self._listening = False
        self.invalidate()


async def listen(cache: CallerCache, dsn: str) -> None:
    """Keep a LISTEN connection to `dsn` (asyncpg's postgresql:// form) up for `cache`, until
    cancelled. While it is down the cache is off; each reconnection empties it."""
    delay = 0.5
    while True:
        try:
            conn = await asyncpg.connect(
                dsn, timeout=5, server_settings={"application_name": "creneau-callers"}
            )
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
            log.warning("caller cache: cannot listen, retrying", extra={"retry_seconds": delay})
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX_SECONDS)
            continue
        delay = 0.5
        try:
            await _listen_on(cache, conn)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
            pass
        finally:
            cache.stop_listening()
            CALLER_CACHE_LISTENING.set(0)
            conn.terminate()
        log.warning("caller cache: listening connection lost, cache off until it is back")
        await asyncio.sleep(delay)


async def _listen_on(cache: CallerCache, conn: asyncpg.Connection) -> None:
    """Turn the cache on while `conn` listens; return when the connection is lost."""
    lost = asyncio.Event()
    conn.add_termination_listener(lambda _conn: lost.set())
    await conn.add_listener(CHANNEL, lambda *_: cache.invalidate())
    cache.start_listening()
    CALLER_CACHE_LISTENING.set(1)
    log.info("caller cache: listening")
    while not lost.is_set():
        try:
            await asyncio.wait_for(lost.wait(), timeout=CHECK_SECONDS)
        except TimeoutError:
            await conn.fetchval("SELECT 1", timeout=5)
