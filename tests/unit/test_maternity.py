"""Maternity's pure rules: the policy's [maternity] terms, compute_maternity, and its accumulator."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.policy import MaternityTerms, PolicyError, parse_policy
from core.tiers import ClaimAmounts, YearToDate, compute_maternity
from tests.conftest import EXAMPLES

BASE = (EXAMPLES / "policy-330109-2023.toml").read_bytes()
TERMS = MaternityTerms(ratio_bp=9000, annual_cap=500_000)


def amounts(inscp: int, own: int = 0, med_type: str = "52") -> ClaimAmounts:
    return ClaimAmounts(med_type, 2, inscp + own, own, 0, 0, inscp)


def test_the_policy_reads_maternity_terms_and_names_bad_ones() -> None:
    policy = parse_policy(BASE + b'\n[maternity.med_type.52]\nratio_bp = 9000\nannual_cap = "5000.00"\n')
    assert policy.maternity == {"52": TERMS}
    assert parse_policy(BASE).maternity == {}
    with pytest.raises(PolicyError, match=r"maternity\.med_type"):
        parse_policy(BASE + b'\n[maternity.med_type.21]\nratio_bp = 9000\nannual_cap = "5000.00"\n')


def test_the_cap_left_bounds_the_payment_and_the_rest_is_the_persons() -> None:
    used = YearToDate(maternity_paid={"52": 360_000})
    got = compute_maternity(amounts(300_000, own=10_000), TERMS, used)
    assert (got.maternity_pay, got.fund_pay_sumamt, got.psn_part_amt) == (140_000, 140_000, 170_000)
    assert (got.hifp_pay, got.hifmi_pay, got.maf_pay) == (0, 0, 0)
    assert got.delta.maternity_paid == {"52": 140_000}
    assert got.breakdown["maternity"]["capped_by"] == "annual_cap"
    assert (
        compute_maternity(amounts(300_000), TERMS, YearToDate(maternity_paid={"51": 500_000})).maternity_pay == 270_000
    )


@given(st.integers(0, 10**8), st.integers(0, 10**7), st.integers(0, 10**6))
def test_payer_and_person_always_sum_to_the_bill(inscp: int, own: int, used: int) -> None:
    got = compute_maternity(amounts(inscp, own), TERMS, YearToDate(maternity_paid={"52": used}))
    assert got.maternity_pay + got.psn_part_amt == inscp + own
    assert 0 <= got.maternity_pay <= max(0, TERMS.annual_cap - used)
    before = YearToDate(maternity_paid={"52": used})
    assert before.plus(got.delta).minus(got.delta) == before


def test_a_member_is_paid_their_net_total_from_the_funds_that_owe_them() -> None:
    from core.member_payment import net_payment

    # Owes 510100 1,800.00 back, is owed 900.00 + 100.00 elsewhere: net -800.00, nothing paid.
    assert net_payment({"510100": -180_000, "310100": 90_000, "310200": 10_000}) == {}
    # Owes 100.00, is owed 900.00 + 50.00: 850.00, from the largest first.
    assert net_payment({"510100": -10_000, "310100": 90_000, "310200": 5_000}) == {"310100": 85_000}
    assert net_payment({"310100": 90_000, "310200": 5_000}) == {"310100": 90_000, "310200": 5_000}


@given(st.dictionaries(st.sampled_from(["310100", "310200", "510100", "610100"]), st.integers(-(10**8), 10**8)))
def test_net_payment_pays_the_positive_net_total_and_never_more_than_a_fund_owes(funds: dict[str, int]) -> None:
    from core.member_payment import net_payment

    paid = net_payment(funds)
    assert sum(paid.values()) == max(0, sum(funds.values()))
    assert all(0 < amount <= funds[fund] for fund, amount in paid.items())
