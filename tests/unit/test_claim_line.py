"""A claim line in the plain shape is read in one step, with the general path's answer for every line."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.claim_line import _plain_claim, claim_of_line
from core.records import Claim, CutLine, RecordRejected, decode_line, parse_claim
from tests.unit.test_records import CLAIM, CLAIM_PARSED, claim_line, json_values

EVERY_FIELD: dict[str, Any] = {
    **CLAIM,
    "setl_time": "2023-03-02 23:59:59",
    "use_acct": False,
    "mdtrt_id": "V-9",
    "medins_setl_id": "M.1:2/3_4",
    "payee": "member",
    "mdtrtarea_admvs": "110105",
}


def general(raw: bytes) -> Claim | tuple[str | None, str]:
    """What the general path answers: the claim, or the rejection's reason and message."""
    try:
        return parse_claim(decode_line(raw))
    except RecordRejected as exc:
        return exc.reason, str(exc)


def answer(raw: bytes) -> Claim | tuple[str | None, str]:
    try:
        return claim_of_line(raw)
    except RecordRejected as exc:
        return exc.reason, str(exc)


def test_a_plain_line_is_read_on_the_plain_path_into_the_general_paths_claim() -> None:
    assert _plain_claim(claim_line()) == parse_claim(decode_line(claim_line())) == claim_of_line(claim_line())
    assert _plain_claim(claim_line()) == CLAIM_PARSED


def test_every_optional_field_is_read_on_the_plain_path_as_the_general_path_reads_it() -> None:
    raw = json.dumps(EVERY_FIELD).encode()
    claim = _plain_claim(raw)
    assert claim is not None and claim == parse_claim(decode_line(raw))
    assert (claim.setl_clock, claim.use_acct, claim.payee, claim.mdtrtarea_admvs) == (
        "23:59:59",
        False,
        "member",
        "110105",
    )
    hospital = _plain_claim(claim_line(payee="hospital"))
    assert hospital is not None and hospital.payee is None


@pytest.mark.parametrize(
    "changes",
    [
        {"hosp_lv": "2"},  # accepted, by the general path
        {"medfee_sumamt": 96000.10},
        {"overlmt_selfpay": "0.1"},
        {"medfee_sumamt": "96000.11"},  # does not add up
        {"medfee_sumamt": "10000000000.01", "inscp_scp_amt": "9999993999.91"},  # adds up, above the largest
        {"setl_time": "2023-02-30"},
        {"setl_time": "2023-03-02 24:00:00"},
        {"setl_time": "2023-03-02 10:00:00.5"},  # the time's own parser takes these two
        {"setl_time": "2023-03-02 10:00:00:00"},
        {"setl_time": "2023-03-02\n"},
        {"payee": None},
        {"payee": "bank"},
        {"use_acct": None},
        {"mdtrtarea_admvs": None},
        {"mdtrtarea_admvs": ""},
        {"mdtrt_id": ""},
        {"med_type": "99"},
        {"hosp_lv": True},
        {"psn_no": "P-A\n"},
        {"comment": "x"},
    ],
)
def test_any_other_line_is_left_to_the_general_path_and_gets_its_answer(changes: dict[str, Any]) -> None:
    raw = claim_line(**changes)
    assert _plain_claim(raw) is None
    assert answer(raw) == general(raw)


def test_an_amount_above_the_largest_is_named_though_the_parts_add_up() -> None:
    raw = claim_line(medfee_sumamt="10000000000.01", inscp_scp_amt="9999993999.91")
    assert answer(raw)[0] == "amount_too_large"  # type: ignore[index]


def test_a_cut_line_and_a_line_too_long_are_left_to_the_general_path() -> None:
    cut = CutLine(claim_line(), 70_000)
    assert answer(cut) == general(cut) == ("line_too_long", "line of 70000 bytes exceeds 65536")
    padded = claim_line()[:-1] + b" " * 65_536 + b"}"
    assert answer(padded) == general(padded)


def test_a_repeated_field_counts_with_its_last_value_on_both_paths() -> None:
    raw = claim_line()[:-1] + b', "psn_no": "P-B"}'
    claim = claim_of_line(raw)
    assert claim.psn_no == "P-B" and claim == general(raw)


plain_values = st.sampled_from(
    [
        "S-1", "P-A", "x" * 64, "x" * 65, "0.00", "1.00", "96000.10", "6000.00", "0.10", "90000.00",
        "999999999999999.99", "10000000000.00", "1.5", "1.005", "2023-01-31", "2023-03-02 10:00:00",
        "2023-03-02 29:00:00", "2023-03-02\n", "330100", "33010", "member", "hospital", "11", "14", "21",
        "41", "51", "52", "3", "", 1, 2, 3, 4, 0, True, False, None,
    ]
)  # fmt: skip
names = st.sampled_from([*EVERY_FIELD, "other"])


def near_misses(name: str) -> st.SearchStrategy[Any]:
    """A field's own value with something after it or cut short, nothing, another plain value, or any JSON value."""
    own = str(EVERY_FIELD.get(name, "x"))
    ends = st.sampled_from(["\n", " ", ".5", "0", "x", ":00", "\u00b2"])
    return (
        st.builds(str.__add__, st.just(own), ends)
        | st.sampled_from(["", own[:-1], own.upper()])
        | plain_values
        | json_values
    )


@settings(max_examples=1000, deadline=None)
@given(st.lists(names.flatmap(lambda name: st.tuples(st.just(name), near_misses(name))), max_size=4), st.booleans())
def test_every_line_gets_the_general_paths_answer(changes: list[tuple[str, Any]], every_field: bool) -> None:
    pairs = [*(EVERY_FIELD if every_field else CLAIM).items(), *changes]  # a name given again: repeated
    raw = ("{" + ", ".join(f"{json.dumps(k)}: {json.dumps(v, default=str)}" for k, v in pairs) + "}").encode()
    assert answer(raw) == general(raw)
