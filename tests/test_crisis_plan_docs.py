"""docs/crisis-plan.md's curl example runs as written on the demo (`make run`)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from tests.test_readme_examples import demo, run_bash  # noqa: F401 - the demo fixture

DOC = Path(__file__).resolve().parent.parent / "docs" / "crisis-plan.md"


@pytest.mark.xdist_group("servers")  # one service subprocess at a time (scripts/test.sh)
async def test_the_curl_example_runs_on_the_demo(demo: tuple[Path, int]) -> None:  # noqa: F811
    cwd, port = demo
    [block] = re.findall(r"```sh\n(.*?)```", DOC.read_text(), flags=re.S)
    ran = await asyncio.to_thread(run_bash, block, cwd, port)
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    # The demo's plan, then its next version naming the volunteer with its RPPS and practice.
    assert ran.stdout.count('"version": 1') == 1 and ran.stdout.count('"version": 2') == 1
    assert '"rpps": "' in ran.stdout and '"practice_name": "' in ran.stdout
    assert "Alerter l'ARS et le SAS" in ran.stdout
