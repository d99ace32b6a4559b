"""Year-end settlement of hospitals' total budgets (总额预算 年终清算, core.budget)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from app.finance_cases import FinanceCases
from app.outcomes import FinanceResult
from app.unit_of_work import UnitOfWork
from core.budget import BudgetOutcome, settle_budget
from core.codec import topic_of
from core.hospital import FinanceRejected, HospitalAccount, budget_operation, budget_operation_id

# (position, hospital -> fund -> what the basic funds paid it in the year), summed at that position
BudgetUse = Callable[[list[str]], tuple[int, dict[str, dict[str, int]]]]


class BudgetCases(FinanceCases):
    def settle_budgets(
        self, year: int, *, read_use: BudgetUse, on_date: dt.date, operator: str, dry_run: bool = False
    ) -> list[tuple[str, BudgetOutcome, FinanceResult]]:
        """Settle every hospital with a budget for `year`, in one transaction, under the policy's
        `[budget]` terms of that year. Once per hospital and year: run again with the same use
        of the budget, `duplicate`; with another (a claim of the year settled or reversed since),
        refused by name. The use is summed at a journal position read after the accounts: an
        account changed after it (a reversal, a deduction) makes the sum be read again."""

        def work(uow: UnitOfWork) -> list[tuple[str, BudgetOutcome, FinanceResult]]:
            policy = self._policy(uow, year)
            if policy is None or policy.budget is None:
                detail = f"the {year} policy of region {self.region} has no [budget] terms"
                raise FinanceRejected(detail, reason="no_budget_terms")
            accounts = [a for a in self._hospital_accounts(uow) if year in a.budgets]
            position, use = read_use([a.fixmedins_code for a in accounts])
            self._check_summed_after(accounts, position)
            results = []
            for account in accounts:
                outcome = settle_budget(account.fixmedins_code, account.budgets[year], use[account.fixmedins_code],
                                        policy.budget)  # fmt: skip
                operation = budget_operation(year, outcome.budget, outcome.used)
                if account.has(budget_operation_id(year)):
                    account.check_same(budget_operation_id(year), operation)
                    results.append((account.fixmedins_code, outcome, FinanceResult("duplicate", [])))
                    continue
                account.settle_budget(year, outcome, on_date.isoformat(), operator)
                status = "dry_run" if dry_run else "recorded"
                results.append((account.fixmedins_code, outcome, FinanceResult(status, outcome.postings)))
            return results

        return self._in_transaction(work, dry_run=dry_run)

    def _hospital_accounts(self, uow: UnitOfWork) -> list[HospitalAccount]:
        """Every hospital account with a budget set (in any year)."""
        ids = self.region_log.select_originators_of([topic_of(HospitalAccount.BudgetSet)])
        uow.preload(ids)
        found = (uow.get(i, HospitalAccount) for i in ids)
        return sorted((a for a in found if a is not None), key=lambda a: a.fixmedins_code)
