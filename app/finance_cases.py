"""Finance operations on hospitals (拨付, 拒付/核减, 追回, 罚款, 总额预算) and fund entries (基金收支:
transfers between funds, interest, opening balances, serious-illness financing)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

from app.base import _parse_policy_cached
from app.outcomes import (
    FinanceResult,
    HospitalPayment,
    SettlementNotFound,
)
from app.settlement_cases import SettlementCases
from app.unit_of_work import UnitOfWork
from core.approval import ApprovalRefused, ApprovalRequest
from core.codec import topic_of
from core.errors import StaleRead
from core.funds import (
    BankDraw,
    EntryFacts,
    FundEntry,
    FundEntryRejected,
    bank_moves,
    entry_postings,
    serious_illness_financing,
)
from core.hospital import (
    FinanceRejected,
    HospitalAccount,
    OwedAt,
    deduction_operation,
    fine_operation,
    payment_operation,
    recovery_operation,
)
from core.ids import (
    fund_entry_id,
    hospital_id,
    settlement_id,
)
from core.ledger import BENEFIT_EXPENSE, Posting
from core.member import Member
from core.records import Claim
from core.settlement import Settlement


class FinanceCases(SettlementCases):
    def _operation(
        self,
        hospital_code: str,
        operation_id: str,
        operation: tuple[Any, ...],
        act: Callable[[HospitalAccount, UnitOfWork], None],
        dry_run: bool,
    ) -> FinanceResult:
        """One finance operation on a hospital, once: an id used before is `duplicate` if it
        did the same `operation` (HospitalAccount.operations), refused if it did another."""

        def work(uow: UnitOfWork) -> FinanceResult:
            hospital = self._hospital(uow, hospital_code)
            if hospital.has(operation_id):
                hospital.check_same(operation_id, operation)
                return FinanceResult("duplicate", [])
            act(hospital, uow)
            return FinanceResult("dry_run" if dry_run else "recorded", hospital.recorded_postings())

        return self._in_transaction(work, dry_run=dry_run)

    def pay_hospitals(
        self, hospitals: Sequence[str] | None, *, payment_id: str, read_owed: Callable[[], OwedAt],
        through: dt.date, paid_on: dt.date, operator: str, dry_run: bool = False,
        check_month: Callable[[UnitOfWork, str], dict[str, Any] | None] | None = None,
    ) -> list[tuple[HospitalPayment, FinanceResult]]:  # fmt: skip
        """Pay the named hospitals, or (None) every hospital owed something, what each fund owes
        them up to `through` (拨付), all in one transaction. `read_owed` sums the journal and says
        at which position; each payment records it (HospitalAccount.is_paid). With several
        hospitals each payment id is `payment_id-<hospital>`; an id already used pays nothing again.
        `check_month` refuses a hospital whose month is not cleared (its answer is shown with the
        payment). A payment above the policy's `[controls] approval_above` is held for an approver."""

        def work(uow: UnitOfWork) -> list[tuple[HospitalPayment, FinanceResult]]:
            at = read_owed()
            codes = list(hospitals) if hospitals is not None else sorted(at.owed)
            several = hospitals is None or len(codes) > 1
            uow.preload(hospital_id(code) for code in codes)
            accounts = [self._hospital(uow, code) for code in codes]
            self._check_summed_after(accounts, at.position)
            above = self._approval_above(uow, through.year)
            results = []
            for code, hospital in zip(codes, accounts, strict=True):
                named = f"{payment_id}-{code}" if several else payment_id
                cleared = check_month(uow, code) if check_month is not None else None
                payment = HospitalPayment(named, code, at.owed.get(code, {}), cleared)
                if hospital.has(payment.payment_id):
                    hospital.check_same(payment.payment_id, payment_operation(through.isoformat()))
                    results.append((payment, FinanceResult("duplicate", [])))
                    continue
                if above is not None and sum(payment.owed.values()) > above:
                    results.append((payment, self._hold_payment(uow, hospital, payment, through, paid_on, operator)))
                    continue
                hospital.pay(
                    payment.payment_id, through.isoformat(), paid_on.isoformat(), payment.owed, operator, at.position
                )
                postings = hospital.recorded_postings()
                results.append((payment, FinanceResult("dry_run" if dry_run else "recorded", postings)))
            self._draw_from_banks(uow, [p for _, r in results for p in r.postings], paid_on, rules_of=through.year)
            return results

        return self._in_transaction(work, dry_run=dry_run)

    def _approval_above(self, uow: UnitOfWork, year: int) -> int | None:
        policy = self._rules_in_force(uow, year)
        return policy.controls.approval_above if policy is not None else None

    def _hold_payment(
        self, uow: UnitOfWork, hospital: HospitalAccount, payment: HospitalPayment, through: dt.date,
        paid_on: dt.date, maker: str,
    ) -> FinanceResult:  # fmt: skip
        """A payment above the threshold, recorded as a request (kind "pay") on the hospital's
        account at its version; approved, the amount owed is summed again and must be the same."""
        details = {
            "payment_id": payment.payment_id, "through": through.isoformat(), "paid_on": paid_on.isoformat(),
            "owed": payment.owed, "cleared": payment.cleared,
        }  # fmt: skip
        request = self._held(
            uow, f"pay-{payment.payment_id}", "pay", payment.hospital, hospital.version,
            sum(payment.owed.values()), maker, f"payment {payment.payment_id} through {through}", details,
        )  # fmt: skip
        return FinanceResult("pending_approval", [], request.request_id)

    def _pay_approved(
        self, uow: UnitOfWork, request: ApprovalRequest, checker: str, read_owed: Callable[[], OwedAt]
    ) -> FinanceResult:
        """An approved payment, by its maker, approved by `checker`: paid once, only if what is
        owed is still what the request asked to pay (request_stale otherwise)."""
        details = request.details
        at = read_owed()
        hospital = self._hospital(uow, request.subject)
        self._check_summed_after([hospital], at.position)
        owed = at.owed.get(request.subject, {})
        if owed != details["owed"] or hospital.has(details["payment_id"]):
            raise ApprovalRefused(
                f"what {request.subject} is owed changed since request {request.request_id} was made: ask again",
                reason="request_stale",
            )
        hospital.pay(
            details["payment_id"], details["through"], details["paid_on"], owed, request.maker, at.position,
            approved_by=checker,
        )  # fmt: skip
        postings = hospital.recorded_postings()
        through = dt.date.fromisoformat(details["through"])
        self._draw_from_banks(uow, postings, dt.date.fromisoformat(details["paid_on"]), rules_of=through.year)
        return FinanceResult("recorded", postings)

    def _check_summed_after(self, accounts: Sequence[HospitalAccount], position: int) -> None:
        """A payment's sum must include everything its hospitals' accounts hold: a reversal or a
        deduction recorded after `position` (read before the accounts were) would be paid over.
        Then the sum is read again (StaleRead). One recorded after the accounts were read makes
        the payment's save fail on their version instead."""
        stored = [a for a in accounts if not a.pending_events]
        found = self.region_log.select_positions([(a.id, a.version) for a in stored])
        for account in stored:
            latest = found[(account.id, account.version)]
            if latest > position:
                raise StaleRead(
                    f"hospital account {account.fixmedins_code} changed at journal position {latest}, "
                    f"after the amounts owed were summed at {position}"
                )

    def _draw_from_banks(
        self, uow: UnitOfWork, postings: Sequence[Posting], on_date: dt.date, *, rules_of: int | None = None
    ) -> None:
        """What these postings take out of funds' bank accounts must be there on `on_date` and
        after (core.funds.check_bank_draw), except for funds the policy of year `rules_of` (a
        payment's: the year it pays for; else the date's) lets overdraw. Checked when the unit of
        work is saved, in its transaction, under the write lock."""
        moves = bank_moves(postings)
        if not moves:
            return
        policy = self._rules_in_force(uow, rules_of or on_date.year)
        allowed = policy.controls.overdraft_allowed if policy is not None else frozenset()
        draws = {fund: -moved for fund, moved in moves.items() if moved < 0 and fund not in allowed}
        uow.bank_draws.append(BankDraw(on_date.isoformat(), draws, moves))

    def deduct(
        self, deduction_id: str, *, setl_id: str, fund: str, kind: str, amount: int, on_date: dt.date,
        operator: str, reason: str, dry_run: bool = False,
    ) -> FinanceResult:  # fmt: skip
        """Refuse (拒付) or reduce (核减) what `fund` pays on a settlement, never more than it paid."""
        found = self.settlement(setl_id)
        if found is None:
            raise SettlementNotFound(f"no settlement {setl_id} in region {self.region}")
        code = found.current.claim["fixmedins_code"]

        def act(hospital: HospitalAccount, uow: UnitOfWork) -> None:
            # Read again in the transaction: a reversal or correction since is then seen (it
            # records on this hospital's account too, so a save that missed it fails).
            settlement = uow.get(settlement_id(setl_id), Settlement)
            assert settlement is not None
            if settlement.reversed:
                raise FinanceRejected(f"settlement {setl_id} is reversed", reason="settlement_reversed")
            if settlement.current.claim.get("payee") is not None:
                detail = (
                    f"settlement {setl_id} is owed to its member (零星报销), not the hospital: correct or reverse it"
                )
                raise FinanceRejected(detail, reason="settlement_paid_to_member")
            facts = settlement.current
            if Claim.from_dict(facts.claim).treated_elsewhere(self.region) is not None:
                detail = f"settlement {setl_id} was treated in region {facts.claim['mdtrtarea_admvs']}, which audits it"
                raise FinanceRejected(detail, reason="settlement_treated_elsewhere")
            if facts.claim["fixmedins_code"] != code:
                raise StaleRead(f"settlement {setl_id} was corrected to hospital {facts.claim['fixmedins_code']}")
            fund_paid = sum(p.amount for p in facts.postings if p.fund == fund and p.account == BENEFIT_EXPENSE)
            settled_at, own_positions = self._settlement_paid_evidence(hospital, settlement)
            hospital.deduct(
                deduction_id, setl_id=setl_id, fund=fund, kind=kind, amount=amount, fund_paid=fund_paid,
                settled_on=facts.posted_on, settled_at=settled_at, own_positions=own_positions,
                on_date=on_date.isoformat(), operator=operator, reason=reason,
            )  # fmt: skip

        return self._operation(code, deduction_id, deduction_operation(setl_id, fund, kind, amount), act, dry_run)

    def recover(
        self, recovery_id: str, *, hospital: str, fund: str, amount: int, on_date: dt.date, operator: str,
        dry_run: bool = False,
    ) -> FinanceResult:  # fmt: skip
        when = on_date.isoformat()
        return self._operation(
            hospital, recovery_id, recovery_operation(fund, amount),
            lambda h, _: h.recover(recovery_id, fund=fund, amount=amount, on_date=when, operator=operator),
            dry_run,
        )  # fmt: skip

    def fine(
        self, fine_id: str, *, hospital: str, fund: str, amount: int, on_date: dt.date, operator: str, reason: str,
        dry_run: bool = False,
    ) -> FinanceResult:  # fmt: skip
        when = on_date.isoformat()
        return self._operation(
            hospital, fine_id, fine_operation(fund, amount),
            lambda h, _: h.fine(fine_id, fund=fund, amount=amount, on_date=when, operator=operator, reason=reason),
            dry_run,
        )  # fmt: skip

    def set_budget(self, *, hospital: str, year: int, amount: int, operator: str) -> bool:
        def work(uow: UnitOfWork) -> bool:
            account = self._hospital(uow, hospital)
            account.set_budget(year, amount, operator)
            return bool(account.pending_events)

        return self._in_transaction(work)

    def record_fund_entries(self, entries: Sequence[EntryFacts], *, dry_run: bool = False) -> list[FinanceResult]:
        """Record each entry once, all in one transaction: an id used before is `duplicate` if it
        recorded the same entry, refused if another. What a transfer takes out of a fund's bank
        account must be there (`_draw_from_banks`)."""

        def work(uow: UnitOfWork) -> list[FinanceResult]:
            uow.preload(fund_entry_id(e.entry_id) for e in entries)
            results = []
            for facts in entries:
                existing = uow.get(fund_entry_id(facts.entry_id), FundEntry)
                if existing is not None:
                    existing.check_same(facts)
                    results.append(FinanceResult("duplicate", []))
                    continue
                postings = entry_postings(facts)
                uow.add(FundEntry(entry=facts.to_dict(), postings=postings))
                self._draw_from_banks(uow, postings, dt.date.fromisoformat(facts.on_date))
                results.append(FinanceResult("dry_run" if dry_run else "recorded", postings))
            return results

        return self._in_transaction(work, dry_run=dry_run)

    def finance_serious_illness(
        self, year: int, *, operator: str, on_date: dt.date | None = None, dry_run: bool = False
    ) -> list[tuple[EntryFacts, FinanceResult]]:
        """The year's serious-illness financing (大病保险筹资划转): per scheme, the policy's
        per-capita amount times the members insured here that year, from the pooling fund to the
        serious-illness fund, dated `on_date` (default 1 January). Its id comes from the region,
        year and scheme: run again, it is `duplicate`; with another count of members, refused."""
        book = self.policy_book(year)
        if book is None or not book.versions:
            raise FundEntryRejected(f"no policy for region {self.region} year {year}", reason="no_policy")
        per_capita = _parse_policy_cached(book.current[1]).serious_illness_per_capita
        if not per_capita:
            raise FundEntryRejected(
                f"the {year} policy of region {self.region} has no [financing] serious_illness_per_capita",
                reason="no_serious_illness_financing",
            )
        entries = serious_illness_financing(
            self.region, year, per_capita, self.members_insured(year), on_date=on_date or dt.date(year, 1, 1),
            operator=operator,
        )  # fmt: skip
        return list(zip(entries, self.record_fund_entries(entries, dry_run=dry_run), strict=True))

    members_page_max = 5_000  # members read per query when counting the insured

    def members_insured(self, year: int) -> dict[str, int]:
        """insutype -> how many members were insured here under that scheme at some time in `year`."""
        ids = self.region_log.select_originators_of([topic_of(Member.Registered)])
        counts: dict[str, int] = {}
        for start in range(0, len(ids), self.members_page_max):
            page = ids[start : start + self.members_page_max]
            uow = self.unit_of_work()
            uow.preload(page)
            for aggregate_id in page:
                member = uow.get(aggregate_id, Member)
                assert member is not None
                for insutype in member.schemes_during(self.region, year):
                    counts[insutype] = counts.get(insutype, 0) + 1
        return counts
