"""The maternity allowance (core.maternity): recorded once, owed to the member."""

from __future__ import annotations

import datetime as dt

from app.finance_cases import FinanceCases
from app.outcomes import FinanceResult
from app.unit_of_work import UnitOfWork
from core.ids import maternity_allowance_id, member_id
from core.maternity import AllowanceFacts, AllowanceRejected, MaternityAllowance, allowance_postings
from core.member import Member


class MaternityCases(FinanceCases):
    def grant_allowance(self, facts: AllowanceFacts, *, dry_run: bool = False) -> FinanceResult:
        """Record an employee's maternity allowance once (its amount owed to them). The member
        must be insured here as an employee on `facts.on_date`."""
        facts.check()

        def work(uow: UnitOfWork) -> FinanceResult:
            existing = uow.get(maternity_allowance_id(facts.allowance_id), MaternityAllowance)
            if existing is not None:
                existing.check_same(facts)
                return FinanceResult("duplicate", [])
            member = uow.get(member_id(facts.psn_no), Member)
            record = member.record_at(dt.date.fromisoformat(facts.on_date)) if member else None
            if record is None or record.insuplc_admdvs != self.region or record.insutype != "310":
                raise AllowanceRejected(
                    f"{facts.psn_no} is not insured here as an employee on {facts.on_date}: "
                    "the maternity allowance is an employee's", reason="no_maternity_cover",
                )  # fmt: skip
            postings = allowance_postings(facts)
            uow.add(MaternityAllowance(facts=facts.to_dict(), amount=facts.amount, postings=postings))
            return FinanceResult("dry_run" if dry_run else "recorded", postings)

        return self._in_transaction(work, dry_run=dry_run)

    def reverse_allowance(self, allowance_id: str, *, on_date: dt.date, operator: str, reason: str) -> FinanceResult:
        """Undo a wrong allowance: what it owed the member is no longer owed. Like any reversal
        that lowers what a member is owed, it touches the region's MemberPayables, so a payment
        summed before it loses its save and is summed again."""

        def work(uow: UnitOfWork) -> FinanceResult:
            allowance = uow.get(maternity_allowance_id(allowance_id), MaternityAllowance)
            if allowance is None:
                raise AllowanceRejected(
                    f"no allowance {allowance_id} in region {self.region}", reason="unknown_allowance"
                )
            postings = allowance.reverse(on_date.isoformat(), operator, reason)
            self._member_payables(uow).lower(allowance_id, 1, on_date.isoformat())
            return FinanceResult("recorded", postings)

        return self._in_transaction(work)
