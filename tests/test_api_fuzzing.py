"""Property-based fuzzing of the whole API from its OpenAPI schema (schemathesis, bounded):
whatever a client sends, the service never answers 5xx, errors are the documented
problem+json (OperationOutcome under /fhir) and responses match the schema. Runs the CLI
against a real server, with tests/fuzz_hooks.py adding NUL characters, huge integers, far
dates, odd offsets and forged cursors to the generated cases of every operation."""

import os
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

import asyncpg
import pytest

from app.migrate import upgrade_to_head
from app.security import digest
from bench.common import Server
from tests.dbtools import (
    database_name,
    drop_database,
    recreate_database,
    server_url,
    with_database,
)

HOOKS = Path(__file__).resolve().parent / "fuzz_hooks.py"
HOSTILE_KINDS = (
    "nul",
    "huge_integer",
    "far_date",
    "odd_time_offset",
    "odd_offset",
    "forged_cursor",
)


def _tally(path: Path) -> tuple[Counter[str], Counter[int]]:
    """Calls that carried each kind of hostile value, and their statuses."""
    by_kind: Counter[str] = Counter()
    by_status: Counter[int] = Counter()
    lines = path.read_text().splitlines() if path.exists() else []
    for line in lines:
        if line.startswith("#"):
            continue
        status, *found = line.split()
        by_status[int(status)] += 1
        by_kind.update(found)
    return by_kind, by_status


def _keep_report(text: str) -> None:
    report = Path(__file__).resolve().parent.parent / "test-artifacts" / "schemathesis.txt"
    report.parent.mkdir(exist_ok=True)
    report.write_text(text)


@pytest.mark.xdist_group("servers")  # one service subprocess at a time (scripts/test.sh)
async def test_fuzzing_finds_no_server_error(tmp_path):
    import asyncio

    url = with_database(server_url(), database_name("fuzz"))
    await recreate_database(url)
    await asyncio.to_thread(upgrade_to_head, url)
    key, key_id = f"crn_fuzz_{uuid.uuid4().hex}", uuid.uuid4()
    conn = await asyncpg.connect(url.replace("+asyncpg", ""))
    await conn.execute(
        "INSERT INTO api_key (id, name, role, prefix, digest) "
        "VALUES ($1, 'fuzz', 'admin', 'crn_fuzz', $2)",
        key_id, digest(key),
    )  # fmt: skip
    await conn.close()
    server = Server(url)
    tally = tmp_path / "hostile.txt"
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": str(HOOKS),
        "FUZZ_TALLY": str(tally),
        "FUZZ_KEY_ID": str(key_id),
    }
    try:
        await asyncio.to_thread(server.wait_ready)
        result = await asyncio.to_thread(
            subprocess.run,
            [
                sys.executable, "-m", "schemathesis.cli", "run",
                f"{server.url}/openapi.json",
                "-H", f"Authorization: Bearer {key}",
                "--checks",
                "not_a_server_error,status_code_conformance,content_type_conformance,"
                "response_schema_conformance",
                "--max-examples", "10",
                # One worker: Python 3.11's ast module is not thread-safe, and schemathesis
                # parses sources while generating ("AST constructor recursion depth mismatch").
                "--workers", "1",
                "--seed", "1",
                # Generous: the fuzzer shares two cores with the server and the database.
                "--request-timeout", "30",
            ],
            capture_output=True, text=True, timeout=420, cwd=tmp_path, env=env,
        )  # fmt: skip
    finally:
        server.stop()
        await drop_database(url)
    by_kind, by_status = _tally(tally)
    summary = f"\nHostile calls by kind: {dict(by_kind)}\nand by status: {dict(by_status)}\n"
    await asyncio.to_thread(_keep_report, result.stdout + result.stderr + summary)
    errors = result.stdout.split("=== ERRORS")[-1] if "ERRORS" in result.stdout else ""
    assert result.returncode == 0, (errors or result.stdout)[:6000] + result.stderr[-2000:]
    assert "passed" in result.stdout
    # The hooks did reach the service, with every kind, and none of it was a server error.
    assert all(by_kind[kind] >= 20 for kind in HOSTILE_KINDS), summary
    assert not [status for status in by_status if status >= 500], summary
