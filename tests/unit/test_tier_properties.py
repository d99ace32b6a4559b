"""Property tests of the settlement rules over random policies, members and claim sequences."""

from __future__ import annotations

import json
from fractions import Fraction

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from core.money import AMOUNT_FEN_MAX, apply_ratio, format_yuan, parse_yuan
from core.policy import (
    ASSIST_CATEGORIES,
    HOSP_LEVELS,
    MED_TYPES,
    TIER_NAMES,
    AssistanceTerms,
    BasicMedType,
    BasicScheme,
    Charity,
    Policy,
    SeriousIllness,
    SeriousIllnessTerms,
    Supplementary,
    SupplementaryTerms,
)
from core.tiers import (
    ClaimAmounts,
    MemberTerms,
    YearToDate,
    compute_settlement,
    serious_illness_f,
    split_personal,
)

SETTINGS = settings(max_examples=200, deadline=None)
REAL_CATEGORIES = [c for c in ASSIST_CATEGORIES if c != "none"]

amount = st.integers(min_value=0, max_value=5_000_000)  # up to 50,000 yuan
big_amount = st.integers(min_value=0, max_value=50_000_000)
ratio = st.integers(min_value=0, max_value=10_000)
cap = st.none() | big_amount


@st.composite
def basic_schemes(draw):
    med_types = {
        mt: BasicMedType(
            deductible=draw(amount),
            deductible_scope=draw(st.sampled_from(["per_visit", "annual"])),
            ratio_bp={lv: draw(ratio) for lv in HOSP_LEVELS},
        )
        for mt in MED_TYPES
    }
    return BasicScheme(
        annual_cap=draw(cap),
        outpatient_annual_cap=draw(cap),
        chronic_outpatient_bonus=draw(amount),
        med_types=med_types,
    )


@st.composite
def si_terms(draw):
    threshold = draw(amount)
    bounds = sorted(draw(st.sets(st.integers(1, 20_000_000), min_size=0, max_size=3)))
    segments: list[tuple[int | None, int]] = [(threshold + b, draw(ratio)) for b in bounds]
    if not segments or draw(st.booleans()):
        segments.append((None, draw(ratio)))
    return SeriousIllnessTerms(threshold=threshold, segments=tuple(segments), annual_cap=draw(cap))


@st.composite
def supp_terms(draw):
    return SupplementaryTerms(
        deductible=draw(amount),
        ratio_bp=draw(ratio),
        annual_cap=draw(cap),
        out_of_range_deductible=draw(amount),
        out_of_range_ratio_bp=draw(st.none() | ratio),
    )


@st.composite
def policies(draw):
    order = draw(st.permutations(TIER_NAMES))
    order = tuple(t for t in order if draw(st.integers(0, 9)) > 0)  # drop a tier now and then
    si_cats = draw(st.lists(st.sampled_from(REAL_CATEGORIES), unique=True, max_size=2))
    supp_cats = draw(st.lists(st.sampled_from(REAL_CATEGORIES), unique=True, max_size=2))
    assist_cats = draw(st.lists(st.sampled_from(REAL_CATEGORIES), unique=True, max_size=5))
    return Policy(
        region="330109",
        year=2023,
        name="random",
        order=order,
        preselfpay_in_base=draw(st.booleans()),
        basic={"310": draw(basic_schemes()), "390": draw(basic_schemes())},
        serious_illness=draw(
            st.none()
            | st.builds(
                SeriousIllness,
                med_types=st.frozensets(st.sampled_from(MED_TYPES)),
                default=si_terms(),
                by_category=st.fixed_dictionaries({c: si_terms() for c in si_cats}),
            )
        ),
        assistance={
            c: AssistanceTerms(
                ratio_bp=draw(ratio),
                deductible=draw(amount),
                annual_limit=draw(cap),
                outpatient_limit=draw(cap),
            )
            for c in assist_cats
        },
        supplementary=draw(
            st.none()
            | st.builds(
                Supplementary,
                default=supp_terms(),
                by_category=st.fixed_dictionaries({c: supp_terms() for c in supp_cats}),
            )
        ),
        charity=draw(
            st.none()
            | st.builds(
                Charity,
                categories=st.frozensets(st.sampled_from(REAL_CATEGORIES)),
                threshold=big_amount,
                ratio_bp=ratio,
                annual_cap=cap,
            )
        ),
        content_hash="0" * 64,
    )


members = st.builds(
    MemberTerms,
    insutype=st.sampled_from(["310", "390"]),
    assist_category=st.sampled_from(ASSIST_CATEGORIES),
    chronic=st.booleans(),
    supplementary_enrolled=st.booleans(),
)


@st.composite
def claims(draw):
    parts = [draw(st.integers(0, 1_000_000) | amount) for _ in range(4)]
    return ClaimAmounts(
        med_type=draw(st.sampled_from(MED_TYPES)),
        hosp_lv=draw(st.sampled_from(HOSP_LEVELS)),
        medfee_sumamt=sum(parts),
        fulamt_ownpay_amt=parts[0],
        overlmt_selfpay=parts[1],
        preselfpay_amt=parts[2],
        inscp_scp_amt=parts[3],
    )


def _within(value: int, limit: int | None) -> bool:
    return limit is None or value <= limit


def _check_limits(ytd: YearToDate, policy: Policy, member: MemberTerms) -> None:
    scheme = policy.basic[member.insutype]
    assert _within(ytd.basic_paid, scheme.annual_cap)
    if scheme.outpatient_annual_cap is not None:
        bonus = scheme.chronic_outpatient_bonus if member.chronic else 0
        assert ytd.basic_outpatient_paid <= scheme.outpatient_annual_cap + bonus
    for mt, used in ytd.basic_deductible_used.items():
        assert used <= scheme.med_types[mt].deductible
    if policy.serious_illness is not None:
        terms = policy.serious_illness.terms_for(member.assist_category)
        assert _within(ytd.serious_illness_paid, terms.annual_cap)
        assert ytd.serious_illness_paid <= serious_illness_f(terms, ytd.serious_illness_base)
    assistance = policy.assistance.get(member.assist_category)
    if assistance is not None:
        assert _within(ytd.assistance_paid, assistance.annual_limit)
        assert _within(ytd.assistance_outpatient_paid, assistance.outpatient_limit)
        assert ytd.assistance_deductible_used <= assistance.deductible
    else:
        assert ytd.assistance_paid == 0
    if policy.supplementary is not None:
        terms = policy.supplementary.terms_for(member.assist_category)
        assert _within(ytd.supplementary_paid, terms.annual_cap)
        assert ytd.supplementary_deductible_used <= terms.deductible
        assert ytd.supplementary_oor_deductible_used <= terms.out_of_range_deductible
    if policy.charity is not None:
        assert _within(ytd.charity_paid, policy.charity.annual_cap)


def _all_fields(ytd: YearToDate) -> list[int]:
    d = ytd.to_dict()
    deductibles = d.pop("basic_deductible_used")
    return [*d.values(), *deductibles.values()]


@SETTINGS
@given(policy=policies(), member=members, sequence=st.lists(claims(), min_size=1, max_size=8))
def test_a_random_year_balances_stays_within_every_cap_and_reverses_exactly(policy, member, sequence):
    ytd = YearToDate()
    history = [ytd]
    deltas = []
    for claim in sequence:
        comp = compute_settlement(claim, member, policy, ytd)
        payers = [comp.hifp_pay, comp.hifmi_pay, comp.maf_pay, comp.hmb_pay, comp.charity_pay]
        # balances exactly, nothing negative
        assert sum(payers) + comp.psn_part_amt == claim.medfee_sumamt
        assert min(payers) >= 0
        assert comp.psn_part_amt >= 0
        assert 0 <= comp.act_pay_dedc <= claim.inscp_scp_amt
        assert all(v >= 0 for v in _all_fields(comp.delta))
        assert comp.delta.out_of_pocket == comp.psn_part_amt
        assert comp.delta.charity_paid == comp.charity_pay
        assert comp.fund_pay_sumamt == comp.hifp_pay + comp.hifmi_pay + comp.maf_pay
        # no tier pays beyond the policy range except those allowed to (supplementary, charity)
        assert comp.hifp_pay + comp.hifmi_pay + comp.maf_pay <= claim.inscp_scp_amt + (
            claim.preselfpay_amt if policy.preselfpay_in_base else 0
        )
        json.dumps(comp.breakdown)
        # plus then minus restores
        after = ytd.plus(comp.delta)
        assert after.minus(comp.delta) == ytd
        _check_limits(after, policy, member)
        ytd = after
        history.append(ytd)
        deltas.append(comp.delta)

    # reversing every settlement, in any order, empties the member-year
    for delta in reversed(deltas[::2]):
        ytd = ytd.minus(delta)
    for delta in deltas[1::2]:
        ytd = ytd.minus(delta)
    assert ytd == YearToDate()


@SETTINGS
@given(claim=claims(), member=members, policy=policies())
def test_the_split_of_the_personal_part_never_exceeds_a_balance(claim, member, policy):
    comp = compute_settlement(claim, member, policy, YearToDate())
    own = 123_456 if member.insutype == "310" else None
    family = None if own is not None else 50_000
    split = split_personal(comp.psn_part_amt, own_account_balance=own, family_account_balance=family, use_acct=True)
    assert split.acct_pay + split.acct_mulaid_pay + split.psn_cash_pay == comp.psn_part_amt
    assert split.acct_pay <= (own or 0)
    assert split.acct_mulaid_pay <= (family or 0)
    assert min(split.acct_pay, split.acct_mulaid_pay, split.psn_cash_pay) >= 0


@SETTINGS
@given(terms=si_terms(), a=big_amount, b=big_amount)
def test_serious_illness_f_is_monotone_and_never_above_the_base(terms, a, b):
    low, high = sorted((a, b))
    assert 0 <= serious_illness_f(terms, low) <= serious_illness_f(terms, high)
    assert serious_illness_f(terms, high) - serious_illness_f(terms, low) <= high - low


@SETTINGS
@given(base=st.integers(-(10**13), 10**13), ratio_bp=ratio)
def test_apply_ratio_is_exact_half_away_from_zero_rounding(base, ratio_bp):
    exact = Fraction(base * ratio_bp, 10_000)
    got = apply_ratio(base, ratio_bp)
    assert abs(got - exact) <= Fraction(1, 2)
    if abs(got - exact) == Fraction(1, 2):
        assert abs(got) > abs(exact)


@SETTINGS
@given(fen=st.integers(0, AMOUNT_FEN_MAX))
def test_format_then_parse_is_the_identity(fen):
    assert parse_yuan(format_yuan(fen)) == fen


def test_attrs_values_are_frozen():
    ytd = YearToDate()
    try:
        ytd.basic_paid = 1  # type: ignore[misc]
    except attrs.exceptions.FrozenInstanceError:
        pass
    else:  # pragma: no cover
        raise AssertionError("YearToDate must be frozen")
