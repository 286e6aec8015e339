"""docs/mt-outreach.md's examples run as written: its `sh` blocks in order, in bash, against the
demo as `make run` serves it (the fixture of the README's first calls)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from tests.test_readme_examples import ROOT, demo, run_bash  # noqa: F401 - fixture

GUIDE = ROOT / "docs" / "mt-outreach.md"


def guide_blocks() -> list[str]:
    return re.findall(r"```sh\n(.*?)```", GUIDE.read_text(), flags=re.S)


@pytest.mark.xdist_group("servers")  # one service subprocess at a time (scripts/test.sh)
async def test_the_guide_examples_run_on_the_demo(demo: tuple[Path, int]) -> None:  # noqa: F811
    cwd, port = demo
    ran = await asyncio.to_thread(run_bash, "\n".join(guide_blocks()), cwd, port)
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    out = ran.stdout
    # The commune asked for, then chosen; the reference, then where it stands.
    assert 'name="commune.choix.0" value="15014"' in out
    assert 'name="commune.choix.0" value="15267"' in out
    assert re.search(r"^reference: [A-Z0-9]{5}-[A-Z0-9]{5}$", out, flags=re.M)
    assert "Votre demande est dans la file d'attente" in out
    assert "self 0 True Ytrac" in out  # the declared ALD waits for the coordinator
    assert '"reason_code": "capacity"' in out and '"declined_by": "practitioner"' in out
    assert "2 created, 1 rejected" in out and "2 created, 0 merged, 1 rejected" in out
