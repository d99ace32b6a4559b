"""The layering of the README, checked on the source: one role per package, imports one way.

From the bottom up: `core` (the pure domain), `app` (the service layer), `store` (PostgreSQL, which
implements the service layer's ports), `projections` (read models), `bulk` (the file pipeline),
`web` (the console, beside the CLI: it reads through projections and never imports the file
pipeline), `commands` (the CLI), then `bench`. A module may import its own package and those below it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ("core", "app", "store", "projections", "bulk", "web", "commands", "bench")
# The domain computes; it neither waits, nor forks, nor talks to a database or a terminal.
FORBIDDEN_IN_CORE = {
    "threading", "multiprocessing", "concurrent", "gc", "signal", "subprocess", "psycopg", "click", "pgserver",
}  # fmt: skip


def imported_modules(source: str) -> set[str]:
    """The top-level names of every absolute import in `source`, nested imports included."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def layer_violations(package: str, source: str) -> set[str]:
    """The packages above `package` that `source` imports."""
    above = set(LAYERS[LAYERS.index(package) + 1 :])
    return imported_modules(source) & above


def modules_of(package: str) -> list[Path]:
    return sorted((ROOT / package).glob("*.py"))


@pytest.mark.parametrize("path", modules_of("core"), ids=lambda p: p.name)
def test_core_imports_no_threads_processes_collector_database_or_cli(path: Path) -> None:
    assert not imported_modules(path.read_text(encoding="utf-8")) & FORBIDDEN_IN_CORE


@pytest.mark.parametrize(
    "path", [p for package in LAYERS for p in modules_of(package)], ids=lambda p: f"{p.parent.name}/{p.name}"
)
def test_no_module_imports_a_package_above_its_own(path: Path) -> None:
    assert not layer_violations(path.parent.name, path.read_text(encoding="utf-8"))


def test_only_the_serve_command_imports_the_console() -> None:
    """The console (web/) sits beside the CLI: only `yibao serve` starts it."""
    importers = [
        f"{p.parent.name}/{p.name}"
        for package in LAYERS
        for p in modules_of(package)
        if package != "web" and "web" in imported_modules(p.read_text(encoding="utf-8"))
    ]
    assert importers == ["commands/serve.py"]
    assert not any("bulk" in imported_modules(p.read_text(encoding="utf-8")) for p in modules_of("web"))


@pytest.mark.parametrize("module", ["threading", "gc", "psycopg", "click", "app.region"])
def test_the_check_names_a_core_module_that_imports_what_core_must_not(module: str) -> None:
    source = f"import {module}\n"
    assert imported_modules(source) & FORBIDDEN_IN_CORE or layer_violations("core", source)


def test_the_check_names_an_import_from_above_even_inside_a_function() -> None:
    source = "def f():\n    from commands.cli import main\n"
    assert layer_violations("bulk", source) == {"commands"}
    assert layer_violations("commands", source) == set()


def test_no_subcommand_module_imports_the_cli_entry_point() -> None:
    for path in modules_of("commands"):
        if path.name not in {"cli.py", "__main__.py"}:
            assert "commands.cli" not in path.read_text(encoding="utf-8"), path.name


def test_no_float_is_used_for_money_in_the_code() -> None:
    for package in LAYERS[:-1]:  # the benchmarks compute rates and times, never amounts
        for path in modules_of(package):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "float":
                    raise AssertionError(f"float() in {path.relative_to(ROOT)}:{node.lineno}")
