"""Driving the CLI against a test database: a store loaded with a synthetic region-year."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

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


def jsonl(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def lines(result: Result) -> list[dict[str, Any]]:
    """A command's JSON lines."""
    return [json.loads(line) for line in result.stdout.splitlines()]


def coded_runner(url: str) -> Callable[..., Result]:
    """`run(*args, stdin=None, code=0)`: the CLI on database `url`, its exit status checked."""

    def run(*args: str, stdin: str | None = None, code: int = 0) -> Result:
        result = CliRunner().invoke(main, list(args), env={"DATABASE_URL": url}, input=stdin)
        assert result.exit_code == code, (args, result.stdout, result.stderr[:300])
        return result

    return run


def region_year(
    run: Callable[..., Result], policy: Path, members: list[dict[str, Any]], contributions: list[dict[str, Any]]
) -> None:
    """The store migrated, a policy loaded, and these members and contributions recorded."""
    run("db", "up")
    run("policy", "load", str(policy))
    run("members", "import", "-", stdin=jsonl(members))
    if contributions:
        run("contributions", "import", "-", stdin=jsonl(contributions))


def member_line(psn_no: str, insutype: str = "390", **more: Any) -> dict[str, Any]:
    """A member file line of region 330109 from 1 January 2023, `more` overriding any field."""
    return {
        "psn_no": psn_no, "insuplc_admdvs": "330109", "insutype": insutype, "assist_category": "none",
        "chronic": False, "supplementary": [], "valid_from": "2023-01-01", **more,
    }  # fmt: skip


def claim_line(setl_id: str, psn_no: str, inscp: str, *, day: str = "2023-03-01", **more: Any) -> dict[str, Any]:
    """An inpatient claim at H001 (level 1) all within the policy range, `more` overriding any field."""
    return {
        "setl_id": setl_id, "psn_no": psn_no, "fixmedins_code": "H001", "hosp_lv": 1, "med_type": "21",
        "setl_time": day, "medfee_sumamt": inscp, "fulamt_ownpay_amt": "0.00", "overlmt_selfpay": "0.00",
        "preselfpay_amt": "0.00", "inscp_scp_amt": inscp, **more,
    }  # fmt: skip
