"""The lean events of projections/event_rows.py build the rows the library's domain events build.

Each handled topic has a sample stored state, as core.codec.EventMapper writes it. It is decoded
both ways, through the mapper into a domain event and lean into a struct, and both are handed to
the read model's handlers in memory (no database): the pages of rows must be equal.
"""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
import pytest
from eventsourcing.persistence import StoredEvent, Tracking

from core.codec import EventMapper
from projections.event_rows import LEAN_TYPES, Amounts, Usage
from projections.read_model import (
    SETTLEMENT_COLUMNS,
    USAGE_COLUMNS,
    InvalidEvent,
    Page,
    RegionReadModel,
    project,
    read_model_topics,
)

NAME = "region_330109"
PAID = [["390100", "benefit_expense", "", 1500], ["390100", "payable_to_hospitals", "H001", -1500]]
UNPAID = [[fund, account, party, -amount] for fund, account, party, amount in PAID]
SHIFTED = [
    ["390100", "transfer_expense", "390200", 1500], ["390100", "bank", "", -1500],
    ["390200", "bank", "", 1500], ["390200", "transfer_income", "390100", -1500],
]  # fmt: skip
MOVED = [["310200", "individual_accounts", "T-1", 50000], ["310200", "in_transit", "", -50000]]
AMOUNTS = {
    "medfee_sumamt": 2000, "hifp_pay": 1500, "hifmi_pay": 0, "maf_pay": 0, "hmb_pay": 0, "charity_pay": 0,
    "psn_part_amt": 500, "acct_pay": 0, "acct_mulaid_pay": 0, "psn_cash_pay": 500, "fund_pay_sumamt": 1500,
    "inscp_scp_amt": 2000, "act_pay_dedc": 0,
}  # fmt: skip
DELTA = {
    "basic_paid": 1500, "basic_outpatient_paid": 0, "basic_deductible_used": {"21": 300}, "serious_illness_base": 0,
    "serious_illness_paid": 0, "assistance_paid": 0, "assistance_outpatient_paid": 0,
    "assistance_deductible_used": 0, "supplementary_paid": 0, "supplementary_deductible_used": 0,
    "supplementary_oor_deductible_used": 0, "out_of_pocket": 500, "charity_paid": 0,
}  # fmt: skip


def settlement_facts(version: int, posted_on: str, lookback_maf: int = 0) -> dict[str, Any]:
    return {
        "setl_id": "S-1", "version": version, "psn_no": "M-1", "region": "330109", "year": 2023,
        "insutype": "390", "assist_category": "dibao",
        "claim": {"setl_id": "S-1", "setl_time": "2023-02-01", "fixmedins_code": "H001", "med_type": "21"},
        "content_hash": "c0", "policy_hash": "p0", "amounts": AMOUNTS, "charity_referral": False,
        "breakdown": {"basic": {"pay": 1500}}, "delta": DELTA, "account_psn": None, "operator": None,
        "reason": None, "origin": "f0:1", "postings": PAID, "posted_on": posted_on,
        "left_to_person": {"policy": 500}, "lookback_maf": lookback_maf,
    }  # fmt: skip


TRANSFER_FACTS = {
    "transfer_id": "TR-1", "psn_no": "T-1", "from_region": "330109", "to_region": "330110",
    "transfer_date": "2023-07-01", "balance": 50000, "contribution_years": [2021, 2022, 2023],
    "member_record": {"psn_no": "T-1"}, "record_before": {"psn_no": "T-1"}, "operator": "clerk-1",
    "requested_on": "2023-06-20",
}  # fmt: skip
WHO = {"operator": "op-1", "reason": "checked"}

# One stored state a topic, in an order that makes sense as a log (ids from 1): a reversal, a
# look-back and transfer steps find the rows they change in the same page.
SAMPLES: dict[str, dict[str, Any]] = {
    "Contribution.Received": {
        "originator_topic": "Contribution", "content_hash": "c1", "postings": UNPAID,
        "contribution": {"contrib_id": "C-1", "psn_no": "M-1", "fund": "390100", "paid_date": "2023-01-10"},
    },
    "Settlement.Settled": {"originator_topic": "Settlement", "facts": settlement_facts(1, "2023-02-01")},
    "MemberYear.ClaimApplied": {
        "psn_no": "M-1", "year": 2023, "setl_id": "S-1", "setl_version": 1, "setl_time": "2023-02-01", "delta": DELTA
    },
    "Settlement.AssistanceLookedBack": {
        "setl_id": "S-1", "setl_version": 1, "amount": 1500, "recognised_on": "2023-06-01", "breakdown": {},
        "postings": PAID,
    },
    "MemberYear.AssistanceLookedBack": {
        "psn_no": "M-1", "year": 2023, "setl_id": "S-1", "delta": {"assistance_paid": 300}
    },
    "Settlement.Reversed": {"setl_id": "S-1", "setl_version": 1, "on_date": "2023-03-20", "postings": UNPAID, **WHO},
    "MemberYear.ClaimReversed": {"psn_no": "M-1", "year": 2023, "setl_id": "S-1", "setl_version": 1, "delta": DELTA},
    "Settlement.Resettled": {"facts": settlement_facts(2, "2023-03-25", lookback_maf=1500)},
    "HospitalAccount.Paid": {
        "payment_id": "PAY-1", "through": "2023-03-31", "paid_on": "2023-03-31", "amounts": {"390100": 1500},
        "operator": "fin-1", "postings": PAID,
    },
    "HospitalAccount.Deducted": {
        "deduction_id": "DED-1", "setl_id": "S-1", "fund": "390100", "kind": "reduce", "amount": 1500,
        "after_payment": True, "on_date": "2023-05-01", "postings": UNPAID, **WHO,
    },
    "HospitalAccount.Recovered": {
        "recovery_id": "REC-1", "fund": "390100", "amount": 1500, "on_date": "2023-06-01", "operator": "fin-1",
        "postings": PAID,
    },
    "HospitalAccount.Fined": {
        "fine_id": "FINE-1", "fund": "390100", "amount": 1500, "on_date": "2023-07-01", "postings": PAID, **WHO
    },
    "HospitalAccount.BudgetSettled": {
        "year": 2023, "outcome": {"budget": 9000, "used": 8000, "kept": 500, "borne_by_hospital": 0},
        "on_date": "2024-01-20", "operator": "fin-1", "postings": UNPAID,
    },
    "HospitalAccount.RemoteSettled": {
        "insured_in": "330110", "setl_id": "S-9", "setl_version": 1, "amounts": {"390100": 1500},
        "posted_on": "2023-07-02", "postings": UNPAID,
    },
    "HospitalAccount.RemoteReversed": {
        "insured_in": "330110", "setl_id": "S-9", "setl_version": 1, "owed_back": {}, "on_date": "2023-07-03",
        "postings": PAID,
    },
    "RegionClearings.Cleared": {
        "region": "330109", "other": "330110", "clearing": "330109-330110-2023-07-1", "decided_in": "330109",
        "month": "2023-07", "through": "2023-07-31", "owed_to": {}, "owed_by": {"390100": 1500},
        "on_date": "2023-08-02", "operator": "fin-1", "postings": UNPAID,
    },
    "MaternityAllowance.Granted": {
        "originator_topic": "MaternityAllowance", "amount": 9800, "postings": UNPAID,
        "facts": {"allowance_id": "MA-1", "psn_no": "M-1", "days": 98, "daily_wage": 100, "on_date": "2023-06-01",
                  "operator": "op-1"},
    },
    "MaternityAllowance.Reversed": {
        "allowance_id": "MA-1", "on_date": "2023-06-02", "operator": "op-1", "reason": "wrong wage", "postings": PAID,
    },
    "MemberPayables.Paid": {
        "payment_id": "MP-1", "through": "2023-12-31", "paid_on": "2023-12-31", "amounts": {"M-1": {"390100": 1500}},
        "operator": "fin-1", "position": 5, "postings": PAID,
    },
    "FundEntry.Recorded": {
        "originator_topic": "FundEntry", "postings": SHIFTED,
        "entry": {"kind": "fund_transfer", "entry_id": "SI-330109-2023-390", "fund": "390100", "to_fund": "390200",
                  "amount": 1500, "on_date": "2023-01-31", "reason": "大病保险筹资划转", "operator": "fin-1"},
    },
    "Transfer.Started": {"originator_topic": "Transfer", "facts": TRANSFER_FACTS, "postings": MOVED},
    "Transfer.Released": {"transfer_id": "TR-1", "on_date": "2023-06-21", **WHO},
    "Transfer.Rejected": {"transfer_id": "TR-1", "on_date": "2023-06-21", "postings": MOVED, **WHO},
    "Transfer.Completed": {"transfer_id": "TR-1", "on_date": "2023-06-22", "postings": MOVED},
    "TransferIn.Received": {"originator_topic": "TransferIn", "facts": TRANSFER_FACTS, "on_date": "2023-06-22",
                            "postings": MOVED},
}  # fmt: skip
TIMESTAMP = "2023-07-03T08:00:00.000001Z"


def stored(topic: str, state: dict[str, Any]) -> StoredEvent:
    return StoredEvent(uuid.uuid4(), 1, topic, msgspec.json.encode({**state, "timestamp": TIMESTAMP}))


def through_the_mapper(events: list[tuple[int, StoredEvent]]) -> Page:
    projection = RegionReadModel(view=None)  # type: ignore[arg-type]  # rows in memory only
    mapper = EventMapper()
    for notification_id, event in events:
        projection.handle(mapper.to_domain_event(event), Tracking(NAME, notification_id))
    return projection.page


def lean(events: list[tuple[int, StoredEvent]]) -> Page:
    projection = RegionReadModel(view=None)  # type: ignore[arg-type]
    project(projection, NAME, [(notification_id, event.topic, event.state) for notification_id, event in events])
    return projection.page


def test_every_topic_the_read_model_handles_has_a_lean_struct_and_a_sample() -> None:
    assert sorted(LEAN_TYPES) == read_model_topics()
    assert sorted(SAMPLES) == read_model_topics()


def test_the_lean_structs_taken_in_field_order_list_their_columns_in_order() -> None:
    assert Usage.__struct_fields__ == USAGE_COLUMNS
    assert Amounts.__struct_fields__ == SETTLEMENT_COLUMNS[SETTLEMENT_COLUMNS.index("medfee_sumamt") : -1]
    assert SETTLEMENT_COLUMNS[-1] == "lookback_maf"


def assert_same_fields(lean_event: msgspec.Struct, domain_event: Any, path: str) -> None:
    """Each field of the lean struct is the domain event's, or the value under its name where the
    domain event holds a dict (a settlement's claim and amounts, a member-year's delta: a key the
    dict lacks is the lean field's default)."""
    fields = lean_event.__struct_fields__
    with_default = fields[len(fields) - len(lean_event.__struct_defaults__) :]
    defaults = dict(zip(with_default, lean_event.__struct_defaults__, strict=True))
    for name in fields:
        mine = getattr(lean_event, name)
        if isinstance(domain_event, dict):
            theirs = domain_event[name] if name in domain_event else defaults[name]
        else:
            theirs = getattr(domain_event, name)
        if isinstance(mine, msgspec.Struct) and type(mine).__module__ == "projections.event_rows":
            assert_same_fields(mine, theirs, f"{path}.{name}")
        else:
            assert (mine, type(mine)) == (theirs, type(theirs)), f"{path}.{name}"


@pytest.mark.parametrize("topic", sorted(SAMPLES))
def test_a_lean_event_holds_what_the_handlers_read_as_the_domain_event_does(topic: str) -> None:
    event = stored(topic, SAMPLES[topic])
    assert_same_fields(
        msgspec.json.decode(event.state, type=LEAN_TYPES[topic]), EventMapper().to_domain_event(event), topic
    )


@pytest.mark.parametrize("topic", sorted(SAMPLES))
def test_a_lean_event_builds_the_rows_its_domain_event_builds(topic: str) -> None:
    events = [(7, stored(topic, SAMPLES[topic]))]
    page = lean(events)
    assert page != Page()
    assert page == through_the_mapper(events)


def test_a_log_of_every_topic_builds_the_same_page_either_way() -> None:
    events = [(n, stored(topic, state)) for n, (topic, state) in enumerate(SAMPLES.items(), 1)]
    page = lean(events)
    assert page == through_the_mapper(events)
    assert page.settlements["S-1"][1:3] == (2, "settled") and page.settlements["S-1"][-1] == 1500
    assert {key: row[8] for key, row in page.transfers.items()} == {
        ("TR-1", "out", ""): "completed", ("TR-1", "in", "330109"): "received"
    }  # fmt: skip


@pytest.mark.parametrize("amount", ["1500", 15.0, True, None])
def test_a_member_year_delta_that_is_not_fen_is_an_invalid_event_either_way(amount: Any) -> None:
    events = [
        (3, stored("MemberYear.ClaimApplied", {**SAMPLES["MemberYear.ClaimApplied"], "delta": {"basic_paid": amount}}))
    ]
    with pytest.raises(InvalidEvent) as from_domain:
        through_the_mapper(events)
    with pytest.raises(InvalidEvent) as from_lean:
        lean(events)
    assert str(from_lean.value) == str(from_domain.value)
    assert "basic_paid is not an amount in fen" in str(from_lean.value)


@pytest.mark.parametrize(
    ("topic", "state"),
    [
        ("HospitalAccount.Recovered", b"{not json"),
        ("Settlement.AssistanceLookedBack", {**SAMPLES["Settlement.AssistanceLookedBack"], "amount": "1500"}),
        ("Settlement.Reversed", {k: v for k, v in SAMPLES["Settlement.Reversed"].items() if k != "postings"}),
        ("Transfer.Started", {**SAMPLES["Transfer.Started"], "postings": [["310200", "in_transit", "", 1.5]]}),
    ],
)
def test_a_stored_state_that_does_not_decode_is_an_invalid_event_naming_its_position(
    topic: str, state: bytes | dict[str, Any]
) -> None:
    data = state if isinstance(state, bytes) else stored(topic, state).state
    with pytest.raises(InvalidEvent, match=rf"^event at position 9 \({topic}\) does not decode: "):
        lean([(9, StoredEvent(uuid.uuid4(), 1, topic, data))])
