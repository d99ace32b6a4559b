"""Reconciliation with a hospital (对账, issue 19) through the CLI: 3201 totals with and without
refunds, 3202 detail with each kind of difference named, a month that reconciles, and a rerun of
the same file that records nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.e2e.hospital_month import Yibao, cli_with_member, json_lines, lines
from tests.e2e.hospital_month import claim as month_claim

PERIOD = ("--hospital", "H001", "--from", "2023-03-01", "--to", "2023-03-31", "--operator", "fin-1")


def claim(setl_id: str, day: str, inscp: str) -> dict[str, Any]:
    return month_claim(setl_id, "RC-1", f"2023-03-{day} 10:00:00", inscp)


@pytest.fixture(scope="module")
def yibao(database_url: str) -> Yibao:
    run = cli_with_member(database_url, "RC-1")
    # Inpatient, 800.00 deductible, 90%: fund pays 1,080.00, 1,980.00 and 180.00.
    claims = [claim("RC-1", "01", "2000.00"), claim("RC-2", "10", "3000.00"), claim("RC-3", "20", "1000.00")]
    run("claims", "settle", "-", stdin=json_lines(claims))
    run("claims", "reverse", "RC-3", "--date", "2023-03-25", "--operator", "op", "--reason", "billed twice")
    return run


def events(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        return int(conn.execute("SELECT count(*) FROM region_330109.events").fetchone()[0])  # type: ignore[index]


def totals(flag: str | None, medfee: str, fund: str, count: int) -> dict[str, Any]:
    line = {
        "fixmedins_code": "H001", "insutype": "390", "clr_type": "21", "stmt_begndate": "2023-03-01",
        "stmt_enddate": "2023-03-31", "medfee_sumamt": medfee, "fund_pay_sumamt": fund, "acct_pay": "0.00",
        "fixmedins_setl_cnt": count,
    }  # fmt: skip
    return line if flag is None else {**line, "refd_setl_flag": flag}


def write(path: Path, rows: list[Any]) -> str:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def test_totals_with_and_without_refunds(yibao: Any, tmp_path: Path) -> None:
    rows = [
        totals("1", "5000.00", "3060.00", 4),  # the reversal line counts, its amounts negative
        totals(None, "5000.00", "3060.00", 4),  # absent: as "1"
        totals("0", "6000.00", "3240.00", 3),  # settlements only
        totals("0", "6000.00", "3000.00", 4),
    ]
    got = lines(yibao("reconcile", "totals", write(tmp_path / "t.jsonl", rows), "--operator", "fin-1"))
    assert [(g["stmt_rslt"], g["stmt_rslt_dscr"]) for g in got] == [
        ("0", "all figures agree"), ("0", "all figures agree"), ("0", "all figures agree"),
        ("1", "fund_pay_sumamt, fixmedins_setl_cnt"),
    ]  # fmt: skip
    assert got[3]["center"] == {
        "medfee_sumamt": "6000.00", "fund_pay_sumamt": "3240.00", "acct_pay": "0.00", "fixmedins_setl_cnt": 3,
    }  # fmt: skip
    assert got[3]["fund_pay_sumamt"] == "3000.00"  # the hospital's own figure, as given


HOSPITAL_MONTH = [
    {"setl_id": "RC-1", "mdtrt_id": "M-RC-1", "psn_no": "RC-1", "medfee_sumamt": "2000.00",
     "fund_pay_sumamt": "1080.00", "acct_pay": "0.00", "refd_setl_flag": "0"},
    {"setl_id": "RC-2", "mdtrt_id": "M-RC-2", "psn_no": "RC-1", "medfee_sumamt": "3000.00",
     "fund_pay_sumamt": "1980.00", "acct_pay": "0.00", "refd_setl_flag": "0"},
    {"setl_id": "RC-3", "mdtrt_id": "M-RC-3", "psn_no": "RC-1", "medfee_sumamt": "1000.00",
     "fund_pay_sumamt": "180.00", "acct_pay": "0.00", "refd_setl_flag": "0"},
    {"setl_id": "RC-3", "mdtrt_id": "M-RC-3", "psn_no": "RC-1", "medfee_sumamt": "-1000.00",
     "fund_pay_sumamt": "-180.00", "acct_pay": "0.00", "refd_setl_flag": "1"},
]  # fmt: skip


def test_each_kind_of_difference_is_found_and_named(yibao: Any, tmp_path: Path) -> None:
    rows = [
        {**HOSPITAL_MONTH[1], "fund_pay_sumamt": "1900.00"},
        *HOSPITAL_MONTH[2:],
        {**HOSPITAL_MONTH[0], "setl_id": "RC-9"},
    ]  # RC-1 left out, RC-2's fund figure wrong, RC-9 unknown to the centre
    got = lines(yibao("reconcile", "detail", write(tmp_path / "d.jsonl", rows), *PERIOD))
    assert got == [
        {"setl_id": "RC-1", "refd_setl_flag": "0", "stmt_rslt": "1", "reason": "only_in_center", "fields": {
            "medfee_sumamt": {"center": "2000.00"}, "fund_pay_sumamt": {"center": "1080.00"},
            "acct_pay": {"center": "0.00"}}},
        {"setl_id": "RC-2", "refd_setl_flag": "0", "stmt_rslt": "1", "reason": "amounts_differ",
         "fields": {"fund_pay_sumamt": {"center": "1980.00", "hospital": "1900.00"}}},
        {"setl_id": "RC-9", "refd_setl_flag": "0", "stmt_rslt": "1", "reason": "only_in_hospital", "fields": {
            "medfee_sumamt": {"hospital": "2000.00"}, "fund_pay_sumamt": {"hospital": "1080.00"},
            "acct_pay": {"hospital": "0.00"}}},
        {"summary": True, "matched": 2, "only_in_center": 1, "only_in_hospital": 1, "amounts_differ": 1},
    ]  # fmt: skip


def test_a_month_that_reconciles_from_the_national_tab_file(yibao: Any, tmp_path: Path) -> None:
    fields = ("setl_id", "mdtrt_id", "psn_no", "medfee_sumamt", "fund_pay_sumamt", "acct_pay", "refd_setl_flag")
    tsv = ["\t".join(row[f] for f in fields) for row in HOSPITAL_MONTH]
    got = lines(yibao("reconcile", "detail", write(tmp_path / "d.txt", tsv), *PERIOD))
    assert got == [{"summary": True, "matched": 4, "only_in_center": 0, "only_in_hospital": 0, "amounts_differ": 0}]


def test_a_rerun_of_the_same_file_gives_the_same_answer_and_records_nothing(
    yibao: Any, database_url: str, tmp_path: Path
) -> None:
    path = write(tmp_path / "again.jsonl", HOSPITAL_MONTH[:3])  # the reversal line left out
    first = yibao("reconcile", "detail", path, *PERIOD).stdout
    before = events(database_url)
    assert yibao("reconcile", "detail", path, *PERIOD).stdout == first
    assert events(database_url) == before
    assert json.loads(first.splitlines()[0])["reason"] == "only_in_center"


def test_the_report_lists_each_period_with_its_last_status(yibao: Any) -> None:
    got = lines(yibao("report", "reconciliation"))
    # totals: one file, one line off; detail: the month that reconciled was checked after the others
    assert [(g["fixmedins_code"], g["stmt_begndate"], g["kind"], g["stmt_rslt"], g["files"]) for g in got] == [
        ("H001", "2023-03-01", "detail", "1", 3),
        ("H001", "2023-03-01", "totals", "1", 1),
    ]
