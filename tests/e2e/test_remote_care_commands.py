"""异地就医 through the CLI: members of each region treated in the other, settled at home and owed
across, paid by the region of treatment, reversed, and cleared (清分) by `clearing run`, including
a process killed between the two regions' commits and run again: money moved exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from typing import Any

import pytest

from tests.cli_store import coded_runner, jsonl, lines
from tests.conftest import EXAMPLES

A, B = "330109", "330110"


def member(psn_no: str, region: str, insutype: str = "390") -> dict[str, Any]:
    return {"psn_no": psn_no, "insuplc_admdvs": region, "insutype": insutype, "assist_category": "none",
            "valid_from": "2023-01-01"}  # fmt: skip


def institution(code: str, region: str) -> dict[str, Any]:
    return {"fixmedins_code": code, "fixmedins_name": f"{code} 医院", "fixmedins_type": "hospital", "hosp_lv": 2,
            "admdvs": region, "valid_from": "2023-01-01"}  # fmt: skip


def claim(setl_id: str, psn_no: str, hospital: str, treated_in: str, total: str, day: str) -> dict[str, Any]:
    return {
        "setl_id": setl_id, "psn_no": psn_no, "fixmedins_code": hospital, "hosp_lv": 2, "med_type": "21",
        "setl_time": day, "medfee_sumamt": total, "fulamt_ownpay_amt": "0.00", "overlmt_selfpay": "0.00",
        "preselfpay_amt": "0.00", "inscp_scp_amt": total, "mdtrtarea_admvs": treated_in,
    }  # fmt: skip


@pytest.fixture(scope="module")
def run(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    run = coded_runner(database_url)
    folder = tmp_path_factory.mktemp("remote")
    run("db", "up")
    for code in (A, B):
        policy = folder / f"policy-{code}.toml"
        text = (EXAMPLES / "policy-330109-2023.toml").read_text(encoding="utf-8")
        policy.write_text(text.replace(f'region = "{A}"', f'region = "{code}"'), encoding="utf-8")
        run("policy", "load", str(policy))
    run("members", "import", "-", stdin=jsonl([member("PA", A), member("PB", B)]))
    contributions = [{"contrib_id": f"C-{r}", "psn_no": p, "fund": "390100", "paid_date": "2023-01-10",
                      "amount": "90000.00"} for r, p in ((A, "PA"), (B, "PB"))]  # fmt: skip
    run("contributions", "import", "-", stdin=jsonl(contributions))
    run("institutions", "import", "-", "--operator", "registrar",
        stdin=jsonl([institution("HA", A), institution("HB", B)]))  # fmt: skip
    return run


def settled(run: Any, *claims: dict[str, Any]) -> list[dict[str, Any]]:
    return lines(run("claims", "settle", "-", stdin=jsonl(list(claims))))


def balance_line(run: Any, region: str, line: str, fund: str = "390100") -> str:
    shown = run("report", "balance-sheet", "--region", region, "--as-of", "2023-12-31", "--format", "json")
    sheet = json.loads(shown.stdout)
    return sheet["funds"][fund][line]


def test_members_treated_in_the_other_region_are_settled_at_home_and_owed_across(run: Any) -> None:
    out = settled(
        run,
        claim("X1", "PA", "HB", B, "5000.00", "2023-03-10"),  # (5,000 - 800) x 80% = 3,360.00 owed by A to B
        claim("X2", "PB", "HA", A, "1800.00", "2023-03-12"),  # (1,800 - 800) x 80% = 800.00 owed by B to A
        claim("X3", "PA", "HZ", B, "1000.00", "2023-03-12"),
    )
    assert [(o["status"], o.get("hifp_pay"), o.get("reason")) for o in out] == [
        ("settled", "3360.00", None), ("settled", "800.00", None), ("rejected", None, "unknown_institution"),
    ]  # fmt: skip
    [dues] = lines(run("clearing", "dues"))
    assert (dues[f"owed_to_{B}"], dues[f"owed_to_{A}"], dues["net"], dues["payer"]) == ("3360.00", "800.00",
                                                                                          "2560.00", A)  # fmt: skip
    assert balance_line(run, B, "due_from_regions") == "3360.00"
    assert balance_line(run, B, "payable_to_hospitals") == "3360.00"  # B owes HB for A's member
    assert balance_line(run, A, "due_to_regions") == "3360.00"


def test_a_clearing_killed_between_the_regions_moves_the_money_once_when_run_again(run: Any, database_url: str) -> None:
    env = {**os.environ, "DATABASE_URL": database_url, "YIBAO_FAILPOINT": "clearing.between_regions"}
    args = ["clearing", "run", "--month", "2023-03", "--date", "2023-04-05", "--operator", "fin"]
    done = subprocess.run([sys.executable, "-m", "commands", *args], env=env, capture_output=True, timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()
    assert balance_line(run, A, "bank") == "87440.00"  # 90,000 - 2,560 paid out: decided in A
    assert balance_line(run, B, "bank") == "90000.00"  # the mirror waits for the relay
    [again] = lines(run(*args))
    assert (again["status"], again["net"]) == ("nothing_to_clear", "0.00")
    assert balance_line(run, B, "bank") == "92560.00"
    for region in (A, B):
        assert balance_line(run, region, "due_to_regions") == "0.00"
        assert balance_line(run, region, "due_from_regions") == "0.00"
    verify = run("verify").stdout
    assert "异地就医 between regions: OK (1 region pairs, 0 steps waiting for the relay)" in verify


def test_a_reversal_after_the_clearing_is_owed_back_in_the_next_one(run: Any) -> None:
    run("finance", "pay", "--region", B, "--hospital", "HB", "--through", "2023-03-31", "--paid-on", "2023-04-06",
        "--payment-id", "PAY-B-03", "--operator", "fin")  # fmt: skip
    run("claims", "reverse", "X1", "--reason", "billed twice", "--operator", "clerk", "--date", "2023-04-10")
    assert balance_line(run, B, "receivable_from_hospitals") == "3360.00"  # HB was paid: it owes it back
    traced = [(e["region"], e["type"]) for e in lines(run("trace", "X1", "--json"))]
    assert [t for t in traced if t[1].startswith(("RemoteCare", "HospitalAccount"))] == [
        (A, "RemoteCare.Opened"), (A, "RemoteCare.Owed"), (A, "RemoteCare.Withdrawn"),
        (B, "HospitalAccount.RemoteSettled"), (B, "HospitalAccount.RemoteReversed"),
    ]  # fmt: skip
    [cleared] = lines(run("clearing", "run", "--month", "2023-04", "--date", "2023-05-05", "--operator", "fin"))
    assert (cleared["status"], cleared["clearing"], cleared["net"], cleared["payer"]) == (
        "cleared", f"{A}-{B}-2023-04-1", "3360.00", B,
    )  # fmt: skip
    assert balance_line(run, A, "bank") == "90800.00"  # 87,440 + 3,360 back
    # 92,560 - 3,360 paid to HB - 3,360 back to A; HB's 3,360 is a receivable until recovered
    assert balance_line(run, B, "bank") == "85840.00"
    assert balance_line(run, B, "receivable_from_hospitals") == "3360.00"
