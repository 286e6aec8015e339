"""The README's "First calls" run as written: `creneau seed-demo --env-file` and `creneau serve`
as `make run` starts them, then every shell block of the section in order, in bash."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.dbtools import database_name, drop_database, recreate_database, server_url
from tests.dbtools import with_database as database_at
from tests.test_inbound_mtls import free_port, spawn_serve

ROOT = Path(__file__).resolve().parent.parent


def first_calls_blocks() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## First calls", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)```", section, flags=re.S)


def run_bash(script: str, cwd: Path, port: int) -> subprocess.CompletedProcess[str]:
    script = script.replace("127.0.0.1:8000", f"127.0.0.1:{port}")
    bash = shutil.which("bash")
    assert bash is not None
    # The script is the README's own text: running it is the point of the test.
    return subprocess.run(  # noqa: S603
        [bash, "-euo", "pipefail", "-c", script],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if not k.startswith("PYTHON")},
    )


@pytest.fixture
async def demo(tmp_path: Path) -> AsyncIterator[tuple[Path, int]]:
    """A served demo, as `make run` leaves it: the working directory holding .data/demo.env
    and the port."""
    url = database_at(server_url(), database_name("readme"))
    await recreate_database(url)
    env = {**os.environ, "DATABASE_URL": url}
    seeded = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "app.cli", "seed-demo", "--env-file", ".data/demo.env"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert seeded.returncode == 0, seeded.stderr
    port = free_port()
    proc = await spawn_serve(port, url, tmp_path / "serve.log", workers=1)
    try:
        async with httpx.AsyncClient() as http:
            for _ in range(300):
                try:
                    if (await http.get(f"http://127.0.0.1:{port}/health/ready")).is_success:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
            else:
                raise AssertionError((tmp_path / "serve.log").read_text()[-3000:])
        yield tmp_path, port
    finally:
        proc.terminate()
        await proc.wait()
        await drop_database(url)


def test_the_readme_has_first_calls() -> None:
    assert len(first_calls_blocks()) >= 3


@pytest.mark.xdist_group("servers")  # one service subprocess at a time (scripts/test.sh)
async def test_first_calls_run_as_written_on_the_demo(demo: tuple[Path, int]) -> None:
    cwd, port = demo
    blocks = first_calls_blocks()
    ran = await asyncio.to_thread(run_bash, "\n".join(blocks), cwd, port)
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    assert '"status": "booked"' in ran.stdout
    assert '"modality": "teleconsultation"' in ran.stdout
    # What the README says of a second time: the rule's slots would overlap the first ones.
    again = await asyncio.to_thread(run_bash, ". .data/demo.env\n" + blocks[-1], cwd, port)
    assert again.returncode != 0
    assert '"status": 409' in again.stdout
