"""The layering rules of the README, checked on the source: core/ stays pure."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN_IN_CORE = ("psycopg", "click", "store", "commands", "projections", "pgserver")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", sorted((ROOT / "core").glob("*.py")), ids=lambda p: p.name)
def test_core_imports_no_database_cli_or_adapter_code(path: Path) -> None:
    assert not imported_modules(path) & set(FORBIDDEN_IN_CORE)


def test_no_float_is_used_for_money_in_the_code() -> None:
    for folder in ("core", "store", "commands", "projections"):
        for path in (ROOT / folder).glob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "float":
                    raise AssertionError(f"float() in {path.relative_to(ROOT)}:{node.lineno}")


@pytest.mark.parametrize(
    "path",
    sorted([*(ROOT / "store").glob("*.py"), *(ROOT / "projections").glob("*.py")]),
    ids=lambda p: f"{p.parent.name}/{p.name}",
)
def test_storage_and_read_models_import_no_cli_code(path: Path) -> None:
    assert not imported_modules(path) & {"click", "commands"}
