"""Maternity (issue 21) through the CLI: med_type 51 and 52 paid by the maternity fund (510100)
for employees under the policy's [maternity] terms, up to each med_type's annual cap; a
resident's maternity claim, or one the policy has no terms for, rejected by name; the
maternity allowance (days x daily wage) owed to the member and paid with `finance pay-members`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.cli_store import claim_line, coded_runner, jsonl, lines, member_line, region_year
from tests.conftest import EXAMPLES

# The example policy with maternity terms: 生育住院 90% up to 5,000.00 a year; 生育门诊 not covered.
MATERNITY = '\n[maternity.med_type.52]\nratio_bp = 9000\nannual_cap = "5000.00"\n'
MEMBERS = [member_line("MA-E", "310"), member_line("MA-R")]
FUNDING = [
    {"contrib_id": "MA-F1", "psn_no": "MA-E", "fund": "510100", "paid_date": "2023-01-05", "amount": "20000.00",
     "acct_amount": "0.00"},
    {"contrib_id": "MA-F2", "psn_no": "MA-E", "fund": "310100", "paid_date": "2023-01-05", "amount": "1000.00",
     "acct_amount": "400.00"},
]  # fmt: skip


def claim(setl_id: str, psn_no: str, med_type: str, inscp: str, own: str = "0.00") -> dict[str, Any]:
    total = f"{float(inscp) + float(own):.2f}"
    return claim_line(setl_id, psn_no, inscp, day="2023-05-10", fixmedins_code="H-MA", hosp_lv=2, med_type=med_type,
                      medfee_sumamt=total, fulamt_ownpay_amt=own)  # fmt: skip


@pytest.fixture(scope="module")
def yibao(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    run = coded_runner(database_url)
    policy = tmp_path_factory.mktemp("maternity") / "policy.toml"
    policy.write_text((EXAMPLES / "policy-330109-2023.toml").read_text(encoding="utf-8") + MATERNITY, encoding="utf-8")
    region_year(run, policy, MEMBERS, FUNDING)
    return run


def test_the_maternity_fund_pays_an_employees_admission_up_to_the_cap(yibao: Any) -> None:
    # 4,000.00 x 90% = 3,600.00; then 3,000.00 x 90% = 2,700.00, but 1,400.00 is left of the 5,000.00 cap.
    got = lines(yibao("claims", "settle", "-", stdin=jsonl([
        claim("MA-1", "MA-E", "52", "4000.00", own="100.00"), claim("MA-2", "MA-E", "52", "3000.00"),
    ])))  # fmt: skip
    first, second = got
    assert (first["status"], first["fund_pay_sumamt"], first["hifp_pay"], first["clr_type"]) == (
        "settled", "3600.00", "0.00", "21"
    )  # fmt: skip
    assert first["setldetail"] == [{"fund_pay_type": "510100", "fund_payamt": "3600.00"}]
    # The rest, 500.00 (400.00 of the policy range and the 100.00 own-expense), is the person's:
    # the account's 400.00 first, then cash.
    assert (first["psn_part_amt"], first["acct_pay"], first["psn_cash_pay"]) == ("500.00", "400.00", "100.00")
    assert (second["fund_pay_sumamt"], second["psn_part_amt"]) == ("1400.00", "1600.00")
    trace = [json.loads(line) for line in yibao("trace", "MA-2", "--json").stdout.splitlines()]
    assert '"capped_by": "annual_cap"' in json.dumps(trace)


@pytest.mark.parametrize(
    ("psn_no", "med_type", "reason"),
    [("MA-R", "52", "no_maternity_cover"), ("MA-E", "51", "no_maternity_policy")],
)
def test_maternity_claims_not_covered_are_named(yibao: Any, psn_no: str, med_type: str, reason: str) -> None:
    got = lines(yibao("claims", "settle", "-", stdin=jsonl([claim(f"MA-X-{psn_no}-{med_type}", psn_no, med_type,
                                                                      "100.00")])))[0]  # fmt: skip
    assert (got["status"], got["reason"]) == ("rejected", reason)


def test_the_allowance_is_owed_to_the_member_and_paid_once(yibao: Any, tmp_path: Path) -> None:
    args = ("maternity", "allowance", "--region", "330109", "--allowance-id", "MA-AL-1", "--psn-no", "MA-E",
            "--days", "98", "--daily-wage", "200.50", "--on", "2023-06-01", "--operator", "clerk")  # fmt: skip
    granted = lines(yibao(*args))[0]
    assert (granted["status"], granted["amount"]) == ("recorded", "19649.00")  # 98 x 200.50
    assert lines(yibao(*args))[0]["status"] == "duplicate"
    other = yibao(*args[:-4], "--days", "99", *args[-4:], code=1)
    assert "exists_with_different_content" in other.stderr
    resident = yibao("maternity", "allowance", "--region", "330109", "--allowance-id", "MA-AL-2", "--psn-no", "MA-R",
                     "--days", "98", "--daily-wage", "100.00", "--operator", "clerk", code=1)  # fmt: skip
    assert "no_maternity_cover" in resident.stderr
    paid = lines(yibao("finance", "pay-members", "--region", "330109", "--through", "2023-06-30", "--payment-id",
                       "MA-PAY", "--paid-on", "2023-06-30", "--operator", "fin"))  # fmt: skip
    assert paid[0] == {"payment_id": "MA-PAY", "psn_no": "MA-E", "amount": "19649.00", "funds": {"510100": "19649.00"}}
    sheet = json.loads(yibao("report", "balance-sheet", "--region", "330109", "--as-of", "2023-06-30",
                             "--format", "json").stdout)["funds"]["510100"]  # fmt: skip
    # 20,000.00 in; 3,600.00 + 1,400.00 owed to the hospital (not paid yet); 19,649.00 paid to the member.
    assert (sheet["bank"], sheet["payable_to_hospitals"], sheet["benefit_expense"]) == ("351.00", "5000.00", "24649.00")
    assert yibao("verify").stdout.startswith("region 330109: OK")


def test_a_wrong_allowance_is_reversed_and_the_member_owes_it_back(yibao: Any) -> None:
    args = ("maternity", "allowance", "--region", "330109", "--psn-no", "MA-E", "--days", "98", "--operator", "clerk",
            "--on", "2023-07-01")  # fmt: skip
    more = {**FUNDING[0], "contrib_id": "MA-F3", "amount": "50000.00"}
    yibao("contributions", "import", "-", stdin=jsonl([more]))
    yibao(*args, "--allowance-id", "MA-AL-W", "--daily-wage", "300.00")  # 29,400.00: the wage was wrong
    yibao("finance", "pay-members", "--region", "330109", "--through", "2023-07-31", "--payment-id", "MA-PAY-W",
          "--paid-on", "2023-07-31", "--operator", "fin")  # fmt: skip
    undone = lines(yibao("maternity", "reverse-allowance", "MA-AL-W", "--region", "330109", "--on", "2023-08-01",
                         "--reason", "wrong daily wage", "--operator", "clerk"))[0]  # fmt: skip
    assert undone["status"] == "recorded" and [p["amount"] for p in undone["postings"]] == ["-29400.00", "29400.00"]
    again = yibao("maternity", "reverse-allowance", "MA-AL-W", "--region", "330109", "--reason", "r",
                  "--operator", "clerk", code=1)  # fmt: skip
    assert "already_reversed" in again.stderr
    # The right one, 98 x 200.00 = 19,600.00, is less than the 29,400.00 paid: the member owes 9,800.00, nothing paid.
    yibao(*args, "--allowance-id", "MA-AL-R", "--daily-wage", "200.00")
    paid = lines(yibao("finance", "pay-members", "--region", "330109", "--through", "2023-08-31", "--payment-id",
                       "MA-PAY-R", "--operator", "fin"))  # fmt: skip
    assert paid == [{"payment_id": "MA-PAY-R", "status": "recorded", "members": 0, "total": "0.00"}]
    assert yibao("verify").stdout.startswith("region 330109: OK")
