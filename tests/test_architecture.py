"""The production layer never depends on the example app, and every request header is
read by one rule."""

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


def header_reads(path: Path) -> list[int]:
    """Lines that read ``request.headers`` (Werkzeug's: the first of repeated lines)."""
    return [
        node.lineno
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if isinstance(node, ast.Attribute)
        and node.attr == "headers"
        and isinstance(node.value, ast.Name)
        and node.value.id == "request"
    ]


def test_request_headers_are_read_as_the_asgi_layers_read_them() -> None:
    """Views and hooks read headers through ``shipshape.request.request_header``, which
    joins repeated lines as the ASGI layers do: one rule for every layer."""
    files = sorted((SHIPSHAPE.parent).rglob("*.py"))
    offenders = {str(path.relative_to(SHIPSHAPE.parent)): header_reads(path) for path in files}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_header_check_catches_a_read(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("x = request.headers.get('Accept')\ny = response.headers\n")
    assert header_reads(bad) == [1]
