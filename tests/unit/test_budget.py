"""The year-end budget settlement's pure rule (core.budget)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from core.budget import BudgetTerms, settle_budget
from core.ledger import BENEFIT_EXPENSE, PAYABLE_TO_HOSPITALS, RECEIVABLE_FROM_HOSPITALS

TERMS = BudgetTerms(surplus_kept_bp=5000, overspend_shared_bp=6000, overspend_shared_up_to_bp=1000)


def test_under_budget_the_hospital_keeps_its_share_of_the_surplus_split_by_fund() -> None:
    # Budget 1,000,000.00; used 700,000.00 + 100,000.00: surplus 200,000.00, half kept = 100,000.00,
    # split 7:1 over the funds that paid: 87,500.00 and 12,500.00.
    got = settle_budget("H1", 100_000_000, {"310100": 70_000_000, "390100": 10_000_000}, TERMS)
    assert (got.used, got.kept, got.borne_by_hospital) == (80_000_000, 10_000_000, 0)
    owed = {p.fund: p.amount for p in got.postings if p.account == PAYABLE_TO_HOSPITALS}
    assert owed == {"310100": -8_750_000, "390100": -1_250_000}


def test_overspend_is_shared_up_to_its_limit_and_the_rest_is_the_hospitals() -> None:
    # Budget 1,000,000.00; used 1,150,000.00: overspend 150,000.00. Shared: up to 10% of the budget,
    # 100,000.00, of which the funds bear 60% = 60,000.00; the hospital owes back 90,000.00.
    got = settle_budget("H1", 100_000_000, {"310100": 115_000_000}, TERMS)
    assert (got.kept, got.borne_by_hospital) == (0, 9_000_000)
    assert {(p.account, p.amount) for p in got.postings} == {
        (RECEIVABLE_FROM_HOSPITALS, 9_000_000), (BENEFIT_EXPENSE, -9_000_000),
    }  # fmt: skip


def test_exactly_on_budget_nothing_moves() -> None:
    got = settle_budget("H1", 100_000, {"310100": 100_000}, TERMS)
    assert (got.kept, got.borne_by_hospital, got.postings) == (0, 0, [])


@given(
    st.integers(0, 10**10),
    st.dictionaries(st.sampled_from(["310100", "390100"]), st.integers(0, 10**10), min_size=1),
    st.integers(0, 10_000), st.integers(0, 10_000), st.integers(0, 10_000),
)  # fmt: skip
def test_postings_balance_and_split_the_whole_adjustment(
    budget: int, used: dict[str, int], kept_bp: int, shared_bp: int, up_to_bp: int
) -> None:
    got = settle_budget("H1", budget, used, BudgetTerms(kept_bp, shared_bp, up_to_bp))
    assert sum(p.amount for p in got.postings) == 0
    assert got.kept >= 0 and got.borne_by_hospital >= 0 and not (got.kept and got.borne_by_hospital)
    expense = -sum(p.amount for p in got.postings if p.account == BENEFIT_EXPENSE)
    assert expense == got.borne_by_hospital - got.kept
