"""Fuzzing the parsers of policy, member and contribution files: every input either parses or is
refused with a named error — never another exception."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.policy import PolicyError, parse_policy
from core.records import RecordRejected, decode_line, parse_contribution, parse_member
from tests.conftest import EXAMPLES

EXAMPLE_POLICY = (EXAMPLES / "policy-330109-2023.toml").read_bytes()

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.text(max_size=12), st.sampled_from(["none", "1.005", "-3.00", "NaN"])
)


def parses_or_is_refused_by_name(raw: bytes) -> None:
    try:
        parse_policy(raw)
    except PolicyError as exc:
        assert exc.reason == "invalid_policy" and str(exc)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400))
def test_arbitrary_bytes_as_a_policy_are_parsed_or_refused_by_name(raw: bytes) -> None:
    parses_or_is_refused_by_name(raw)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_the_example_policy_with_one_value_replaced_is_parsed_or_refused_by_name(data: st.DataObject) -> None:
    lines = EXAMPLE_POLICY.decode().splitlines()
    candidates = [i for i, line in enumerate(lines) if "=" in line and not line.lstrip().startswith("#")]
    index = data.draw(st.sampled_from(candidates))
    key = lines[index].split("=", 1)[0]
    value = data.draw(scalars)
    lines[index] = f"{key}= {json.dumps(value)}" if value is not None else f"{key}= "
    parses_or_is_refused_by_name("\n".join(lines).encode())


member_fields = st.fixed_dictionaries(
    {},
    optional={
        "psn_no": scalars,
        "insuplc_admdvs": scalars,
        "insutype": st.one_of(scalars, st.sampled_from(["310", "390"])),
        "assist_category": scalars,
        "chronic": scalars,
        "supplementary": st.one_of(scalars, st.lists(scalars)),
        "valid_from": st.one_of(scalars, st.dates().map(str)),
        "family_of": scalars,
        "extra": scalars,
    },
)


@settings(max_examples=400, deadline=None)
@given(member_fields)
def test_arbitrary_member_lines_are_parsed_or_rejected_by_name(fields: dict[str, object]) -> None:
    try:
        parse_member(decode_line(json.dumps(fields).encode()))
    except RecordRejected as exc:
        assert exc.reason and str(exc)


@settings(max_examples=400, deadline=None)
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "contrib_id": scalars,
            "psn_no": scalars,
            "fund": st.one_of(scalars, st.sampled_from(["310100", "HMB"])),
            "paid_date": st.one_of(scalars, st.dates().map(str)),
            "amount": scalars,
            "acct_amount": scalars,
        },
    )
)
def test_arbitrary_contribution_lines_are_parsed_or_rejected_by_name(fields: dict[str, object]) -> None:
    try:
        contribution = parse_contribution(decode_line(json.dumps(fields).encode()))
    except RecordRejected as exc:
        assert exc.reason and str(exc)
    else:
        assert 0 <= contribution.acct_amount <= contribution.amount
