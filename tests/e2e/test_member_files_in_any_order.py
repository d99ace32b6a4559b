"""A member file exported in psn_no order, dependents before the employees they name, through
the CLI: every member recorded, each binding made or refused by name on its line, the family's
claims paid from the employee's account to the fen, and the same file again records nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from commands.cli import main
from tests.conftest import EXAMPLES

POLICY = EXAMPLES / "policy-330109-2023.toml"


def member(psn_no: str, valid_from: str, insutype: str = "390", **more: Any) -> dict[str, Any]:
    return {"psn_no": psn_no, "insuplc_admdvs": "330109", "insutype": insutype, "assist_category": "none",
            "valid_from": valid_from, **more}  # fmt: skip


MEMBERS = [  # sorted by psn_no, as a finance office exports them
    member("A-KID", "2023-01-01", family_of="B-EMP"),
    member("A-KID", "2023-06-01", family_of="B-EMP", chronic=True),
    member("B-EMP", "2023-01-01", "310"),
    member("B-EMP", "2023-07-01", "310", chronic=True),
    member("C-KID", "2023-01-01", family_of="D-RES"),  # D-RES is a resident: no account to lend
    member("D-RES", "2023-01-01"),
    member("E-KID", "2023-01-01", family_of="NOBODY"),  # nobody of that psn_no
]


def claim(setl_id: str, psn_no: str, setl_time: str, total: str) -> dict[str, Any]:
    return {"setl_id": setl_id, "psn_no": psn_no, "fixmedins_code": "H1", "hosp_lv": 1, "med_type": "11",
            "setl_time": setl_time, "medfee_sumamt": total, "fulamt_ownpay_amt": "0.00",
            "overlmt_selfpay": "0.00", "preselfpay_amt": "0.00", "inscp_scp_amt": total}  # fmt: skip


def jsonl(path: Path, lines: list[dict[str, Any]]) -> str:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return str(path)


def run(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(main, list(args), env=env)


def test_a_member_file_in_psn_no_order_binds_dependents_listed_before_their_employee(
    database_url: str, tmp_path: Path
) -> None:
    env = {"DATABASE_URL": database_url}
    assert run(env, "db", "up").exit_code == 0
    assert run(env, "policy", "load", str(POLICY)).exit_code == 0
    members = jsonl(tmp_path / "members.jsonl", MEMBERS)

    first = run(env, "members", "import", members)

    assert first.exit_code == 0, first.stderr
    assert first.stdout == "members: 7 lines: 7 recorded; 2 bindings refused\n"
    refused = [json.loads(line) for line in first.stderr.splitlines()]
    assert refused == [
        {"line": 5, "psn_no": "C-KID", "valid_from": "2023-01-01", "status": "recorded",
         "binding": {"family_of": "D-RES", "status": "refused", "reason": "not_an_employee",
                     "detail": "D-RES is not an employee insured in region 330109 on 2023-01-01"}},
        {"line": 7, "psn_no": "E-KID", "valid_from": "2023-01-01", "status": "recorded",
         "binding": {"family_of": "NOBODY", "status": "refused", "reason": "not_an_employee",
                     "detail": "NOBODY is not an employee insured in region 330109 on 2023-01-01"}},
    ]  # fmt: skip

    again = run(env, "members", "import", members)

    assert again.exit_code == 0, again.stderr
    assert again.stdout == "members: 7 lines: 7 unchanged; 2 bindings refused\n"  # still refused, nothing new
    assert [json.loads(line)["line"] for line in again.stderr.splitlines()] == [5, 7]

    contribution = {"contrib_id": "C-B-EMP", "psn_no": "B-EMP", "fund": "310100", "paid_date": "2023-01-10",
                    "amount": "3000.00", "acct_amount": "700.00"}  # fmt: skip
    assert run(env, "contributions", "import", jsonl(tmp_path / "c.jsonl", [contribution])).exit_code == 0
    claims = [
        claim("K-1", "A-KID", "2023-03-01", "1000.00"),
        claim("K-2", "A-KID", "2023-04-01", "1000.00"),
        claim("K-3", "C-KID", "2023-04-01", "1000.00"),
        claim("K-4", "E-KID", "2023-04-01", "1000.00"),
    ]
    settled = run(env, "claims", "settle", jsonl(tmp_path / "claims.jsonl", claims))

    assert settled.exit_code == 0, settled.stderr
    results = [json.loads(line) for line in settled.stdout.splitlines()]
    # Resident outpatient at level 1: 60% after the annual 300.00 deductible. K-1 leaves 580.00 to
    # the person, all paid from B-EMP's account (700.00 -> 120.00); K-2 leaves 400.00, of which
    # the account pays its last 120.00. The members whose binding was refused pay cash.
    assert [(r["status"], r["hifp_pay"], r["psn_part_amt"], r["acct_mulaid_pay"], r["psn_cash_pay"])
            for r in results] == [
        ("settled", "420.00", "580.00", "580.00", "0.00"),
        ("settled", "600.00", "400.00", "120.00", "280.00"),
        ("settled", "420.00", "580.00", "0.00", "580.00"),
        ("settled", "420.00", "580.00", "0.00", "580.00"),
    ]  # fmt: skip
