"""/metrics adds up every worker's samples: with `creneau serve --workers 2`, whichever worker
answers reports the requests both served."""

from __future__ import annotations

import asyncio
import re
import time

import httpx
import pytest

from tests.test_inbound_mtls import free_port, spawn_serve

LIVE_COUNT = re.compile(
    r'^creneau_http_request_duration_seconds_count\{method="GET",route="/health/live",'
    r'status="200"\} (\S+)$',
    re.MULTILINE,
)


async def _fresh_get(url: str) -> httpx.Response:
    # A new connection each time, so the kernel spreads them over both workers.
    async with httpx.AsyncClient(timeout=10) as client:
        return await client.get(url)


@pytest.mark.xdist_group("servers")  # one service subprocess at a time (scripts/test.sh)
async def test_metrics_count_the_requests_of_every_worker(database_url, engine, tmp_path):
    port = free_port()
    log = tmp_path / "serve.log"
    proc = await spawn_serve(port, database_url, log, workers=2)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if (await _fresh_get(f"{url}/health/live")).status_code == 200:
                    break
            except httpx.TransportError:
                assert proc.returncode is None, log.read_text()[-3000:]
                assert time.monotonic() < deadline, "creneau serve did not start"
                await asyncio.sleep(0.3)
        for _ in range(29):
            assert (await _fresh_get(f"{url}/health/live")).status_code == 200
        for _ in range(6):  # whichever worker answers
            metrics = (await _fresh_get(f"{url}/metrics")).text
            counts = LIVE_COUNT.findall(metrics)
            assert [float(c) for c in counts] == [30.0], metrics[:2000]
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 20)
