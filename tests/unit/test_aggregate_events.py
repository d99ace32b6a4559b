"""core.events.Aggregate makes its events without their dataclass __init__: the same events."""

from __future__ import annotations

from typing import Any

import pytest

from core.account import IndividualAccount
from core.events import _new_event
from core.ids import settlement_id
from core.member_year import MemberYear
from core.settlement import Settlement


def _made_by_init(event: Any) -> Any:
    """The event its class's own __init__ makes from the same fields."""
    return type(event)(**vars(event))


def test_a_new_aggregate_and_its_next_events_are_what_the_dataclass_init_makes() -> None:
    member_year = MemberYear(psn_no="P1", year=2023)
    member_year.apply_claim("S1", 1, "2023-03-01", {"basic_paid": 12000, "out_of_pocket": 0})
    member_year.record_transfer("T1", "2023-04-01", insured_elsewhere=True)
    opened, applied, transferred = member_year.pending_events

    assert [e.originator_version for e in (opened, applied, transferred)] == [1, 2, 3]
    assert {opened.originator_id, applied.originator_id} == {member_year.id}
    assert applied.delta == {"basic_paid": 12000}  # zero amounts left out
    for event in (opened, applied, transferred):
        assert vars(event) == vars(_made_by_init(event))
    assert member_year.version == 3 and member_year.transferred_from == "2023-04-01"


def test_a_field_left_out_takes_its_default_as_the_init_gives_it() -> None:
    given = {"setl_id": "S1", "setl_version": 1, "operator": "op", "reason": "r", "on_date": "2023-05-01",
             "postings": []}  # fmt: skip
    envelope = {"originator_id": settlement_id("S1"), "originator_version": 2}
    made = _new_event(Settlement.Reversed, given, envelope)
    assert made.approved_by is None and "approved_by" in vars(made)  # stored with the event, as before
    assert vars(made) == vars(_made_by_init(made))


def test_a_wrong_argument_is_refused_by_the_event_class_itself() -> None:
    account = IndividualAccount(psn_no="P1")
    with pytest.raises(TypeError, match="unexpected keyword argument 'amount_yuan'"):
        account.trigger_event(IndividualAccount.Debited, ref="r", kind="settlement", amount_yuan=1)
    with pytest.raises(TypeError, match="missing"):
        account.trigger_event(IndividualAccount.Debited, ref="r")
    assert len(account.pending_events) == 1  # only its creation
