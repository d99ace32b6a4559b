"""Bank statement matching (银行对账, issue 19) through the CLI: a fund's April statement against its
bank postings (two hospital payments, a fine, a contribution), a line only in the bank, a posting
only in the centre, a rerun that records nothing, a GBK file, a bad amount named by its line, and
`report reconciliation` listing the statement."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.cli_store import runner
from tests.conftest import EXAMPLES
from tests.e2e.test_reconcile import events, lines

MEMBER = {
    "psn_no": "BK-1", "insuplc_admdvs": "330109", "insutype": "390", "assist_category": "none", "chronic": False,
    "supplementary": [], "valid_from": "2023-01-01",
}  # fmt: skip
APRIL = ("--fund", "390100", "--operator", "fin-1", "--from", "2023-04-01", "--to", "2023-04-30")
STATEMENT = (
    "日期,金额,对方户名,摘要\n"
    "2023-04-05,-1980.00,H002,拨付 PAY-0405-H002\n"
    "2023-04-05,-1080.00,H001,拨付 PAY-0405-H001\n"
    "2023-04-20,200.00,H002,罚款 FINE-7\n"
    "2023-04-21,12.34,,利息\n"
)


def claim(setl_id: str, hospital: str, day: str, inscp: str) -> dict[str, Any]:
    return {
        "setl_id": setl_id, "psn_no": "BK-1", "fixmedins_code": hospital, "hosp_lv": 1, "med_type": "21",
        "setl_time": day, "medfee_sumamt": inscp, "fulamt_ownpay_amt": "0.00", "overlmt_selfpay": "0.00",
        "preselfpay_amt": "0.00", "inscp_scp_amt": inscp,
    }  # fmt: skip


def contribution(contrib_id: str, day: str, amount: str) -> dict[str, Any]:
    return {"contrib_id": contrib_id, "psn_no": "BK-1", "fund": "390100", "paid_date": day, "amount": amount,
            "acct_amount": "0.00"}  # fmt: skip


def jsonl(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


@pytest.fixture(scope="module")
def yibao(database_url: str) -> Any:
    run = runner(database_url)
    run("db", "up")
    run("policy", "load", str(EXAMPLES / "policy-330109-2023.toml"))
    run("members", "import", "-", stdin=jsonl([MEMBER]))
    # Inpatient, 800.00 deductible, 90%: the fund owes H001 1,080.00 and H002 1,980.00.
    run("claims", "settle", "-", stdin=jsonl([claim("BK-S1", "H001", "2023-03-10", "2000.00"),
                                                claim("BK-S2", "H002", "2023-03-20", "3000.00")]))  # fmt: skip
    run("contributions", "import", "-", stdin=jsonl([contribution("C-0301", "2023-03-01", "5000.00"),
                                                      contribution("C-0425", "2023-04-25", "380.00")]))  # fmt: skip
    run("finance", "pay", "--region", "330109", "--hospital", "H001", "--hospital", "H002", "--through", "2023-03-31",
        "--paid-on", "2023-04-05", "--payment-id", "PAY-0405", "--operator", "fin-1")  # fmt: skip
    run("finance", "fine", "--region", "330109", "--hospital", "H002", "--fund", "390100", "--amount", "200.00",
        "--fine-id", "FINE-7", "--on", "2023-04-20", "--operator", "fin-1", "--reason", "虚假住院")  # fmt: skip
    return run


def write(path: Path, text: str, encoding: str = "utf-8") -> str:
    path.write_bytes(text.encode(encoding))
    return str(path)


ONLY_IN_BANK = {
    "side": "bank", "date": "2023-04-21", "amount": "12.34", "counterparty": "", "reference": "利息",
    "reason": "only_in_bank", "line": 5,
}  # fmt: skip
ONLY_IN_CENTER = {
    "side": "center", "date": "2023-04-25", "amount": "380.00", "counterparty": "", "reference": "C-0425",
    "reason": "only_in_center", "kind": "contribution",
}  # fmt: skip


def summary(counts: tuple[int, int, int], bank_total: str, center_total: str, **more: Any) -> dict[str, Any]:
    """The summary line of fund 390100's April statement: (matched, only_in_bank, only_in_center)."""
    matched, only_in_bank, only_in_center = counts
    return {
        "summary": True, "fund": "390100", "matched": matched, "only_in_bank": only_in_bank,
        "only_in_center": only_in_center, "bank_total": bank_total, "center_total": center_total,
        "from": "2023-04-01", "to": "2023-04-30", "encoding": "utf-8", **more,
    }  # fmt: skip


def test_a_statement_is_matched_and_each_side_s_leftover_is_listed(yibao: Any, tmp_path: Path) -> None:
    got = lines(yibao("reconcile", "bank", write(tmp_path / "april.csv", STATEMENT), *APRIL))
    assert got == [
        ONLY_IN_BANK,
        ONLY_IN_CENTER,
        summary((3, 1, 1), "-2847.66", "-2480.00"),
    ]


def test_a_rerun_of_the_same_file_gives_the_same_answer_and_records_nothing(
    yibao: Any, database_url: str, tmp_path: Path
) -> None:
    path = write(tmp_path / "again.csv", STATEMENT.replace("利息", "结息"))
    before = events(database_url)
    first = yibao("reconcile", "bank", path, *APRIL).stdout
    assert events(database_url) == before + 1
    assert yibao("reconcile", "bank", path, *APRIL).stdout == first
    assert events(database_url) == before + 1


def test_a_gbk_statement_is_read_and_said_to_be_gbk(yibao: Any, tmp_path: Path) -> None:
    text = STATEMENT.replace("H002,拨付", "第二人民医院,拨付") + "2023-04-25,380.00,参保人,征缴\n"
    got = lines(yibao("reconcile", "bank", write(tmp_path / "gbk.csv", text, "gbk"), *APRIL))
    assert got == [
        ONLY_IN_BANK,
        summary((4, 1, 0), "-2467.66", "-2480.00", encoding="gbk"),
    ]


def test_a_bad_amount_is_named_with_its_line_and_nothing_is_recorded(
    yibao: Any, database_url: str, tmp_path: Path
) -> None:
    before = events(database_url)
    path = write(tmp_path / "bad.csv", STATEMENT.replace("-1080.00", "-1080.005"))
    result = yibao("reconcile", "bank", path, *APRIL, ok=False)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: amount_too_precise: line 3: ")
    assert result.stdout == ""
    assert events(database_url) == before


def test_an_unknown_fund_is_refused_by_name(yibao: Any, tmp_path: Path) -> None:
    path = write(tmp_path / "april.csv", STATEMENT)
    result = yibao("reconcile", "bank", path, "--fund", "399999", "--operator", "fin-1", ok=False)
    assert result.stderr.startswith("error: unknown_fund: ")


def test_the_report_lists_the_funds_statement_periods_with_their_status(yibao: Any, tmp_path: Path) -> None:
    matched = "日期,金额,对方户名,摘要\n2023-03-01,5000.00,BK-1,C-0301\n2023-04-05,-1080.00,H001,PAY-0405-H001\n"
    march = yibao("reconcile", "bank", write(tmp_path / "march.csv", matched), "--fund", "390100", "--operator",
                  "fin-2", "--from", "2023-03-01", "--to", "2023-03-31")  # fmt: skip
    assert lines(march) == [
        summary((1, 0, 0), "5000.00", "5000.00", **{"from": "2023-03-01", "to": "2023-03-31"}, outside_period=1)
    ]
    got = [g for g in lines(yibao("report", "reconciliation")) if g["kind"] == "bank"]
    assert [(g["fund"], g["stmt_begndate"], g["stmt_enddate"], g["stmt_rslt"], g["operator"]) for g in got] == [
        ("390100", "2023-03-01", "2023-03-31", "0", "fin-2"),
        ("390100", "2023-04-01", "2023-04-30", "1", "fin-1"),
    ]
