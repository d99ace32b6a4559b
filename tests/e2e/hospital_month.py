"""One member's inpatient claims at hospital H001 in March 2023, driven through the CLI: what the
reconciliation and reversal tests start from."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from click.testing import CliRunner, Result

from commands.cli import main
from tests.conftest import EXAMPLES

POLICY = EXAMPLES / "policy-330109-2023.toml"

Yibao = Callable[..., Result]


def member(psn_no: str) -> dict[str, Any]:
    return {
        "psn_no": psn_no, "insuplc_admdvs": "330109", "insutype": "390", "assist_category": "none", "chronic": False,
        "supplementary": [], "valid_from": "2023-01-01",
    }  # fmt: skip


def claim(setl_id: str, psn_no: str, setl_time: str, inscp: str) -> dict[str, Any]:
    """An inpatient claim at a level-1 hospital, all of it in the policy range."""
    return {
        "setl_id": setl_id, "mdtrt_id": f"M-{setl_id}", "psn_no": psn_no, "fixmedins_code": "H001", "hosp_lv": 1,
        "med_type": "21", "setl_time": setl_time, "medfee_sumamt": inscp, "fulamt_ownpay_amt": "0.00",
        "overlmt_selfpay": "0.00", "preselfpay_amt": "0.00", "inscp_scp_amt": inscp,
    }  # fmt: skip


def cli_with_member(database_url: str, psn_no: str) -> Yibao:
    """`yibao ARGS...` on the database (failing the test unless its exit status is as `ok` says),
    after the example policy and the member are recorded."""

    def run(*args: str, stdin: str | None = None, ok: bool = True) -> Result:
        result = CliRunner().invoke(main, list(args), env={"DATABASE_URL": database_url}, input=stdin)
        assert (result.exit_code == 0) == ok, (args, result.stdout, result.stderr)
        return result

    run("db", "up")
    run("policy", "load", str(POLICY))
    run("members", "import", "-", stdin=json.dumps(member(psn_no)) + "\n")
    return run


def json_lines(claims: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(c) + "\n" for c in claims)


def lines(result: Result) -> list[dict[str, Any]]:
    return [json.loads(line) for line in result.stdout.splitlines()]
