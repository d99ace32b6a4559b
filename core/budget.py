"""Year-end settlement of a hospital's total budget (总额预算 年终清算): what the pooling funds
paid the hospital in the year against its budget.

Under budget, the hospital keeps `surplus_kept_bp` of the surplus (结余留用): the funds owe it
that much more. Over budget, the funds bear `overspend_shared_bp` of the overspend (超支分担),
up to `overspend_shared_up_to_bp` of the budget; the hospital bears the rest, which it owes
back (a receivable that `finance recover` settles). Each adjustment is split over the basic
funds in proportion to what each paid, the remainder of the rounding to the largest.
"""

from __future__ import annotations

import attrs

from core.ledger import BENEFIT_EXPENSE, PAYABLE_TO_HOSPITALS, RECEIVABLE_FROM_HOSPITALS, Posting, journal, move
from core.money import apply_ratio


@attrs.frozen
class BudgetTerms:
    surplus_kept_bp: int  # of the surplus, kept by the hospital
    overspend_shared_bp: int  # of the overspend, borne by the funds
    overspend_shared_up_to_bp: int  # of the budget: overspend beyond it is the hospital's alone


@attrs.frozen
class BudgetOutcome:
    budget: int
    used: int  # what the basic funds paid the hospital in the year, net of deductions
    kept: int  # surplus kept by the hospital: owed to it
    borne_by_hospital: int  # overspend the hospital bears: owed back by it
    postings: list[Posting]

    def to_dict(self) -> dict[str, int]:
        return {
            "budget": self.budget,
            "used": self.used,
            "kept": self.kept,
            "borne_by_hospital": self.borne_by_hospital,
        }


def settle_budget(hospital: str, budget: int, used_by_fund: dict[str, int], terms: BudgetTerms) -> BudgetOutcome:
    used = sum(used_by_fund.values())
    kept = borne = 0
    if used < budget:
        kept = apply_ratio(budget - used, terms.surplus_kept_bp)
    else:
        overspend = used - budget
        shared = min(overspend, apply_ratio(budget, terms.overspend_shared_up_to_bp))
        borne = overspend - apply_ratio(shared, terms.overspend_shared_bp)
    legs: list[Posting] = []
    for fund, amount in _split(kept, used_by_fund).items():
        legs += move(fund, BENEFIT_EXPENSE, PAYABLE_TO_HOSPITALS, amount, credit_party=hospital)
    for fund, amount in _split(borne, used_by_fund).items():
        legs += move(fund, RECEIVABLE_FROM_HOSPITALS, BENEFIT_EXPENSE, amount, debit_party=hospital)
    return BudgetOutcome(budget, used, kept, borne, journal(*legs))


def _split(amount: int, weights: dict[str, int]) -> dict[str, int]:
    """`amount` over the funds in proportion to `weights`, the rounding's remainder to the
    largest (the first fund when none paid anything)."""
    if amount == 0:
        return {}
    total = sum(w for w in weights.values() if w > 0)
    funds = sorted(weights, key=lambda f: (-weights[f], f))
    if total == 0:
        return {funds[0]: amount}
    parts = {f: amount * weights[f] // total for f in funds if weights[f] > 0}
    parts[funds[0]] += amount - sum(parts.values())
    return {f: a for f, a in parts.items() if a}
