"""The member's pure rules behind member files in any order: when the latest record's binding
still waits, who may lend an account; and what a date before the first record is called."""

from __future__ import annotations

import datetime as dt

import attrs

from core.member import Member, no_record_on, not_an_employee
from core.records import MemberRecord

JAN, APR, JUL = dt.date(2023, 1, 1), dt.date(2023, 4, 1), dt.date(2023, 7, 1)
RECORD = MemberRecord(
    psn_no="K", insuplc_admdvs="330109", insutype="390", assist_category="none", chronic=False,
    supplementary=(), valid_from=APR, family_of="E",
)  # fmt: skip


def member(psn_no: str, *records: MemberRecord) -> Member:
    new = Member(psn_no=psn_no)
    for record in records:
        new.add_record(attrs.evolve(record, psn_no=psn_no))
    return new


def test_the_latest_records_binding_waits_until_a_binding_event_follows_it() -> None:
    kid = member("K", RECORD)
    assert kid.binding_pending
    kid.bind_family("E", on_date="2023-04-01", operator="member-file", reason="r")
    assert not kid.binding_pending
    kid.add_record(attrs.evolve(RECORD, valid_from=JAN))  # an earlier record states nothing new
    assert not kid.binding_pending
    kid.add_record(attrs.evolve(RECORD, valid_from=JUL, family_of=None))  # a later one does
    assert kid.binding_pending
    kid.add_record(attrs.evolve(RECORD, valid_from=JUL, family_of="E2"))  # so does its correction
    kid.unbind_family(on_date="2023-07-01", operator="clerk", reason="r")
    assert not kid.binding_pending


def test_only_an_employee_insured_in_the_region_on_the_date_may_lend_an_account() -> None:
    employee = member("E", attrs.evolve(RECORD, insutype="390", family_of=None, valid_from=JAN),
                      attrs.evolve(RECORD, insutype="310", family_of=None, valid_from=APR))  # fmt: skip
    assert not_an_employee("E", employee, "330109", APR) is None
    assert (
        not_an_employee("E", employee, "330109", JAN) == "E is not an employee insured in region 330109 on 2023-01-01"
    )
    assert not_an_employee("E", employee, "330110", APR) is not None
    assert not_an_employee("E", None, "330109", APR) == "E is not an employee insured in region 330109 on 2023-04-01"


def test_a_date_before_the_first_record_is_named_and_a_member_without_records_is_unknown() -> None:
    assert no_record_on(member("K", RECORD), JAN) == (
        "no_member_record_on_date",
        "member K has no record on 2023-01-01: the first is valid from 2023-04-01",
    )
    assert no_record_on(member("K"), JAN) == ("unknown_member", None)
    assert no_record_on(None, JAN) == ("unknown_member", None)
