"""The import contracts of pyproject.toml ([tool.importlinter]) catch an upward import: each test
runs `lint-imports` on a copy of the code, then on the copy given one import that breaks a layer."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - the venv's own lint-imports on a copy of the code
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _report_with(tree: Path, module: str, line: str, breach: str) -> str:
    """lint-imports' report once `line` is added to `module`; `breach` is not reported before."""
    shutil.copytree(ROOT / "app", tree / "app", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
    assert breach not in _lint(tree).stdout
    path = tree / module
    path.write_text(path.read_text(encoding="utf-8") + f"\n{line}\n", encoding="utf-8")
    result = _lint(tree)
    assert result.returncode != 0
    return result.stdout


def test_the_error_hierarchy_importing_a_page_renderer_breaks_the_contracts(tmp_path):
    breach = "app.errors is not allowed to import app.web"
    assert breach in _report_with(tmp_path, "app/errors.py", "import app.web.render", breach)


def test_a_domain_importing_the_api_breaks_the_layers(tmp_path):
    breach = "app.directory is not allowed to import app.api"
    assert breach in _report_with(
        tmp_path, "app/directory/models.py", "import app.api.deps", breach
    )


def test_an_import_circle_inside_a_package_breaks_the_contracts(tmp_path):
    breach = "No cycles are allowed in app.web"
    assert breach in _report_with(tmp_path, "app/web/render.py", "import app.web.auth", breach)
