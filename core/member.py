"""Member: one insured person's records over time (SPEC 3.1) in one region.

A later record (later `valid_from`) is a change; the record in force at a date is the latest
with `valid_from <= date`. A record for an existing `valid_from` replaces it (a correction of
the member file), and an identical record changes nothing.

Two more facts live here. The family binding (家庭共济): the employee whose individual account
may pay for this member, changed only by `FamilyBound`/`FamilyUnbound` events that name an
operator; it applies to the claims settled after it (a binding is not back-dated). A member
file's latest record states the binding; the statement waits (`binding_pending`) until a
binding event follows that record, so a member file whose import stopped between recording a
record and binding it binds when run again. And the contribution years (缴费年限): the years
this member contributed in, here or in a region they transferred from.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs

from core.codec import aggregate_topic
from core.events import Aggregate, Created, Event
from core.ids import member_id
from core.records import MemberRecord


@attrs.frozen
class FamilyStatement:
    """A member-file line's `family_of`, to be bound once the whole file is recorded.
    `recorded`: the line recorded its record (False: the record was there already)."""

    psn_no: str
    valid_from: dt.date
    family_of: str
    recorded: bool


@aggregate_topic("Member")
class Member(Aggregate):
    class Registered(Created):
        psn_no: str

    class RecordAdded(Event):
        record: dict[str, Any]

        def apply(self, aggregate: Any) -> None:
            record = MemberRecord.from_dict(self.record)
            aggregate._put(record)
            if aggregate.records[-1] == record:
                aggregate.latest_record_version = self.originator_version

    class FamilyBound(Event):
        employee: str
        on_date: str
        operator: str
        reason: str

        def apply(self, aggregate: Any) -> None:
            aggregate.family_employee = self.employee
            aggregate.binding_version = self.originator_version

    class FamilyUnbound(Event):
        employee: str
        on_date: str
        operator: str
        reason: str

        def apply(self, aggregate: Any) -> None:
            aggregate.family_employee = None
            aggregate.binding_version = self.originator_version

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
        self.latest_record_version = 0  # the version that recorded the latest record
        self.binding_version = 0  # the version of the last FamilyBound or FamilyUnbound
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

    @property
    def binding_pending(self) -> bool:
        """No binding event has followed the latest record: what it states about the binding
        (its `family_of`) is still to be applied, and no operator has decided otherwise since."""
        return self.binding_version < self.latest_record_version

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

    def record_from(self, valid_from: dt.date) -> MemberRecord | None:
        """The record whose `valid_from` is exactly this date."""
        return next((r for r in self.records if r.valid_from == valid_from), None)

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


def not_an_employee(employee: str, holder: Member | None, region: str, on: dt.date) -> str | None:
    """Why `employee` (whose Member is `holder`) cannot lend their account to a member of `region`
    from `on`, or None: the account holder must be an employee (310) insured here on that date
    (SPEC 3.1 `family_of`, and `family bind`)."""
    held = holder.record_at(on) if holder is not None else None
    if held is None or held.insutype != "310" or held.insuplc_admdvs != region:
        return f"{employee} is not an employee insured in region {region} on {on.isoformat()}"
    return None


def no_record_on(member: Member | None, on: dt.date) -> tuple[str, str | None]:
    """The rejection (reason, detail) of what is dated `on`, when `member` has no record in force
    then: `unknown_member` when they have no record at all, else `no_member_record_on_date`."""
    if member is None or not member.records:
        return "unknown_member", None
    first = member.records[0].valid_from.isoformat()
    return (
        "no_member_record_on_date",
        f"member {member.psn_no} has no record on {on.isoformat()}: the first is valid from {first}",
    )
