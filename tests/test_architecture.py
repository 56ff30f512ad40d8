"""The production layer never depends on the example app."""

from __future__ import annotations

import ast
from pathlib import Path

SHIPSHAPE = Path(__file__).resolve().parents[1] / "src" / "shipshape"


def imported_modules(path: Path) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module)
    return modules


def test_shipshape_never_imports_app() -> None:
    files = sorted(SHIPSHAPE.rglob("*.py"))
    assert len(files) > 5
    offenders = {
        str(path.relative_to(SHIPSHAPE)): sorted(
            m for m in imported_modules(path) if m == "app" or m.startswith("app.")
        )
        for path in files
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_check_itself_catches_an_app_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import app.models\nfrom app import create_app\nfrom . import sibling\n")
    assert imported_modules(bad) == {"app.models", "app"}
