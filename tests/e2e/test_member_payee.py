"""零星报销 (issue 21): a claim with `payee: "member"` is settled by the same tiers but owed to the
member (应付参保人款), not the hospital; `finance pay-members` pays it once, with a bank file; a
reversal after the payment leaves the member owing it back, and nothing is paid twice."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.cli_store import claim_line, coded_runner, jsonl, lines, member_line, region_year
from tests.conftest import EXAMPLES

POLICY = EXAMPLES / "policy-330109-2023.toml"
MEMBERS = [member_line(f"ZX-{n}") for n in (1, 2)]
FUNDING = {"contrib_id": "ZX-FUND", "psn_no": "ZX-1", "fund": "390100", "paid_date": "2023-01-05",
           "amount": "50000.00", "acct_amount": "0.00"}  # fmt: skip


def claim(setl_id: str, psn_no: str, inscp: str, day: str, payee: str | None = "member") -> dict[str, Any]:
    line = claim_line(setl_id, psn_no, inscp, day=day, fixmedins_code="ABROAD-1")
    return {**line, "payee": payee} if payee else line


@pytest.fixture(scope="module")
def yibao(database_url: str) -> Any:
    run = coded_runner(database_url)
    region_year(run, POLICY, MEMBERS, [FUNDING])
    return run


def test_a_member_payee_claim_is_owed_to_the_member_and_paid_once(yibao: Any, tmp_path: Path) -> None:
    # (2,000 - 800) * 90% = 1,080.00 and (3,000 - 800) * 90% = 1,980.00 from the basic fund 390100.
    settled = lines(yibao("claims", "settle", "-", stdin=jsonl([
        claim("ZX-A", "ZX-1", "2000.00", "2023-03-01"), claim("ZX-B", "ZX-2", "3000.00", "2023-03-02"),
        claim("ZX-H", "ZX-2", "1000.00", "2023-03-03", payee=None),
    ])))  # fmt: skip
    assert [(s["setl_id"], s["hifp_pay"], s.get("payee")) for s in settled] == [
        ("ZX-A", "1080.00", "member"), ("ZX-B", "1980.00", "member"), ("ZX-H", "180.00", None),
    ]  # fmt: skip
    # The hospital is owed only the claim it settled with the centre.
    hospital = lines(yibao("finance", "pay", "--region", "330109", "--hospital", "ABROAD-1", "--through",
                           "2023-03-31", "--payment-id", "H-1", "--operator", "fin", "--dry-run"))  # fmt: skip
    assert [p["amount"] for p in hospital[0]["postings"] if p["account"] == "payable_to_hospitals"] == ["180.00"]

    # Nor are the member's claims lines of the hospital's to reconcile (对账): only ZX-H is.
    totals = {"fixmedins_code": "ABROAD-1", "insutype": "390", "clr_type": "21", "stmt_begndate": "2023-03-01",
              "stmt_enddate": "2023-03-31", "medfee_sumamt": "1000.00", "fund_pay_sumamt": "180.00",
              "acct_pay": "0.00", "fixmedins_setl_cnt": 1}  # fmt: skip
    checked = lines(yibao("reconcile", "totals", "-", "--operator", "fin", stdin=jsonl([totals])))
    assert checked[0]["stmt_rslt"] == "0", checked
    bank = tmp_path / "bank.csv"
    args = ("finance", "pay-members", "--region", "330109", "--through", "2023-03-31", "--payment-id", "ZX-PAY-1",
            "--operator", "fin", "--paid-on", "2023-04-05", "--bank-file", str(bank))  # fmt: skip
    paid = lines(yibao(*args))
    assert paid == [
        {"payment_id": "ZX-PAY-1", "psn_no": "ZX-1", "amount": "1080.00", "funds": {"390100": "1080.00"}},
        {"payment_id": "ZX-PAY-1", "psn_no": "ZX-2", "amount": "1980.00", "funds": {"390100": "1980.00"}},
        {"payment_id": "ZX-PAY-1", "status": "recorded", "members": 2, "total": "3060.00"},
    ]
    assert bank.read_text(encoding="utf-8-sig").splitlines() == [
        "psn_no,amount,reference", "ZX-1,1080.00,ZX-PAY-1", "ZX-2,1980.00,ZX-PAY-1",
    ]  # fmt: skip
    bank.unlink()
    again = lines(yibao(*args))  # same id: pays nothing, says what the first run paid, writes the file again
    assert again[-1] == {"payment_id": "ZX-PAY-1", "status": "duplicate", "members": 2, "total": "3060.00"}
    assert bank.exists()
    later = lines(yibao("finance", "pay-members", "--region", "330109", "--through", "2023-03-31", "--payment-id",
                        "ZX-PAY-2", "--operator", "fin"))  # fmt: skip
    assert later == [{"payment_id": "ZX-PAY-2", "status": "recorded", "members": 0, "total": "0.00"}]

    # Reversed after the payment: ZX-1 owes 1,080.00 back; a new claim of 1,500.00 ((1,500 - 800) * 90%
    # = 630.00) does not make them owed anything yet, so the next payment pays them nothing.
    yibao("claims", "reverse", "ZX-A", "--date", "2023-04-10", "--operator", "op", "--reason", "duplicate claim")
    yibao("claims", "settle", "-", stdin=jsonl([claim("ZX-C", "ZX-1", "1500.00", "2023-04-12")]))
    after = lines(yibao("finance", "pay-members", "--region", "330109", "--through", "2023-04-30", "--payment-id",
                        "ZX-PAY-3", "--operator", "fin"))  # fmt: skip
    assert after == [{"payment_id": "ZX-PAY-3", "status": "recorded", "members": 0, "total": "0.00"}]
    sheet = json.loads(yibao("report", "balance-sheet", "--region", "330109", "--as-of", "2023-04-30",
                             "--format", "json").stdout)  # fmt: skip
    fund = sheet["funds"]["390100"]
    # Paid 1,080.00 + 1,980.00 out of 50,000.00; owed to members: -1,080.00 + 630.00 = -450.00 (ZX-1 owes it).
    assert (fund["bank"], fund["payable_to_members"], fund["payable_to_hospitals"]) == ("46940.00", "-450.00", "180.00")
    assert yibao("verify").stdout.startswith("region 330109: OK")


def test_a_bad_payee_is_named(yibao: Any) -> None:
    got = lines(yibao("claims", "settle", "-", stdin=jsonl([claim("ZX-BAD", "ZX-1", "100.00", "2023-05-01",
                                                                 payee="bank")]), code=0))  # fmt: skip
    assert (got[0]["status"], got[0]["reason"]) == ("rejected", "bad_payee")


def test_an_audit_deduction_does_not_apply_to_a_claim_owed_to_the_member(yibao: Any) -> None:
    yibao("claims", "settle", "-", stdin=jsonl([claim("ZX-D", "ZX-2", "1200.00", "2023-06-01")]))
    args = ("--amount", "100.00", "--deduction-id", "ZX-DED", "--operator", "aud", "--reason", "审核")
    got = yibao("finance", "deduct", "refuse", "--region", "330109", "--setl-id", "ZX-D", "--fund", "390100", *args,
                code=1)  # fmt: skip
    assert "settlement_paid_to_member" in got.stderr


def test_ids_that_a_bank_file_would_misread_are_refused(yibao: Any, tmp_path: Path) -> None:
    for bad in ("X\nZX-1,99999.00,Y", "=HYPERLINK(1)", "A,B"):
        got = yibao("finance", "pay-members", "--region", "330109", "--through", "2023-03-31", "--payment-id", bad,
                    "--operator", "fin", "--bank-file", str(tmp_path / "b.csv"), code=2)  # fmt: skip
        assert "--payment-id" in got.stderr
    assert not (tmp_path / "b.csv").exists()


def test_a_bank_file_that_cannot_be_written_says_the_payment_stands(yibao: Any, tmp_path: Path) -> None:
    yibao("claims", "settle", "-", stdin=jsonl([claim("ZX-W", "ZX-2", "1000.00", "2023-07-01")]))
    args = ("finance", "pay-members", "--region", "330109", "--through", "2023-07-31", "--payment-id", "ZX-PAY-W",
            "--operator", "fin")  # fmt: skip
    failed = yibao(*args, "--bank-file", "/dev/full", code=1)  # the disk is full after the payment is recorded
    assert "cannot_write_file" in failed.stderr and "run the command again with the same --payment-id" in failed.stderr
    again = lines(yibao(*args, "--bank-file", str(tmp_path / "ok.csv")))
    assert again[-1]["status"] == "duplicate"
    assert (tmp_path / "ok.csv").read_text(encoding="utf-8-sig").splitlines()[1].startswith("ZX-2,")
