"""Driving the CLI against a test database: a store loaded with a synthetic region-year."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

from click.testing import CliRunner, Result

from commands.cli import main
from store.server import ServerLocation, create_database, drop_database


def yibao(url: str, *args: str) -> str:
    result = CliRunner().invoke(main, list(args), env={"DATABASE_URL": url})
    assert result.exit_code == 0, result.stderr
    return result.stdout


def prepared(server: ServerLocation, name: str, files: Path) -> str:
    """A new database with the demo policy and the members and contributions in `files`."""
    url = create_database(server.url, name)
    policy = resources.files("commands") / "data" / "demo-policy-2023.toml"
    yibao(url, "db", "up")
    yibao(url, "policy", "load", str(policy))
    yibao(url, "members", "import", str(files / "members.jsonl"))
    yibao(url, "contributions", "import", str(files / "contributions.jsonl"))
    return url


@contextmanager
def prepared_stores(server: ServerLocation, files: Path, prefix: str, *kinds: str) -> Iterator[dict[str, str]]:
    """A `prepared` database for each kind (by its URL), dropped afterwards."""
    names = {kind: f"{prefix}_{kind}_{os.getpid()}" for kind in kinds}
    try:
        yield {kind: prepared(server, name, files) for kind, name in names.items()}
    finally:
        for name in names.values():
            drop_database(server.url, name)


def runner(url: str) -> Callable[..., Result]:
    """`run(*args, stdin=None, ok=True)`: the CLI on database `url`, its exit status checked
    (0 unless `ok` is False) and its result returned."""

    def run(*args: str, stdin: str | None = None, ok: bool = True) -> Result:
        result = CliRunner().invoke(main, list(args), env={"DATABASE_URL": url}, input=stdin)
        assert (result.exit_code == 0) == ok, (args, result.stdout, result.stderr)
        return result

    return run
