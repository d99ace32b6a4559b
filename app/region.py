"""RegionApplication: the use cases of one pooling region, as an eventsourcing application.

It is independent of the database: `store.app` gives it a PostgreSQL recorder over the region's
own schema. Each CLI command calls one method here; each kind of use case is a module of `app/`
on `app.base.RegionBase`: `member_cases`, `contribution_cases`, `settlement_cases`,
`approval_cases`, `finance_cases`, `member_payment_cases`, `maternity_cases`, `budget_cases`,
`reconciliation_cases`, `remote_care_cases`, `institution_cases`, `transfer_cases`. Batch methods load every aggregate
they need in bulk, decide in memory, and save all changes in one transaction; a concurrent
writer makes the save fail on a version constraint and the batch is recomputed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from eventsourcing.application import AggregateNotFoundError

from app.approval_cases import ApprovalCases
from app.budget_cases import BudgetCases
from app.contribution_cases import ContributionCases
from app.institution_cases import InstitutionCases
from app.maternity_cases import MaternityCases
from app.member_payment_cases import MemberPaymentCases
from app.reconciliation_cases import ReconciliationCases
from app.remote_care_cases import RemoteCareCases
from app.transfer_cases import TransferCases
from core.account import IndividualAccount
from core.codec import topic_of
from core.hospital import (
    HospitalAccount,
)
from core.ids import (
    account_id,
    hospital_id,
    member_id,
    member_year_id,
)
from core.member import Member
from core.member_year import MemberYear
from core.records import MemberRecord
from core.tiers import YearToDate


class RegionApplication(
    ApprovalCases,
    MemberPaymentCases,
    MaternityCases,
    BudgetCases,
    ContributionCases,
    ReconciliationCases,
    RemoteCareCases,
    InstitutionCases,
    TransferCases,
):
    def hospital_account(self, code: str) -> HospitalAccount | None:
        try:
            return self.repository.get(hospital_id(code))
        except AggregateNotFoundError:
            return None

    def member_year(self, psn_no: str, year: int) -> MemberYear | None:
        """From its latest snapshot and the events after it (core.snapshot)."""
        return self.unit_of_work().get(member_year_id(psn_no, year), MemberYear)

    def member(self, psn_no: str) -> Member | None:
        try:
            return self.repository.get(member_id(psn_no))
        except AggregateNotFoundError:
            return None

    def account_balance(self, psn_no: str) -> int:
        try:
            account: IndividualAccount = self.repository.get(account_id(psn_no))
        except AggregateNotFoundError:
            return 0
        return account.balance

    def members_at(self, psn_nos: Sequence[str], dates: Sequence[dt.date]) -> list[MemberRecord | None]:
        """The record in force for each (psn_no, date) pair, from one bulk read (members read
        before are only brought up to date: routing asks for the same members batch after batch)."""
        uow = self.unit_of_work(reuse_kept=True)
        uow.preload(member_id(p) for p in psn_nos)
        out = []
        for psn_no, date in zip(psn_nos, dates, strict=True):
            member = uow.get(member_id(psn_no), Member)
            out.append(member.record_at(date) if member else None)
        return out

    def member_histories(self, psn_nos: Sequence[str]) -> list[list[MemberRecord]]:
        """Each member's records in this region (sorted by valid_from; empty when unknown), from
        one bulk read."""
        uow = self.unit_of_work(reuse_kept=True)
        uow.preload(member_id(p) for p in psn_nos)
        members = (uow.get(member_id(p), Member) for p in psn_nos)
        return [list(member.records) if member else [] for member in members]

    def family_accounts(self) -> dict[str, str]:
        """Every member whose claims the account of another (a bound employee, 家庭共济) pays
        for: psn_no -> the employee's psn_no, as of now."""
        ids = self.region_log.select_originators_of([topic_of(Member.FamilyBound), topic_of(Member.FamilyUnbound)])
        uow = self.unit_of_work()
        uow.preload(ids)
        bound = {}
        for aggregate_id in ids:
            member = uow.get(aggregate_id, Member)
            if member is not None and member.family_employee:
                bound[member.psn_no] = member.family_employee
        return bound

    def usage(self, psn_no: str, year: int) -> YearToDate:
        member_year = self.member_year(psn_no, year)
        return member_year.ytd if member_year else YearToDate()
