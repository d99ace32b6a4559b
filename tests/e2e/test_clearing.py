"""Clearing (清算, 3203) and payment by month (issue 19) through the CLI: a month that reconciles,
clears and is paid; a clearing refused for each cause of `not_reconciled`; an override approved by
a second person; a payment above `[controls] approval_above` held, approved and paid once; reruns
that record nothing."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import psycopg
import pytest
from click.testing import CliRunner

from commands.cli import main
from tests.conftest import EXAMPLES

CONTROLS = '\n[controls]\napproval_above = "5000.00"\noverdraft_allowed = ["390100"]\n'
MEMBER = {
    "psn_no": "CL-1", "insuplc_admdvs": "330109", "insutype": "390", "assist_category": "none", "chronic": False,
    "supplementary": [], "valid_from": "2023-01-01",
}  # fmt: skip


def claim(setl_id: str, hospital: str, day: str, inscp: str) -> dict[str, Any]:
    return {
        "setl_id": setl_id, "psn_no": "CL-1", "fixmedins_code": hospital, "hosp_lv": 1, "med_type": "21",
        "setl_time": f"2023-03-{day} 10:00:00", "medfee_sumamt": inscp, "fulamt_ownpay_amt": "0.00",
        "overlmt_selfpay": "0.00", "preselfpay_amt": "0.00", "inscp_scp_amt": inscp,
    }  # fmt: skip


def totals(hospital: str, medfee: str, fund: str, count: int, end: str = "2023-03-31") -> dict[str, Any]:
    return {
        "fixmedins_code": hospital, "insutype": "390", "clr_type": "21", "stmt_begndate": "2023-03-01",
        "stmt_enddate": end, "medfee_sumamt": medfee, "fund_pay_sumamt": fund, "acct_pay": "0.00",
        "fixmedins_setl_cnt": count,
    }  # fmt: skip


@pytest.fixture(scope="module")
def yibao(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    def run(*args: str, stdin: str | None = None, ok: bool = True) -> Any:
        result = CliRunner().invoke(main, list(args), env={"DATABASE_URL": database_url}, input=stdin)
        assert (result.exit_code == 0) == ok, (args, result.stdout, result.stderr)
        return result

    policy = tmp_path_factory.mktemp("clearing") / "policy.toml"
    policy.write_text((EXAMPLES / "policy-330109-2023.toml").read_text(encoding="utf-8") + CONTROLS, encoding="utf-8")
    run("db", "up")
    run("policy", "load", str(policy))
    run("members", "import", "-", stdin=json.dumps(MEMBER) + "\n")
    # Inpatient, 800.00 deductible, 90%: 2,000.00 -> fund 1,080.00; 3,000.00 -> 1,980.00; 1,000.00 -> 180.00.
    claims = [claim(f"{h}-{n}", h, day, inscp) for h in ("H001", "H002", "H003", "H004", "H005")
              for n, day, inscp in ((1, "01", "2000.00"), (2, "10", "3000.00"), (3, "20", "1000.00"))]  # fmt: skip
    # H006: a month owed 6 x 1,080.00 = 6,480.00, above the 5,000.00 threshold.
    claims += [claim(f"H006-{n}", "H006", f"{n + 1:02d}", "2000.00") for n in range(6)]
    run("claims", "settle", "-", stdin="".join(json.dumps(c) + "\n" for c in claims))
    for h in ("H001", "H002", "H003", "H004", "H005"):
        run("claims", "reverse", f"{h}-3", "--date", "2023-03-25", "--operator", "fin-1", "--reason", "billed twice")
    return run


def out(result: Any) -> dict[str, Any]:
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def events(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        return int(conn.execute("SELECT count(*) FROM region_330109.events").fetchone()[0])  # type: ignore[index]


def reconcile(yibao: Any, path: Path, *rows: dict[str, Any]) -> list[dict[str, Any]]:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    result = yibao("reconcile", "totals", str(path), "--operator", "fin-1")
    return [json.loads(line) for line in result.stdout.splitlines()]


def clear(yibao: Any, hospital: str, *extra: str, ok: bool = True, operator: str = "fin-1") -> Any:
    args = ("finance", "clear", "--region", "330109", "--hospital", hospital, "--month", "2023-03")
    return yibao(*args, "--operator", operator, *extra, ok=ok)


def pay(yibao: Any, hospital: str, payment_id: str, ok: bool = True, operator: str = "fin-1") -> Any:
    args = ("finance", "pay", "--region", "330109", "--hospital", hospital, "--month", "2023-03")
    return yibao(*args, "--paid-on", "2023-04-05", "--payment-id", payment_id, "--operator", operator, ok=ok)


# H001's month: 3 settlements and 1 reversal; 5,000.00 billed, the fund pays 3,060.00.
CLEARED = {
    "psntime": 2, "medfee_sumamt": "5000.00", "fund_appy_sum": {"390100": "3060.00"}, "acct_pay": "0.00",
    "cash_payamt": "1940.00",
}  # fmt: skip


def test_a_month_that_reconciles_is_cleared_then_paid_once(yibao: Any, database_url: str, tmp_path: Path) -> None:
    [line] = reconcile(yibao, tmp_path / "h001.jsonl", totals("H001", "5000.00", "3060.00", 4))
    assert line["stmt_rslt"] == "0"
    early = pay(yibao, "H001", "P-H001-EARLY", ok=False)
    assert early.stderr.startswith("error: not_cleared: hospital H001 2023-03 is not cleared")
    done = out(clear(yibao, "H001"))
    assert {k: done[k] for k in ("status", "clearings", "operator", *CLEARED)} == {
        "status": "recorded", "clearings": 1, "operator": "fin-1", **CLEARED,
    }  # fmt: skip
    before = events(database_url)
    assert out(clear(yibao, "H001"))["status"] == "duplicate"
    assert events(database_url) == before
    paid = out(pay(yibao, "H001", "P-H001"))
    assert (paid["status"], paid["cleared"]) == ("recorded", CLEARED)
    assert [(p["fund"], p["account"], p["amount"]) for p in paid["postings"]] == [
        ("390100", "payable_to_hospitals", "3060.00"), ("390100", "bank", "-3060.00"),
    ]  # fmt: skip
    before = events(database_url)
    assert out(pay(yibao, "H001", "P-H001"))["status"] == "duplicate"
    assert events(database_url) == before


def test_a_month_with_differences_is_not_cleared(yibao: Any, database_url: str, tmp_path: Path) -> None:
    [line] = reconcile(yibao, tmp_path / "h002.jsonl", totals("H002", "5000.00", "3000.00", 4))
    assert (line["stmt_rslt"], line["stmt_rslt_dscr"]) == ("1", "fund_pay_sumamt")
    before = events(database_url)
    refused = clear(yibao, "H002", ok=False)
    assert refused.stderr.startswith("error: not_reconciled: hospital H002 2023-03: differences: the reconciliation")
    assert events(database_url) == before


def test_a_month_without_reconciliation_is_not_cleared(yibao: Any, tmp_path: Path) -> None:
    refused = clear(yibao, "H003", ok=False)
    assert refused.stderr.startswith(
        "error: not_reconciled: hospital H003 2023-03: no_reconciliation: "
        "no reconciled totals of 390/21 cover 2023-03-01"
    )
    # Half the month reconciled leaves the rest uncovered.
    reconcile(yibao, tmp_path / "h003.jsonl", totals("H003", "5000.00", "3060.00", 2, end="2023-03-15"))
    assert "no reconciled totals of 390/21 cover 2023-03-16" in clear(yibao, "H003", ok=False).stderr


def test_a_month_changed_since_it_reconciled_is_not_cleared_until_reconciled_again(yibao: Any, tmp_path: Path) -> None:
    reconcile(yibao, tmp_path / "h004.jsonl", totals("H004", "5000.00", "3060.00", 4))
    yibao("claims", "reverse", "H004-2", "--date", "2023-03-28", "--operator", "fin-1", "--reason", "wrong patient")
    refused = clear(yibao, "H004", ok=False)
    assert "error: not_reconciled: hospital H004 2023-03: changed_since: the centre's figures of" in refused.stderr
    [line] = reconcile(yibao, tmp_path / "h004b.jsonl", totals("H004", "2000.00", "1080.00", 5))
    assert line["stmt_rslt"] == "0"
    done = out(clear(yibao, "H004"))
    assert (done["status"], done["psntime"], done["fund_appy_sum"]) == ("recorded", 1, {"390100": "1080.00"})


def test_figures_changed_after_clearing_are_cleared_again_and_paid_only_then(yibao: Any, tmp_path: Path) -> None:
    reconcile(yibao, tmp_path / "h005.jsonl", totals("H005", "5000.00", "3060.00", 4))
    assert out(clear(yibao, "H005"))["status"] == "recorded"
    yibao("claims", "reverse", "H005-1", "--date", "2023-03-30", "--operator", "fin-1", "--reason", "wrong patient")
    assert "not_cleared: hospital H005 2023-03: its figures changed" in pay(yibao, "H005", "P-H005", ok=False).stderr
    assert "changed_since" in clear(yibao, "H005", ok=False).stderr
    reconcile(yibao, tmp_path / "h005b.jsonl", totals("H005", "3000.00", "1980.00", 5))
    again = out(clear(yibao, "H005"))
    assert (again["status"], again["clearings"], again["fund_appy_sum"]) == ("recleared", 2, {"390100": "1980.00"})
    assert out(pay(yibao, "H005", "P-H005"))["cleared"]["fund_appy_sum"] == {"390100": "1980.00"}


def test_an_override_is_cleared_once_when_another_person_approves_it(yibao: Any, database_url: str) -> None:
    asked = out(clear(yibao, "H002", "--override-reason", "hospital's file is wrong; audited by phone"))
    assert (asked["status"], asked["request_id"], asked["maker"]) == (
        "pending_approval",
        "clear-H002-2023-03-v0",
        "fin-1",
    )
    assert out(clear(yibao, "H002", "--override-reason", "again"))["request_id"] == "clear-H002-2023-03-v0"
    own = yibao("approvals", "approve", "clear-H002-2023-03-v0", "--operator", "fin-1", ok=False)
    assert own.stderr.startswith("error: maker_cannot_approve: fin-1 made request clear-H002-2023-03-v0")
    assert "not_cleared" in pay(yibao, "H002", "P-H002", ok=False).stderr
    approved = out(yibao("approvals", "approve", "clear-H002-2023-03-v0", "--operator", "chk-1"))
    assert (approved["status"], approved["kind"], approved["maker"], approved["checker"]) == (
        "approved", "clear", "fin-1", "chk-1",
    )  # fmt: skip
    assert (approved["result"]["status"], approved["result"]["fund_appy_sum"]) == ("recorded", {"390100": "3060.00"})
    before = events(database_url)
    again = yibao("approvals", "approve", "clear-H002-2023-03-v0", "--operator", "chk-2", ok=False)
    assert again.stderr.startswith("error: request_decided")
    rerun = out(clear(yibao, "H002"))
    assert (rerun["status"], rerun["approved_by"], rerun["clearings"]) == ("duplicate", "chk-1", 1)
    assert events(database_url) == before


def test_a_payment_above_the_threshold_is_held_approved_and_paid_once(
    yibao: Any, database_url: str, tmp_path: Path
) -> None:
    reconcile(yibao, tmp_path / "h006.jsonl", totals("H006", "12000.00", "6480.00", 6))
    assert out(clear(yibao, "H006"))["status"] == "recorded"
    held = out(pay(yibao, "H006", "P-H006"))
    assert {k: held[k] for k in ("status", "request_id", "amount", "postings")} == {
        "status": "pending_approval", "request_id": "pay-P-H006", "amount": "6480.00", "postings": [],
    }  # fmt: skip
    before = events(database_url)
    assert out(pay(yibao, "H006", "P-H006"))["request_id"] == "pay-P-H006"  # the same request, nothing new
    assert events(database_url) == before
    # A late claim of the month changes what is owed: the request no longer says what would be paid.
    late = claim("H006-9", "H006", "29", "2000.00")
    yibao("claims", "settle", "-", stdin=json.dumps(late) + "\n")
    stale = yibao("approvals", "approve", "pay-P-H006", "--operator", "chk-1", ok=False)
    assert stale.stderr.startswith("error: request_stale: what H006 is owed changed since request pay-P-H006")
    yibao("approvals", "reject", "pay-P-H006", "--operator", "chk-1", "--reason", "owed changed")
    assert "not_cleared" in pay(yibao, "H006", "P-H006", ok=False).stderr
    reconcile(yibao, tmp_path / "h006b.jsonl", totals("H006", "14000.00", "7560.00", 7))
    assert out(clear(yibao, "H006"))["status"] == "recleared"
    asked = out(pay(yibao, "H006", "P-H006"))
    assert (asked["request_id"], asked["amount"]) == ("pay-P-H006-2", "7560.00")
    own = yibao("approvals", "approve", "pay-P-H006-2", "--operator", "fin-1", ok=False)
    assert own.stderr.startswith("error: maker_cannot_approve")
    approved = out(yibao("approvals", "approve", "pay-P-H006-2", "--operator", "chk-1"))
    assert (approved["kind"], approved["maker"], approved["checker"]) == ("pay", "fin-1", "chk-1")
    assert approved["result"]["postings"] == [
        {"fund": "390100", "account": "payable_to_hospitals", "party": "H006", "amount": "7560.00"},
        {"fund": "390100", "account": "bank", "party": "", "amount": "-7560.00"},
    ]
    before = events(database_url)
    assert "request_decided" in yibao("approvals", "approve", "pay-P-H006-2", "--operator", "chk-2", ok=False).stderr
    assert out(pay(yibao, "H006", "P-H006"))["status"] == "duplicate"
    assert events(database_url) == before
    traced = yibao("trace", "--account", "390100:bank", "--as-of", "2023-12-31", "--json").stdout.splitlines()
    assert [json.loads(t)["amount"] for t in traced if "P-H006" in t] == ["-7560.00"]  # paid once


def test_a_correction_is_dated_at_its_business_date(yibao: Any, database_url: str) -> None:
    yibao("claims", "settle", "-", stdin=json.dumps(claim("H007-1", "H007", "05", "2000.00")) + "\n")
    fixed = claim("H007-1", "H007", "05", "1500.00")
    args = ("claims", "correct", "-", "--operator", "fin-2", "--reason", "hospital resubmitted", "--date", "2023-03-27")
    assert out(yibao(*args, stdin=json.dumps(fixed) + "\n"))["version"] == 2
    yibao("projections", "run")
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT version, refd_setl_flag, line_date::text, medfee_sumamt FROM region_330109.settlement_lines"
            " WHERE setl_id = 'H007-1' ORDER BY notification_id"
        ).fetchall()
    assert rows == [
        (1, "0", "2023-03-05", 200_000), (1, "1", "2023-03-27", -200_000), (2, "0", "2023-03-05", 150_000),
    ]  # fmt: skip


def test_a_month_is_paid_only_when_the_months_before_it_since_the_last_payment_are_cleared(
    yibao: Any, tmp_path: Path
) -> None:
    february = {**claim("H008-1", "H008", "01", "2000.00"), "setl_time": "2023-02-14 09:00:00"}
    march = claim("H008-2", "H008", "02", "3000.00")
    yibao("claims", "settle", "-", stdin=json.dumps(february) + "\n" + json.dumps(march) + "\n")
    reconcile(yibao, tmp_path / "h008.jsonl", totals("H008", "3000.00", "1980.00", 1))
    assert out(clear(yibao, "H008", operator="fin-2"))["status"] == "recorded"
    refused = pay(yibao, "H008", "P-H008", ok=False, operator="fin-2")
    assert refused.stderr.startswith("error: not_cleared: hospital H008 2023-02 is not cleared")
    feb = {**totals("H008", "2000.00", "1080.00", 1), "stmt_begndate": "2023-02-01", "stmt_enddate": "2023-02-28"}
    reconcile(yibao, tmp_path / "h008-feb.jsonl", feb)
    args = ("finance", "clear", "--region", "330109", "--hospital", "H008", "--month", "2023-02")
    assert out(yibao(*args, "--operator", "fin-2"))["fund_appy_sum"] == {"390100": "1080.00"}
    paid = out(pay(yibao, "H008", "P-H008", operator="fin-2"))
    assert (paid["status"], paid["postings"][0]["amount"]) == ("recorded", "3060.00")  # February's and March's


def test_a_pharmacys_month_of_purchases_reconciles_and_clears(yibao: Any, tmp_path: Path) -> None:
    purchase = {**claim("D001-1", "D001", "12", "300.00"), "med_type": "41"}
    settled = out(yibao("claims", "settle", "-", stdin=json.dumps(purchase) + "\n"))
    assert settled["clr_type"] == "41"
    declared = {**totals("D001", "300.00", settled["fund_pay_sumamt"], 1), "clr_type": "41"}
    [line] = reconcile(yibao, tmp_path / "d001.jsonl", declared)
    assert line["stmt_rslt"] == "0"
    done = out(clear(yibao, "D001", operator="fin-2"))
    assert (done["status"], done["psntime"], done["medfee_sumamt"]) == ("recorded", 1, "300.00")


def test_once_users_are_registered_only_an_approver_approves(yibao: Any) -> None:
    for name, role in (("fin-2", "finance"), ("chk-3", "approver")):
        yibao("users", "add", name, "--role", role, "--password-file", "-", stdin="correct horse battery\n")
    asked = out(clear(yibao, "H003", "--override-reason", "no file from the hospital", operator="fin-2"))
    refused = yibao("approvals", "approve", asked["request_id"], "--operator", "fin-2", ok=False)
    assert refused.stderr.startswith("error: not_allowed")
    # Nor may anyone pay as a maker without the finance role, or as someone not registered.
    assert pay(yibao, "H001", "P-H001-X", ok=False, operator="chk-3").stderr.startswith("error: not_allowed")
    assert pay(yibao, "H001", "P-H001-X", ok=False, operator="nobody").stderr.startswith("error: unknown_user")


def test_the_approvals_report_names_who_made_and_who_decided_each_request(yibao: Any, tmp_path: Path) -> None:
    month = dt.date.today().isoformat()[:7]  # requests are dated when they are recorded
    rows = [json.loads(line) for line in yibao("report", "approvals", "--month", month).stdout.splitlines()]
    got = {r["request_id"]: (r["kind"], r["maker"], r["checker"], r["decision"], r["rejection"]) for r in rows}
    assert got == {
        "clear-H002-2023-03-v0": ("clear", "fin-1", "chk-1", "approved", ""),
        "pay-P-H006": ("pay", "fin-1", "chk-1", "rejected", "owed changed"),
        "pay-P-H006-2": ("pay", "fin-1", "chk-1", "approved", ""),
        "clear-H003-2023-03-v0": ("clear", "fin-2", "", "pending", ""),
    }
    assert {r["amount"] for r in rows if r["request_id"].startswith("pay-")} == {"6480.00", "7560.00"}
    assert yibao("report", "approvals", "--month", "2001-01").stdout == ""
    csv_lines = yibao("report", "approvals", "--month", month, "--format", "csv").stdout.splitlines()
    assert csv_lines[0].startswith("region 区划,request_id 申请号,kind 类型,subject 对象,amount 金额,maker 初审,")
    assert len(csv_lines) == 5
    book = tmp_path / "approvals.xlsx"
    assert yibao("report", "approvals", "--month", month, "--format", "xlsx", "--out", str(book)).stdout == (
        f"wrote {book}: 4 requests\n"
    )
    sheet = openpyxl.load_workbook(book).active
    amounts = sorted(row[4] for row in sheet.iter_rows(min_row=2, values_only=True) if row[2] == "pay")
    assert amounts == [Decimal("6480.00"), Decimal("7560.00")]
