"""Property-based fuzzing of the whole API from its OpenAPI schema (schemathesis, bounded):
whatever a client sends, the service never answers 5xx, errors are the documented
problem+json (OperationOutcome under /fhir) and responses match the schema. Runs the CLI
against a real server."""

import subprocess
import sys
import uuid
from pathlib import Path

import asyncpg

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


def _keep_report(text: str) -> None:
    report = Path(__file__).resolve().parent.parent / "test-artifacts" / "schemathesis.txt"
    report.parent.mkdir(exist_ok=True)
    report.write_text(text)


async def test_fuzzing_finds_no_server_error(tmp_path):
    import asyncio

    url = with_database(server_url(), database_name("fuzz"))
    await recreate_database(url)
    await asyncio.to_thread(upgrade_to_head, url)
    key = f"crn_fuzz_{uuid.uuid4().hex}"
    conn = await asyncpg.connect(url.replace("+asyncpg", ""))
    await conn.execute(
        "INSERT INTO api_key (id, name, role, prefix, digest) "
        "VALUES ($1, 'fuzz', 'admin', 'crn_fuzz', $2)",
        uuid.uuid4(), digest(key),
    )  # fmt: skip
    await conn.close()
    server = Server(url)
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
            capture_output=True, text=True, timeout=300, cwd=tmp_path,
        )  # fmt: skip
    finally:
        server.stop()
        await drop_database(url)
    await asyncio.to_thread(_keep_report, result.stdout + result.stderr)
    errors = result.stdout.split("=== ERRORS")[-1] if "ERRORS" in result.stdout else ""
    assert result.returncode == 0, (errors or result.stdout)[:6000] + result.stderr[-2000:]
    assert "passed" in result.stdout
