"""The member-year's replay shortcuts: deltas folded on read, zero amounts left out.

`YearToDate.plus_all` sums stored deltas in one pass (a member-year's load folds every replayed
delta at once); it must give exactly what adding them one by one as objects gives, and refuse
what `from_dict` refuses.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.member_year import AppliedClaim
from core.tiers import YearToDate, nonzero, stored_delta

AMOUNT_FIELDS = [name for name in YearToDate().to_dict() if name != "basic_deductible_used"]
fen = st.integers(-(10**9), 10**9)
deltas = st.builds(
    lambda amounts, deductibles: {**amounts, "basic_deductible_used": deductibles},
    st.dictionaries(st.sampled_from(AMOUNT_FIELDS), fen),
    st.dictionaries(st.sampled_from(["11", "21", "14"]), fen, max_size=2),
)
# What a computation's rules add, as they name it: any of the fields (zeros and empty maps too),
# and now and then a value or a name that YearToDate refuses.
raised = st.dictionaries(
    st.sampled_from([*AMOUNT_FIELDS, "basic_deductible_used", "maternity_paid", "paid_twice"]),
    st.one_of(
        fen,
        st.dictionaries(st.sampled_from(["11", "21", "51"]), st.one_of(fen, st.just(1.5)), max_size=3),
        st.sampled_from([1.5, True, None, "300"]),
    ),
)


@given(raised)
def test_a_computations_delta_is_stored_as_the_accumulators_would_store_it(delta):
    try:
        expected: object = nonzero(YearToDate.from_dict(delta).to_dict())
    except (TypeError, ValueError) as exc:
        expected = (type(exc), str(exc))
    try:
        got: object = stored_delta(delta)
    except (TypeError, ValueError) as exc:
        got = (type(exc), str(exc))
    assert got == expected
    if isinstance(got, dict):
        assert list(got) == list(expected)  # and in the same order


@given(start=deltas, steps=st.lists(st.tuples(deltas, st.sampled_from([1, -1])), max_size=6))
def test_folding_stored_deltas_equals_adding_them_one_by_one(start, steps):
    initial = YearToDate.from_dict(start)
    expected = initial
    for delta, sign in steps:
        expected = (
            expected.plus(YearToDate.from_dict(delta)) if sign == 1 else expected.minus(YearToDate.from_dict(delta))
        )
    assert initial.plus_all(steps) == expected
    # and with the zero amounts left out, as member-years now store them
    assert initial.plus_all([(nonzero(d), sign) for d, sign in steps]) == expected


def test_a_fold_refuses_what_from_dict_refuses():
    with pytest.raises(TypeError, match="basic_paid must be an int"):
        YearToDate().plus_all([({"basic_paid": 1.5}, 1)])
    with pytest.raises(TypeError, match="must be an int"):
        YearToDate().plus_all([({"basic_paid": True}, 1)])
    with pytest.raises(ValueError, match="unknown YearToDate field: paid_twice"):
        YearToDate().plus_all([({"paid_twice": 100}, 1)])
    with pytest.raises(TypeError, match=r"basic_deductible_used\['11'\] must be an int"):
        YearToDate().plus_all([({"basic_deductible_used": {"11": "300"}}, 1)])
    for not_a_map in (0, 5, 0.0):  # a stored number where the deductibles go is refused, zero too
        with pytest.raises(TypeError):
            YearToDate.from_dict({"basic_deductible_used": not_a_map})
        with pytest.raises(TypeError):
            YearToDate().plus_all([({"maternity_paid": not_a_map}, 1)])


def test_a_fold_of_plus_and_minus_the_same_delta_is_where_it_started():
    start = YearToDate(basic_paid=500, basic_deductible_used={"11": 300})
    delta = {"basic_paid": 120, "out_of_pocket": 7, "basic_deductible_used": {"11": 200, "21": 50}}
    assert start.plus_all([(delta, 1), (delta, -1)]) == start
    assert start.plus_all([(delta, 1)]).basic_deductible_used == {"11": 500, "21": 50}


def test_an_applied_claim_keeps_only_nonzero_amounts_and_compares_equal_either_way():
    full = {"basic_paid": 900, "charity_paid": 0, "out_of_pocket": 0, "basic_deductible_used": {}}
    kept = AppliedClaim(1, "2023-03-01", full)
    assert kept.delta_fen == {"basic_paid": 900}
    assert kept == AppliedClaim(1, "2023-03-01", {"basic_paid": 900})  # a snapshot of either form restores equal
    assert kept.delta == YearToDate(basic_paid=900)
