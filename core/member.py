"""Member: one insured person's records over time (SPEC 3.1) in one region.

A later record (later `valid_from`) is a change; the record in force at a date is the latest
with `valid_from <= date`. A record for an existing `valid_from` replaces it (a correction of
the member file), and an identical record changes nothing.

Two more facts live here. The family binding (家庭共济): the employee whose individual account
may pay for this member, changed only by `FamilyBound`/`FamilyUnbound` events that name an
operator; it applies to the claims settled after it (a binding is not back-dated). And the
contribution years (缴费年限): the years this member contributed in, here or in a region they
transferred from.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from eventsourcing.domain import Aggregate

from core.codec import aggregate_topic
from core.events import Created, Event
from core.ids import member_id
from core.records import MemberRecord


@aggregate_topic("Member")
class Member(Aggregate):
    class Registered(Created):
        psn_no: str

    class RecordAdded(Event):
        record: dict[str, Any]

        def apply(self, aggregate: Any) -> None:
            aggregate._put(MemberRecord.from_dict(self.record))

    class FamilyBound(Event):
        employee: str
        on_date: str
        operator: str
        reason: str

        def apply(self, aggregate: Any) -> None:
            aggregate.family_employee = self.employee

    class FamilyUnbound(Event):
        employee: str
        on_date: str
        operator: str
        reason: str

        def apply(self, aggregate: Any) -> None:
            aggregate.family_employee = None

    class ContributionYearsAdded(Event):
        years: list[int]
        source: str  # "contribution:<id>" or "transfer:<id>"

        def apply(self, aggregate: Any) -> None:
            aggregate.contribution_years.update(self.years)

    @staticmethod
    def create_id(psn_no: str) -> Any:
        return member_id(psn_no)

    def __init__(self, psn_no: str) -> None:
        self.psn_no = psn_no
        self.records: list[MemberRecord] = []  # sorted by valid_from
        self.family_employee: str | None = None
        self.contribution_years: set[int] = set()

    def bind_family(self, employee: str, *, on_date: str, operator: str, reason: str) -> bool:
        """Bind to an employee's account; False when already bound to that employee."""
        if employee == self.psn_no:
            raise AssertionError("a member cannot be bound to themself")
        if self.family_employee == employee:
            return False
        self.trigger_event(self.FamilyBound, employee=employee, on_date=on_date, operator=operator, reason=reason)
        return True

    def unbind_family(self, *, on_date: str, operator: str, reason: str) -> bool:
        if self.family_employee is None:
            return False
        self.trigger_event(
            self.FamilyUnbound, employee=self.family_employee, on_date=on_date, operator=operator, reason=reason
        )
        return True

    def add_contribution_years(self, years: list[int], source: str) -> None:
        new = sorted(set(years) - self.contribution_years)
        if new:
            self.trigger_event(self.ContributionYearsAdded, years=new, source=source)

    def add_record(self, record: MemberRecord) -> bool:
        """Record a member-file line; False when it is already recorded exactly."""
        if record.psn_no != self.psn_no:
            raise AssertionError("record for another member")
        if record in self.records:
            return False
        self.trigger_event(self.RecordAdded, record=record.to_dict())
        return True

    def _put(self, record: MemberRecord) -> None:
        self.records = [r for r in self.records if r.valid_from != record.valid_from]
        self.records.append(record)
        self.records.sort(key=lambda r: r.valid_from)

    def schemes_during(self, region: str, year: int) -> set[str]:
        """The schemes (insutype) of the records that placed this member in `region` at some
        time in `year`: the record in force on 1 January and those taking effect later that year."""
        start = dt.date(year, 1, 1)
        later = [r for r in self.records if start < r.valid_from and r.valid_from.year == year]
        in_force = [self.record_at(start), *later]
        return {r.insutype for r in in_force if r is not None and r.insuplc_admdvs == region}

    def record_at(self, date: dt.date) -> MemberRecord | None:
        in_force = None
        for record in self.records:
            if record.valid_from <= date:
                in_force = record
        return in_force
