"""Input records (SPEC 3): every line either parses into exact fen or is rejected with a named reason."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import attrs
import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.records import (
    LINE_BYTES_MAX,
    Claim,
    Contribution,
    MemberRecord,
    RecordRejected,
    claim_ids,
    decode_line,
    parse_claim,
    parse_contribution,
    parse_member,
)

CLAIM: dict[str, Any] = {
    "setl_id": "S-0001",
    "psn_no": "P-A",
    "fixmedins_code": "H001",
    "hosp_lv": 3,
    "med_type": "21",
    "setl_time": "2023-03-02",
    "medfee_sumamt": "96000.10",
    "fulamt_ownpay_amt": "6000.00",
    "overlmt_selfpay": "0.10",
    "preselfpay_amt": "0.00",
    "inscp_scp_amt": "90000.00",
}
CLAIM_PARSED = Claim(  # CLAIM, read
    setl_id="S-0001",
    psn_no="P-A",
    fixmedins_code="H001",
    hosp_lv=3,
    med_type="21",
    setl_time=dt.date(2023, 3, 2),
    medfee_sumamt=9_600_010,
    fulamt_ownpay_amt=600_000,
    overlmt_selfpay=10,
    preselfpay_amt=0,
    inscp_scp_amt=9_000_000,
    use_acct=True,
)
MEMBER: dict[str, Any] = {
    "psn_no": "P-A",
    "insuplc_admdvs": "330109",
    "insutype": "390",
    "assist_category": "dibao",
    "chronic": False,
    "supplementary": [2023],
    "valid_from": "2023-01-01",
}
CONTRIBUTION: dict[str, Any] = {
    "contrib_id": "C-1",
    "psn_no": "P-D",
    "fund": "310100",
    "paid_date": "2023-01-10",
    "amount": "6000.00",
    "acct_amount": "2400.00",
}


def line(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode("utf-8")


def claim_line(**changes: Any) -> bytes:
    return line({**CLAIM, **changes})


def reason_of(parse: Callable[[dict[str, Any]], Any], raw: bytes) -> str:
    with pytest.raises(RecordRejected) as caught:
        parse(decode_line(raw))
    return caught.value.reason


def claim_reason(**changes: Any) -> str:
    return reason_of(parse_claim, claim_line(**changes))


# --- decode_line --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"setl_id": "S-1"', "not_json"),
        (b"setl_id=S-1", "not_json"),
        (b"[1, 2, 3]", "not_an_object"),
        (b'"a string"', "not_an_object"),
        (b"42", "not_an_object"),
        (b"null", "not_an_object"),
        (b'{"psn_no": "\xff\xfe"}', "not_utf8"),
        (b"", "empty_line"),
        (b"   \t  ", "empty_line"),
        (b"\n", "empty_line"),
        (b'{"medfee_sumamt": 1e1000000000000000000}', "not_json"),  # Decimal cannot hold the exponent
        (b'{"medfee_sumamt": -1e-1000000000000000000000}', "not_json"),
        (b"{" + b" " * LINE_BYTES_MAX + b"}", "line_too_long"),
    ],
)
def test_a_line_that_is_not_one_json_object_is_rejected_with_its_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(RecordRejected) as caught:
        decode_line(raw)
    assert caught.value.reason == reason


def test_a_line_of_exactly_the_maximum_length_is_still_read() -> None:
    raw = b'{"a": "' + b"x" * (LINE_BYTES_MAX - 10) + b'"}'
    assert len(raw) <= LINE_BYTES_MAX
    assert decode_line(raw) == {"a": "x" * (LINE_BYTES_MAX - 10)}


def test_a_deeply_nested_line_is_rejected_not_a_crash() -> None:
    raw = b"[" * 5000 + b"]" * 5000
    assert len(raw) < LINE_BYTES_MAX
    with pytest.raises(RecordRejected):
        decode_line(raw)


# --- claims -------------------------------------------------------------------------------------


def test_a_valid_claim_parses_into_exact_fen() -> None:
    claim = parse_claim(decode_line(claim_line()))
    assert claim == CLAIM_PARSED
    assert claim.year == 2023


def test_json_numbers_are_parsed_from_their_text_exactly() -> None:
    raw = (
        b'{"setl_id": "S-1", "psn_no": "P-A", "fixmedins_code": "H001", "hosp_lv": 3, "med_type": "21",'
        b' "setl_time": "2023-03-02", "medfee_sumamt": 96000.10, "fulamt_ownpay_amt": 6000,'
        b' "overlmt_selfpay": 0.1, "preselfpay_amt": 0, "inscp_scp_amt": 90000.00}'
    )
    claim = parse_claim(decode_line(raw))
    # 96000.10 as a binary float is 96000.100000000005820766091346740722656250; it must not matter
    assert claim.medfee_sumamt == 9_600_010
    assert claim.fulamt_ownpay_amt == 600_000
    assert claim.overlmt_selfpay == 10
    assert claim.inscp_scp_amt == 9_000_000


def test_a_hospital_level_may_be_given_as_a_one_digit_string() -> None:
    assert parse_claim(decode_line(claim_line(hosp_lv="2"))).hosp_lv == 2


def test_use_acct_false_is_kept_and_defaults_to_true() -> None:
    assert parse_claim(decode_line(claim_line(use_acct=False))).use_acct is False
    assert parse_claim(decode_line(claim_line())).use_acct is True


def test_a_claim_without_a_required_field_is_rejected_as_missing_field() -> None:
    for name in CLAIM:
        obj = {k: v for k, v in CLAIM.items() if k != name}
        assert reason_of(parse_claim, line(obj)) == "missing_field", name


def test_a_claim_with_a_field_the_spec_does_not_name_is_rejected_as_unknown_field() -> None:
    assert claim_reason(comment="hello") == "unknown_field"
    assert claim_reason(medfee="1.00") == "unknown_field"


@pytest.mark.parametrize("value", ["", "has space", "-leading-dash", "x" * 65, 12345, None, ["S-1"], "收据1"])
def test_a_malformed_settlement_id_is_rejected_as_bad_setl_id(value: Any) -> None:
    assert claim_reason(setl_id=value) == "bad_setl_id"


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("setl_id", "S-0001\n", "bad_setl_id"),
        ("psn_no", "P-A\n", "bad_psn_no"),
        ("mdtrt_id", "V-1\n", "bad_mdtrt_id"),
        ("mdtrtarea_admvs", "330100\n", "bad_mdtrtarea_admvs"),
        ("setl_time", "2023-03-02 10:00:00\n", "bad_setl_time"),
        ("setl_time", "2023-03-02\n", "bad_setl_time"),
    ],
)
def test_a_value_ending_in_a_line_end_is_rejected_not_kept_with_it(field: str, value: str, reason: str) -> None:
    # A regex's `$` also matches before a final line end: "S-0001\n" passed as an id, and the
    # time of "... 10:00:00\n" was kept without it.
    assert claim_reason(**{field: value}) == reason


def test_malformed_member_and_hospital_ids_are_rejected_by_name() -> None:
    assert claim_reason(psn_no="P A") == "bad_psn_no"
    assert claim_reason(fixmedins_code="") == "bad_fixmedins_code"


@pytest.mark.parametrize("value", [0, 4, -1, "4", "x", "", "03", True, False, None, 2.5, [3], "三"])
def test_a_hospital_level_other_than_1_2_or_3_is_rejected_as_bad_hosp_lv(value: Any) -> None:
    assert claim_reason(hosp_lv=value) == "bad_hosp_lv"


def test_a_superscript_or_non_ascii_digit_as_hospital_level_is_rejected_not_a_crash() -> None:
    # '²'.isdigit() is true but int('²') raises ValueError; '١' (Arabic-Indic one) is int 1
    assert claim_reason(hosp_lv="²") == "bad_hosp_lv"
    assert claim_reason(hosp_lv="١") == "bad_hosp_lv"


def test_a_hospital_level_written_as_the_json_number_2_0_is_the_integer_2_or_rejected() -> None:
    raw = claim_line().replace(b'"hosp_lv": 3', b'"hosp_lv": 2.0')
    try:
        claim = parse_claim(decode_line(raw))
    except RecordRejected as exc:
        assert exc.reason == "bad_hosp_lv"
        return
    assert type(claim.hosp_lv) is int
    assert claim.content_hash == parse_claim(decode_line(claim_line(hosp_lv=2))).content_hash


@pytest.mark.parametrize("value", ["12", "22", "", 21, None, True, "11 "])
def test_a_medical_type_other_than_11_14_or_21_is_rejected_as_bad_med_type(value: Any) -> None:
    assert claim_reason(med_type=value) == "bad_med_type"


@pytest.mark.parametrize(
    "value", ["2023-02-30", "2023-13-01", "2023-3-2", "20230302", "2023-03-02T10:00", 20230302, None]
)
def test_a_settlement_date_that_is_not_a_calendar_date_is_rejected_as_bad_setl_time(value: Any) -> None:
    assert claim_reason(setl_time=value) == "bad_setl_time"


def test_use_acct_that_is_not_a_boolean_is_rejected_as_bad_use_acct() -> None:
    assert claim_reason(use_acct="false") == "bad_use_acct"
    assert claim_reason(use_acct=0) == "bad_use_acct"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("1.005", "amount_too_precise"),
        ("1.000", "amount_too_precise"),
        ("-1.00", "amount_negative"),
        (-1, "amount_negative"),
        ("abc", "amount_not_a_number"),
        (True, "amount_not_a_number"),
        (None, "amount_not_a_number"),
        ("", "amount_not_a_number"),
        ("1,000.00", "amount_not_a_number"),
        ("1e3", "amount_not_a_number"),
        ("NaN", "amount_not_a_number"),
        (" 1.00", "amount_not_a_number"),
        ({"yuan": 1}, "amount_not_a_number"),
        ("10000000000.01", "amount_too_large"),
        ("99999999999999999999", "amount_too_large"),
        (10_000_000_001, "amount_too_large"),
    ],
)
def test_a_bad_amount_is_rejected_with_the_amount_reason(value: Any, reason: str) -> None:
    assert claim_reason(overlmt_selfpay=value) == reason


def test_a_json_number_with_more_than_two_decimals_is_too_precise() -> None:
    raw = claim_line().replace(b'"overlmt_selfpay": "0.10"', b'"overlmt_selfpay": 0.105')
    assert reason_of(parse_claim, raw) == "amount_too_precise"


def test_a_json_number_in_exponent_form_is_parsed_exactly_or_rejected() -> None:
    big = claim_line().replace(b'"overlmt_selfpay": "0.10"', b'"overlmt_selfpay": 1e400')
    assert reason_of(parse_claim, big) == "amount_too_large"
    tiny = claim_line().replace(b'"overlmt_selfpay": "0.10"', b'"overlmt_selfpay": 1e-400')
    assert reason_of(parse_claim, tiny) == "amount_too_precise"


def test_the_largest_amount_is_ten_billion_yuan() -> None:
    claim = parse_claim(
        decode_line(
            claim_line(
                medfee_sumamt="10000000000.00", fulamt_ownpay_amt="0", overlmt_selfpay="0", inscp_scp_amt="10000000000"
            )
        )
    )
    assert claim.medfee_sumamt == 10**12


@pytest.mark.parametrize(
    "changes",
    [
        {"medfee_sumamt": "96000.11"},
        {"medfee_sumamt": "96000.09"},
        {"inscp_scp_amt": "0.00"},
        {"preselfpay_amt": "0.01"},
    ],
)
def test_a_claim_whose_parts_do_not_add_up_to_the_total_is_rejected(changes: dict[str, Any]) -> None:
    assert claim_reason(**changes) == "amounts_do_not_add_up"


def test_a_claims_canonical_form_holds_every_field_given_and_none_not_given() -> None:
    every = {**CLAIM, "setl_time": "2023-03-02 10:00:00", "use_acct": False, "mdtrt_id": "V-1",
             "medins_setl_id": "M-1", "payee": "member", "mdtrtarea_admvs": "110105"}  # fmt: skip
    claim = parse_claim(decode_line(line(every)))
    names = {field.name for field in attrs.fields(Claim)} - {"setl_clock"}  # in setl_time
    assert claim.to_dict().keys() == names == every.keys()
    assert claim.to_dict()["setl_time"] == "2023-03-02 10:00:00" and claim.to_dict()["medfee_sumamt"] == 9_600_010
    assert Claim.from_dict(claim.to_dict()) == claim
    assert parse_claim(decode_line(claim_line())).to_dict().keys() == {*CLAIM, "use_acct"}


def test_a_claim_keeps_its_content_hash_whatever_the_number_format() -> None:
    a = parse_claim(decode_line(claim_line(inscp_scp_amt="90000", fulamt_ownpay_amt="6000.0")))
    b = parse_claim(decode_line(claim_line()))
    assert a.content_hash == b.content_hash
    assert parse_claim(decode_line(claim_line(use_acct=False))).content_hash != b.content_hash


# --- members ------------------------------------------------------------------------------------


def member_reason(**changes: Any) -> str:
    return reason_of(parse_member, line({**MEMBER, **changes}))


def test_a_valid_member_record_parses() -> None:
    record = parse_member(decode_line(line({**MEMBER, "supplementary": [2024, 2023, 2023], "family_of": "P-D"})))
    assert record == MemberRecord(
        psn_no="P-A",
        insuplc_admdvs="330109",
        insutype="390",
        assist_category="dibao",
        chronic=False,
        supplementary=(2023, 2024),
        valid_from=dt.date(2023, 1, 1),
        family_of="P-D",
    )


def test_a_member_record_defaults_to_not_chronic_no_supplementary_and_no_family() -> None:
    obj = {k: v for k, v in MEMBER.items() if k not in ("chronic", "supplementary")}
    record = parse_member(decode_line(line(obj)))
    assert (record.chronic, record.supplementary, record.family_of) == (False, (), None)


@pytest.mark.parametrize("value", ["320", "", 310, None, "employee"])
def test_an_unknown_scheme_is_rejected_as_bad_insutype(value: Any) -> None:
    assert member_reason(insutype=value) == "bad_insutype"


@pytest.mark.parametrize("value", ["poor", "", "NONE", None, 1, "Tekun"])
def test_an_unknown_assistance_category_is_rejected_as_bad_assist_category(value: Any) -> None:
    assert member_reason(assist_category=value) == "bad_assist_category"


@pytest.mark.parametrize("value", [2023, "2023", ["2023"], [True], [1899], [3000], [2023.5], {"2023": True}, None])
def test_supplementary_that_is_not_a_list_of_years_is_rejected_as_bad_supplementary(value: Any) -> None:
    assert member_reason(supplementary=value) == "bad_supplementary"


def test_a_family_of_that_is_not_an_identifier_is_rejected_as_bad_family_of() -> None:
    # One naming the member themself is a record whose binding is refused (tests/integration/test_transfers.py).
    assert member_reason(family_of="P D") == "bad_family_of"


def test_other_member_field_errors_are_named() -> None:
    assert member_reason(insuplc_admdvs="33010") == "bad_insuplc_admdvs"
    assert member_reason(valid_from="2023-02-29") == "bad_valid_from"
    assert member_reason(chronic="yes") == "bad_chronic"
    assert member_reason(region="330109") == "unknown_field"
    assert reason_of(parse_member, line({k: v for k, v in MEMBER.items() if k != "insutype"})) == "missing_field"


# --- contributions ------------------------------------------------------------------------------


def contribution_reason(**changes: Any) -> str:
    return reason_of(parse_contribution, line({**CONTRIBUTION, **changes}))


def test_a_valid_contribution_parses_into_fen() -> None:
    assert parse_contribution(decode_line(line(CONTRIBUTION))) == Contribution(
        contrib_id="C-1",
        psn_no="P-D",
        fund="310100",
        paid_date=dt.date(2023, 1, 10),
        amount=600_000,
        acct_amount=240_000,
    )
    without = {k: v for k, v in CONTRIBUTION.items() if k != "acct_amount"}
    assert parse_contribution(decode_line(line({**without, "fund": "390100"}))).acct_amount == 0


def test_an_account_share_larger_than_the_contribution_is_rejected() -> None:
    assert contribution_reason(acct_amount="6000.01") == "acct_amount_exceeds_amount"
    assert parse_contribution(decode_line(line({**CONTRIBUTION, "acct_amount": "6000.00"}))).acct_amount == 600_000


def test_an_account_share_of_a_non_employee_fund_is_rejected_as_bad_acct_amount() -> None:
    assert contribution_reason(fund="390100") == "bad_acct_amount"
    assert parse_contribution(decode_line(line({**CONTRIBUTION, "fund": "390100", "acct_amount": "0.00"}))).fund == (
        "390100"
    )


def test_other_contribution_field_errors_are_named() -> None:
    assert contribution_reason(fund="999999") == "bad_fund"
    assert contribution_reason(amount="1.005") == "amount_too_precise"
    assert contribution_reason(acct_amount="-1") == "amount_negative"
    assert contribution_reason(paid_date="2023-02-30") == "bad_paid_date"
    assert contribution_reason(contrib_id="") == "bad_contrib_id"


# --- fuzz ---------------------------------------------------------------------------------------

json_scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=12) | st.decimals(allow_nan=False)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


def _parse_or_reject(raw: bytes) -> None:
    try:
        claim = parse_claim(decode_line(raw))
    except RecordRejected as exc:
        assert exc.reason and exc.reason.replace("_", "").isalnum()
        return
    assert claim.amounts_add_up()
    assert min(claim.medfee_sumamt, claim.fulamt_ownpay_amt, claim.inscp_scp_amt) >= 0


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_either_parse_or_are_rejected_by_name(raw: bytes) -> None:
    _parse_or_reject(raw)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=10), json_values, max_size=6))
def test_arbitrary_json_objects_either_parse_or_are_rejected_by_name(obj: dict[str, Any]) -> None:
    _parse_or_reject(json.dumps(obj, default=str).encode("utf-8"))


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_a_claim_with_any_field_replaced_by_any_json_value_parses_or_is_rejected_by_name(data: st.DataObject) -> None:
    obj = dict(CLAIM)
    for name in data.draw(st.lists(st.sampled_from([*CLAIM, "use_acct"]), min_size=1, max_size=3, unique=True)):
        obj[name] = data.draw(json_values | st.sampled_from(["1", "3", "11", "21", "2023-01-31", "0.00", "1.5"]))
    _parse_or_reject(json.dumps(obj, default=str).encode("utf-8"))


def test_a_rejected_claims_ids_are_echoed_as_given_when_text_or_an_integer() -> None:
    assert claim_ids({"setl_id": 123, "psn_no": "P"}) == (123, "P")
    assert claim_ids({"setl_id": -7, "psn_no": 42}) == (-7, 42)
    assert claim_ids({"setl_id": True, "psn_no": 1.5}) == (None, None)
    assert claim_ids({"setl_id": 10**64, "psn_no": ["P"]}) == (None, None)


def test_a_rejected_claims_ids_with_a_fraction_are_echoed_as_the_json_numbers_given() -> None:
    setl_id, psn_no = claim_ids(decode_line(b'{"setl_id": 12345.0, "psn_no": 1E+5}'))
    assert msgspec.json.encode({"setl_id": setl_id, "psn_no": psn_no}) == b'{"setl_id":12345.0,"psn_no":1E+5}'
    assert claim_ids(decode_line(b'{"setl_id": 1.' + b"5" * 64 + b"}")) == (None, None)  # too long to echo
