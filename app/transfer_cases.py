"""The use cases of relationship transfers and family bindings, as part of RegionApplication (app/region.py).

A region is either side of a transfer: it starts, approves or rejects its members' transfers
out, records the arrival of members transferred in, and records the completion of its own
transfers once the receiving region has recorded their arrival. The two steps between regions
are each recorded with the position of the event that caused them (`tracking`), so that the
follower driving them (`app.transfer_relay`) acts on every event exactly once.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, TypeVar

import attrs
from eventsourcing.persistence import Tracking

from app.base import RegionBase
from core.account import IndividualAccount
from core.errors import YibaoError
from core.ids import account_id, member_id, member_year_id, transfer_id, transfer_in_id
from core.ledger import transfer_completed_postings, transfer_in_postings, transfer_out_postings
from core.member import Member, not_an_employee
from core.member_year import MemberYear
from core.records import MemberRecord
from core.transfer import Transfer, TransferFacts, TransferIn, TransferRejected

if TYPE_CHECKING:
    from app.unit_of_work import UnitOfWork

T = TypeVar("T")
AUTO_RELEASE_OPERATOR = "system"
AUTO_RELEASE_REASON = "免审即转: balance under 1,000 yuan"


class TransferNotFound(YibaoError):
    reason = "unknown_transfer"


class MemberNotFound(YibaoError):
    reason = "unknown_member"


class BindingRejected(YibaoError):
    reason = "binding_rejected"


@attrs.frozen
class TransferState:
    facts: TransferFacts
    status: str
    recorded: bool  # False when the request was already recorded (a rerun)


class TransferCases(RegionBase):
    # --- releasing side ---------------------------------------------------------------------

    def start_transfer(
        self, transfer: str, *, psn_no: str, to_region: str, transfer_date: dt.date, operator: str,
        requested_on: dt.date,
    ) -> TransferState:  # fmt: skip
        """Move the member's account balance into in-transit and their insurance to `to_region`
        from `transfer_date`; release at once when the balance is under the review threshold.
        The same request again (same id, member, region and date) records nothing."""
        date = transfer_date.isoformat()

        def work(uow: UnitOfWork) -> TransferState:
            uow.preload(
                [transfer_id(transfer), member_id(psn_no), account_id(psn_no)]
                + [member_year_id(psn_no, y) for y in (transfer_date.year, transfer_date.year + 1)]
            )  # one read for everything below
            existing = uow.get(transfer_id(transfer), Transfer)
            if existing is not None:
                if not existing.facts.same_request(psn_no, to_region, date):
                    raise TransferRejected(
                        f"transfer {transfer} exists for another member, region or date",
                        reason="exists_with_different_content",
                    )
                return TransferState(existing.facts, existing.status, recorded=False)
            if to_region == self.region:
                raise TransferRejected(f"member {psn_no} is insured in {to_region} already", reason="same_region")
            member = uow.get(member_id(psn_no), Member)
            record = member.record_at(transfer_date) if member else None
            if member is None or record is None:
                raise MemberNotFound(f"no member {psn_no} insured in region {self.region} on {date}")
            latest = member.records[-1]
            if record.insuplc_admdvs != self.region or latest.insuplc_admdvs != self.region:
                raise TransferRejected(
                    f"member {psn_no} is transferred out of region {self.region} (or their transfer is pending)",
                    reason="member_transferred_out",
                )
            if latest.valid_from > transfer_date:
                raise TransferRejected(
                    f"member {psn_no} has a record valid from {latest.valid_from}, after the transfer date",
                    reason="member_changes_after_transfer_date",
                )
            self._refuse_claims_after(uow, psn_no, transfer_date)
            account = uow.get(account_id(psn_no), IndividualAccount)
            balance = account.balance if account is not None else 0
            moved = attrs.evolve(record, insuplc_admdvs=to_region, valid_from=transfer_date, family_of=None)
            facts = TransferFacts(
                transfer_id=transfer, psn_no=psn_no, from_region=self.region, to_region=to_region,
                transfer_date=date, balance=balance, contribution_years=sorted(member.contribution_years),
                member_record=moved.to_dict(), record_before=record.to_dict(), operator=operator,
                requested_on=requested_on.isoformat(),
            )  # fmt: skip
            postings = transfer_out_postings(psn_no=psn_no, transfer_id=transfer, amount=balance) if balance else []
            started = uow.add(Transfer(facts=facts, postings=postings))
            if balance:
                assert account is not None
                account.debit(f"transfer:{transfer}", "transfer_out", balance)
            member.add_record(moved)
            self._mark_member_years(uow, facts, insured_elsewhere=True)
            if not facts.review_required:
                started.release(on_date=facts.requested_on, operator=AUTO_RELEASE_OPERATOR, reason=AUTO_RELEASE_REASON)
            return TransferState(facts, started.status, recorded=True)

        return self._in_transaction(work)

    @staticmethod
    def _refuse_claims_after(uow: UnitOfWork, psn_no: str, transfer_date: dt.date) -> None:
        """Claims this region settled dated on or after the transfer date would belong to the
        receiving region: correct or reverse them first."""
        for year in (transfer_date.year, transfer_date.year + 1):
            member_year = uow.get(member_year_id(psn_no, year), MemberYear)
            if member_year is None:
                continue
            later = sorted(s for s, a in member_year.applied.items() if a.setl_time >= transfer_date.isoformat())
            if later:
                raise TransferRejected(
                    f"member {psn_no} has settlements dated on or after {transfer_date} here: {', '.join(later[:5])}",
                    reason="claims_after_transfer_date",
                )

    @staticmethod
    def _mark_member_years(uow: UnitOfWork, facts: TransferFacts, *, insured_elsewhere: bool) -> None:
        """Record the transfer on the member-years it cuts (the transfer's year and the next):
        a claim of those years being settled at the same moment then fails its save on the
        version check and is settled again from fresh reads, which see the transfer."""
        year = int(facts.transfer_date[:4])
        for y in (year, year + 1):
            member_year = uow.get(member_year_id(facts.psn_no, y), MemberYear)
            if member_year is None:
                if not insured_elsewhere:
                    continue
                member_year = uow.add(MemberYear(psn_no=facts.psn_no, year=y))
            if (member_year.transferred_from is not None) != insured_elsewhere:
                member_year.record_transfer(facts.transfer_id, facts.transfer_date, insured_elsewhere=insured_elsewhere)

    def review_transfer(
        self, transfer: str, *, approve: bool, operator: str, reason: str, on_date: dt.date
    ) -> TransferState:
        """Approve (release) or reject a transfer waiting for review; a rejection returns the
        balance to the account and restores the member's record."""

        def work(uow: UnitOfWork) -> TransferState:
            pending = self._transfer(uow, transfer)
            year = int(pending.facts.transfer_date[:4])
            uow.preload(
                [account_id(pending.facts.psn_no), member_id(pending.facts.psn_no)]
                + [member_year_id(pending.facts.psn_no, y) for y in (year, year + 1)]
            )
            facts = pending.facts
            if approve:
                pending.release(on_date=on_date.isoformat(), operator=operator, reason=reason)
                return TransferState(facts, pending.status, recorded=True)
            pending.reject(on_date=on_date.isoformat(), operator=operator, reason=reason)
            if facts.balance:
                account = uow.get(account_id(facts.psn_no), IndividualAccount)
                assert account is not None
                account.credit(f"transfer:{transfer}", "transfer_rejected", facts.balance)
            member = uow.get(member_id(facts.psn_no), Member)
            assert member is not None
            before = MemberRecord.from_dict(facts.record_before)
            member.add_record(attrs.evolve(before, valid_from=dt.date.fromisoformat(facts.transfer_date)))
            self._mark_member_years(uow, facts, insured_elsewhere=False)
            return TransferState(facts, pending.status, recorded=True)

        return self._in_transaction(work)

    def complete_transfers(self, completions: list[tuple[str, str]], *, tracking: Tracking) -> list[str]:
        """The receiving region recorded these arrivals (transfer id, date): in-transit becomes
        due to that region. Returns the transfers completed now (not before)."""

        def work(uow: UnitOfWork) -> list[str]:
            uow.preload(transfer_id(t) for t, _ in completions)
            done = []
            for transfer, on_date in completions:
                released = self._transfer(uow, transfer)
                facts = released.facts
                postings = (
                    transfer_completed_postings(transfer_id=transfer, to_region=facts.to_region, amount=facts.balance)
                    if facts.balance
                    else []
                )
                if released.complete(on_date=on_date, postings=postings):
                    done.append(transfer)
            return done

        return self._tracked(work, tracking)

    def transfer(self, transfer: str) -> Transfer | None:
        return self.unit_of_work().get(transfer_id(transfer), Transfer)

    def _transfer(self, uow: UnitOfWork, transfer: str) -> Transfer:
        found = uow.get(transfer_id(transfer), Transfer)
        if found is None:
            raise TransferNotFound(f"no transfer {transfer} out of region {self.region}")
        return found

    # --- receiving side ---------------------------------------------------------------------

    def receive_transfers(self, arrivals: list[tuple[TransferFacts, str]], *, tracking: Tracking) -> list[str]:
        """Enrol each member, credit the balance and add the contribution years; returns the
        transfers received now (an arrival already recorded is not recorded again)."""

        def work(uow: UnitOfWork) -> list[str]:
            uow.preload(
                [transfer_in_id(f.transfer_id, f.from_region) for f, _ in arrivals]
                + [member_id(f.psn_no) for f, _ in arrivals]
                + [account_id(f.psn_no) for f, _ in arrivals]
                + [member_year_id(f.psn_no, int(f.transfer_date[:4]) + k) for f, _ in arrivals for k in (0, 1)]
            )
            return [f.transfer_id for f, on_date in arrivals if self._receive(uow, f, on_date)]

        return self._tracked(work, tracking)

    @staticmethod
    def _receive(uow: UnitOfWork, facts: TransferFacts, on_date: str) -> bool:
        if uow.get(transfer_in_id(facts.transfer_id, facts.from_region), TransferIn) is not None:
            return False
        member = uow.get(member_id(facts.psn_no), Member)
        if member is None:
            member = uow.add(Member(psn_no=facts.psn_no))
        member.add_record(MemberRecord.from_dict(facts.member_record))
        member.add_contribution_years(facts.contribution_years, f"transfer:{facts.transfer_id}")
        TransferCases._mark_member_years(uow, facts, insured_elsewhere=False)  # back in a region they left
        postings = []
        if facts.balance:
            account = uow.get(account_id(facts.psn_no), IndividualAccount)
            if account is None:
                account = uow.add(IndividualAccount(psn_no=facts.psn_no))
            account.credit(f"transfer:{facts.transfer_id}", "transfer_in", facts.balance)
            postings = transfer_in_postings(psn_no=facts.psn_no, from_region=facts.from_region, amount=facts.balance)
        uow.add(TransferIn(facts=facts, on_date=on_date, postings=postings))
        return True

    def transfer_in(self, transfer: str, from_region: str) -> TransferIn | None:
        return self.unit_of_work().get(transfer_in_id(transfer, from_region), TransferIn)

    # --- family mutual aid (家庭共济) ----------------------------------------------------------

    def bind_family(self, psn_no: str, *, employee: str | None, operator: str, reason: str, on_date: dt.date) -> bool:
        """Bind a member to an employee's account (or unbind, with `employee=None`); False when
        the binding is already so. It applies to the claims settled after it."""

        def work(uow: UnitOfWork) -> bool:
            member = uow.get(member_id(psn_no), Member)
            if member is None or not member.records:
                raise MemberNotFound(f"no member {psn_no} in region {self.region}")
            when = on_date.isoformat()
            if employee is None:
                return member.unbind_family(on_date=when, operator=operator, reason=reason)
            if employee == psn_no:
                raise BindingRejected("a member cannot be bound to themself", reason="bad_family_of")
            refusal = not_an_employee(employee, uow.get(member_id(employee), Member), self.region, on_date)
            if refusal is not None:
                raise BindingRejected(refusal, reason="not_an_employee")
            return member.bind_family(employee, on_date=when, operator=operator, reason=reason)

        return self._in_transaction(work)
