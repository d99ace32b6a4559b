"""Year-end settlement of hospitals' total budgets (issue 21) through the CLI: a hospital under
budget keeps half the surplus (owed to it, then paid), one over budget owes back what the funds do
not share (a receivable); run again it records nothing, and refuses once the year changed."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.cli_store import claim_line, coded_runner, jsonl, lines, member_line, region_year
from tests.conftest import EXAMPLES

BUDGET = "\n[budget]\nsurplus_kept_bp = 5000\noverspend_shared_bp = 6000\noverspend_shared_up_to_bp = 1000\n"
MEMBER = member_line("BU-1")
FUNDING = {"contrib_id": "BU-F", "psn_no": "BU-1", "fund": "390100", "paid_date": "2023-01-05", "amount": "90000.00",
           "acct_amount": "0.00"}  # fmt: skip


def claim(setl_id: str, hospital: str, inscp: str) -> dict[str, Any]:
    return claim_line(setl_id, "BU-1", inscp, day="2023-06-01", fixmedins_code=hospital)


@pytest.fixture(scope="module")
def yibao(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    run = coded_runner(database_url)
    policy = tmp_path_factory.mktemp("budget") / "policy.toml"
    policy.write_text((EXAMPLES / "policy-330109-2023.toml").read_text(encoding="utf-8") + BUDGET, encoding="utf-8")
    region_year(run, policy, [MEMBER], [FUNDING])
    # Inpatient at level 1, per admission: (amount - 800) x 90%. H-UNDER: 10,800.00 -> 9,000.00;
    # H-OVER: 20,800.00 -> 18,000.00 and 6,800.00 -> 5,400.00, 23,400.00 in all.
    run("claims", "settle", "-", stdin=jsonl([
        claim("BU-A", "H-UNDER", "10800.00"), claim("BU-B", "H-OVER", "20800.00"), claim("BU-C", "H-OVER", "6800.00"),
    ]))  # fmt: skip
    for hospital, amount in (("H-UNDER", "12000.00"), ("H-OVER", "20000.00")):
        run("finance", "budget", "--region", "330109", "--hospital", hospital, "--year", "2023", "--amount", amount,
            "--operator", "fin")  # fmt: skip
    return run


ARGS = ("finance", "budget-settle", "--region", "330109", "--year", "2023", "--on", "2024-01-20", "--operator", "fin")


def test_surplus_kept_and_overspend_owed_back_once(yibao: Any) -> None:
    got = {r["hospital"]: r for r in lines(yibao(*ARGS))}
    # H-UNDER: 12,000.00 budget, 9,000.00 used: half of the 3,000.00 surplus kept = 1,500.00 owed to it.
    under = got["H-UNDER"]
    assert (under["status"], under["used"], under["kept"], under["borne_by_hospital"]) == (
        "recorded", "9000.00", "1500.00", "0.00"
    )  # fmt: skip
    # H-OVER: 20,000.00 budget, 23,400.00 used: 3,400.00 over. The first 10% of the budget (2,000.00)
    # is shared, 60% by the funds (1,200.00); the 1,400.00 beyond it is the hospital's alone:
    # it owes back 2,000.00 - 1,200.00 + 1,400.00 = 2,200.00.
    over = got["H-OVER"]
    assert (over["used"], over["kept"], over["borne_by_hospital"]) == ("23400.00", "0.00", "2200.00")
    assert [(p["account"], p["amount"]) for p in over["postings"]] == [
        ("receivable_from_hospitals", "2200.00"), ("benefit_expense", "-2200.00"),
    ]  # fmt: skip
    again = lines(yibao(*ARGS))
    assert {r["status"] for r in again} == {"duplicate"}
    paid = lines(yibao("finance", "pay", "--region", "330109", "--hospital", "H-UNDER", "--through", "2024-01-31",
                       "--paid-on", "2024-01-25", "--payment-id", "BU-PAY", "--operator", "fin"))  # fmt: skip
    assert [p["amount"] for p in paid[0]["postings"] if p["account"] == "payable_to_hospitals"] == ["10500.00"]
    statement = json.loads(yibao("report", "hospital", "--region", "330109", "--hospital", "H-UNDER", "--year",
                                 "2023").stdout)  # fmt: skip
    assert statement["budget_used"] == "9000.00"  # what it kept is not use of the budget
    assert yibao("verify").stdout.startswith("region 330109: OK")


def test_a_year_changed_since_is_refused_by_name(yibao: Any) -> None:
    yibao("claims", "reverse", "BU-C", "--date", "2023-12-30", "--operator", "op", "--reason", "duplicate bill")
    changed = yibao(*ARGS, code=1)
    assert "exists_with_different_content" in changed.stderr
