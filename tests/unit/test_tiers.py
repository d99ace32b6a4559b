"""Each tier's rules on their own (SPEC section 4), with exact fen amounts.

Most tests run a policy whose `order` holds only the tier under test, so the tier sees the claim's
amounts directly; the order tests then put tiers together.
"""

from __future__ import annotations

import json

import attrs
import pytest

from core.money import parse_yuan
from core.policy import (
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
    Computation,
    MemberTerms,
    PersonalSplit,
    YearToDate,
    compute_settlement,
    lookback_assistance,
    serious_illness_f,
    split_personal,
)


def y(text: str) -> int:
    return parse_yuan(text)


BASIC_390 = BasicScheme(
    annual_cap=y("10000"),
    outpatient_annual_cap=y("1000"),
    chronic_outpatient_bonus=y("500"),
    med_types={
        "21": BasicMedType(y("500"), "per_visit", {1: 9000, 2: 8000, 3: 7000}),
        "14": BasicMedType(y("200"), "annual", {1: 7000, 2: 7000, 3: 7000}),
        "11": BasicMedType(y("100"), "annual", {1: 6000, 2: 5000, 3: 5000}),
    },
)
BASIC_310 = BasicScheme(
    annual_cap=y("20000"),
    outpatient_annual_cap=y("2000"),
    chronic_outpatient_bonus=0,
    med_types={
        "21": BasicMedType(y("1000"), "per_visit", {1: 9000, 2: 9000, 3: 9000}),
        "14": BasicMedType(0, "annual", {1: 8000, 2: 8000, 3: 8000}),
        "11": BasicMedType(y("500"), "annual", {1: 8000, 2: 8000, 3: 8000}),
    },
)
SI_DEFAULT = SeriousIllnessTerms(threshold=y("1000"), segments=((y("5000"), 5000), (None, 6000)), annual_cap=y("3000"))
SI_TEKUN = SeriousIllnessTerms(threshold=y("500"), segments=((y("5000"), 8000), (None, 9000)), annual_cap=None)
SUPP_DEFAULT = SupplementaryTerms(
    deductible=y("1000"),
    ratio_bp=5000,
    annual_cap=y("2000"),
    out_of_range_deductible=y("500"),
    out_of_range_ratio_bp=4000,
)

BASE_POLICY = Policy(
    region="330109",
    year=2023,
    name="unit",
    order=("basic", "serious_illness", "assistance", "supplementary", "charity"),
    preselfpay_in_base=False,
    basic={"390": BASIC_390, "310": BASIC_310},
    serious_illness=SeriousIllness(
        med_types=frozenset({"21", "14"}), default=SI_DEFAULT, by_category={"tekun": SI_TEKUN}
    ),
    assistance={
        "dibao": AssistanceTerms(
            ratio_bp=8000,
            deductible=y("100"),
            annual_limit=y("2000"),
            outpatient_limit=y("300"),
        ),
        "tekun": AssistanceTerms(ratio_bp=10000),
    },
    supplementary=Supplementary(
        default=SUPP_DEFAULT,
        by_category={
            "tekun": attrs.evolve(SUPP_DEFAULT, deductible=0, out_of_range_deductible=0),
        },
    ),
    charity=Charity(
        categories=frozenset({"tekun", "dibao"}),
        threshold=y("5000"),
        ratio_bp=5000,
        annual_cap=y("1000"),
    ),
    content_hash="0" * 64,
)


def policy(*order: str, **changes) -> Policy:
    if order:
        changes["order"] = order
    return attrs.evolve(BASE_POLICY, **changes)


def claim(
    med_type: str = "21",
    lv: int = 1,
    inscp: str = "0",
    full: str = "0",
    over: str = "0",
    pre: str = "0",
) -> ClaimAmounts:
    parts = [y(v) for v in (full, over, pre, inscp)]
    return ClaimAmounts(
        med_type=med_type,
        hosp_lv=lv,
        medfee_sumamt=sum(parts),
        fulamt_ownpay_amt=parts[0],
        overlmt_selfpay=parts[1],
        preselfpay_amt=parts[2],
        inscp_scp_amt=parts[3],
    )


def member(insutype: str = "390", category: str = "none", chronic: bool = False, supp: bool = False) -> MemberTerms:
    return MemberTerms(insutype=insutype, assist_category=category, chronic=chronic, supplementary_enrolled=supp)


def settle(c: ClaimAmounts, m: MemberTerms, p: Policy, ytd: YearToDate | None = None) -> Computation:
    comp = compute_settlement(c, m, p, ytd or YearToDate())
    payers = comp.hifp_pay + comp.hifmi_pay + comp.maf_pay + comp.hmb_pay + comp.charity_pay
    assert payers + comp.psn_part_amt == c.medfee_sumamt
    assert comp.delta.out_of_pocket == comp.psn_part_amt
    json.dumps(comp.breakdown)
    return comp


# -- basic ------------------------------------------------------------------------------------


def test_a_per_visit_deductible_is_taken_on_every_admission():
    p = policy("basic")
    first = settle(claim("21", 1, inscp="2000"), member(), p)
    assert (first.act_pay_dedc, first.hifp_pay, first.psn_part_amt) == (50000, 135000, 65000)
    assert first.delta.basic_deductible_used == {}
    second = settle(claim("21", 1, inscp="2000"), member(), p, first.delta)
    assert (second.act_pay_dedc, second.hifp_pay) == (50000, 135000)
    assert first.breakdown["basic"]["deductible_scope"] == "per_visit"


def test_an_annual_deductible_is_consumed_across_the_year():
    p = policy("basic")
    ytd = YearToDate()
    a = settle(claim("11", 1, inscp="60"), member(), p, ytd)
    assert (a.act_pay_dedc, a.hifp_pay) == (6000, 0)
    assert a.delta.basic_deductible_used == {"11": 6000}
    ytd = ytd.plus(a.delta)
    b = settle(claim("11", 1, inscp="100"), member(), p, ytd)
    assert (b.act_pay_dedc, b.hifp_pay) == (4000, 3600)  # 60% of 60.00
    ytd = ytd.plus(b.delta)
    assert ytd.basic_deductible_used == {"11": 10000}
    c = settle(claim("11", 1, inscp="100"), member(), p, ytd)
    assert (c.act_pay_dedc, c.hifp_pay) == (0, 6000)


def test_annual_deductibles_are_tracked_per_med_type():
    p = policy("basic")
    ytd = YearToDate(basic_deductible_used={"11": y("100")})
    c = settle(claim("14", 1, inscp="300"), member(), p, ytd)
    assert (c.act_pay_dedc, c.hifp_pay) == (20000, 7000)
    assert ytd.plus(c.delta).basic_deductible_used == {"11": 10000, "14": 20000}


@pytest.mark.parametrize(("lv", "pay"), [(1, "900"), (2, "800"), (3, "700")])
def test_the_basic_ratio_depends_on_the_hospital_level(lv, pay):
    c = settle(claim("21", lv, inscp="1500"), member(), policy("basic"))
    assert c.hifp_pay == y(pay)
    assert c.breakdown["basic"]["ratio_bp"] == {1: 9000, 2: 8000, 3: 7000}[lv]


def test_the_employee_scheme_has_its_own_deductible_and_ratio():
    c = settle(claim("21", 1, inscp="2000"), member("310"), policy("basic"))
    assert (c.act_pay_dedc, c.hifp_pay) == (y("1000"), y("900"))


def test_each_basic_payment_rounds_once_half_up():
    ytd = YearToDate(basic_deductible_used={"11": y("100")})
    c = settle(claim("11", 2, inscp="100.01"), member(), policy("basic"), ytd)
    assert c.hifp_pay == 5001  # 50% of 10001 fen = 5000.5


def test_the_annual_cap_is_shared_by_all_med_types():
    ytd = YearToDate(basic_paid=y("9900"), basic_deductible_used={"14": y("200")})
    c = settle(claim("14", 1, inscp="1000"), member(), policy("basic"), ytd)
    assert c.hifp_pay == y("100")
    assert c.breakdown["basic"]["uncapped_pay"] == y("700")
    assert c.breakdown["basic"]["cap_hit"] == "annual_cap"
    assert c.psn_part_amt == y("900")
    after = ytd.plus(c.delta)
    assert after.basic_paid == BASIC_390.annual_cap
    nothing = settle(claim("21", 1, inscp="5000"), member(), policy("basic"), after)
    assert nothing.hifp_pay == 0


def test_ordinary_outpatient_has_an_annual_sub_cap():
    ytd = YearToDate(basic_outpatient_paid=y("950"), basic_paid=y("950"))
    ytd = attrs.evolve(ytd, basic_deductible_used={"11": y("100")})
    c = settle(claim("11", 1, inscp="200"), member(chronic=False), policy("basic"), ytd)
    assert c.hifp_pay == y("50")
    assert c.breakdown["basic"]["cap_hit"] == "outpatient_annual_cap"
    assert c.delta.basic_outpatient_paid == y("50")
    assert c.delta.basic_paid == y("50")


def test_a_chronic_member_gets_the_bonus_on_the_outpatient_sub_cap():
    ytd = YearToDate(basic_outpatient_paid=y("950"), basic_paid=y("950"), basic_deductible_used={"11": y("100")})
    c = settle(claim("11", 1, inscp="200"), member(chronic=True), policy("basic"), ytd)
    assert c.hifp_pay == y("120")
    assert c.breakdown["basic"]["outpatient_cap"] == y("1500")
    assert c.breakdown["basic"]["cap_hit"] is None
    full = attrs.evolve(ytd, basic_outpatient_paid=y("1450"))
    c = settle(claim("11", 1, inscp="200"), member(chronic=True), policy("basic"), full)
    assert c.hifp_pay == y("50")


def test_the_outpatient_sub_cap_does_not_limit_inpatient_or_chronic_outpatient():
    ytd = YearToDate(basic_outpatient_paid=y("1000"), basic_paid=y("1000"))
    c = settle(claim("21", 1, inscp="1500"), member(), policy("basic"), ytd)
    assert c.hifp_pay == y("900")
    assert c.delta.basic_outpatient_paid == 0
    c = settle(claim("14", 1, inscp="1200"), member(), policy("basic"), ytd)
    assert c.hifp_pay == y("700")


def test_none_caps_are_unlimited():
    scheme = attrs.evolve(BASIC_390, annual_cap=None, outpatient_annual_cap=None)
    p = policy("basic", basic={"390": scheme, "310": BASIC_310})
    ytd = YearToDate(
        basic_paid=y("999999"),
        basic_outpatient_paid=y("99999"),
        basic_deductible_used={"11": 10000},
    )
    c = settle(claim("11", 1, inscp="1000"), member(chronic=True), p, ytd)
    assert c.hifp_pay == y("600")
    assert c.breakdown["basic"]["cap_remaining"] is None


def test_a_claim_below_the_deductible_pays_nothing_and_leaves_the_rest_of_it():
    c = settle(claim("21", 1, inscp="300"), member(), policy("basic"))
    assert (c.act_pay_dedc, c.hifp_pay, c.psn_part_amt) == (y("300"), 0, y("300"))


def test_a_missing_basic_scheme_pays_nothing_and_says_why():
    c = settle(claim("21", 1, inscp="3000"), member("310"), policy("basic", basic={"390": BASIC_390}))
    assert c.hifp_pay == 0
    assert c.breakdown["basic"] == {"applies": False, "why": "no basic scheme 310 in policy"}


# -- serious illness --------------------------------------------------------------------------


def test_f_is_zero_up_to_the_threshold_and_piecewise_above():
    assert serious_illness_f(SI_DEFAULT, 0) == 0
    assert serious_illness_f(SI_DEFAULT, y("1000")) == 0
    assert serious_illness_f(SI_DEFAULT, y("1000.01")) == 1  # 0.5 fen rounds up
    assert serious_illness_f(SI_DEFAULT, y("5000")) == y("2000")
    assert serious_illness_f(SI_DEFAULT, y("5000.01")) == y("2000.01")  # 0.6 fen rounds up
    assert serious_illness_f(SI_DEFAULT, y("6000")) == y("2600")


def test_f_with_a_closed_last_segment_pays_nothing_above_it():
    terms = attrs.evolve(SI_DEFAULT, segments=((y("5000"), 5000),))
    assert serious_illness_f(terms, y("9000")) == y("2000")


def test_a_base_exactly_on_the_threshold_pays_nothing():
    p = policy("serious_illness")
    c = settle(claim("21", inscp="1000"), member(), p)
    assert c.hifmi_pay == 0
    assert c.delta.serious_illness_base == y("1000")
    one_fen = settle(claim("21", inscp="0.01"), member(), p, c.delta)
    assert one_fen.hifmi_pay == 1


def test_a_base_ending_exactly_on_a_segment_bound_uses_only_the_lower_segment():
    c = settle(claim("21", inscp="5000"), member(), policy("serious_illness"))
    assert c.hifmi_pay == y("2000")
    assert c.breakdown["serious_illness"]["base_after"] == y("5000")


def test_a_base_starting_exactly_on_a_segment_bound_uses_only_the_upper_segment():
    ytd = YearToDate(serious_illness_base=y("5000"), serious_illness_paid=y("2000"))
    c = settle(claim("21", inscp="100"), member(), policy("serious_illness"), ytd)
    assert c.hifmi_pay == y("60")


def test_a_claim_crossing_a_segment_bound_pays_each_part_at_its_ratio():
    c = settle(claim("21", inscp="6000"), member(), policy("serious_illness"))
    assert c.hifmi_pay == y("2600")  # 50% of 4000 + 60% of 1000


def test_serious_illness_is_cumulative_so_split_claims_pay_what_one_claim_would():
    p = policy("serious_illness")
    a = settle(claim("21", inscp="3000.01"), member(), p)
    b = settle(claim("21", inscp="2999.99"), member(), p, a.delta)
    assert a.hifmi_pay == 100001  # F(3000.01) = 1000.005 -> 1000.01
    assert a.hifmi_pay + b.hifmi_pay == y("2600")


def test_serious_illness_is_limited_by_its_remaining_annual_cap():
    ytd = YearToDate(serious_illness_base=y("5000"), serious_illness_paid=y("2900"))
    c = settle(claim("21", inscp="1000"), member(), policy("serious_illness"), ytd)
    assert c.hifmi_pay == y("100")
    bd = c.breakdown["serious_illness"]
    assert (bd["uncapped_pay"], bd["cap_hit"]) == (y("600"), "annual_cap")
    assert c.delta.serious_illness_base == y("1000")  # the base grows even when capped


def test_a_category_override_changes_threshold_segments_and_cap():
    c = settle(claim("21", inscp="1000"), member(category="tekun"), policy("serious_illness"))
    assert c.hifmi_pay == y("400")  # 80% of (1000 - 500)
    assert c.breakdown["serious_illness"]["terms"] == "tekun"
    d = settle(claim("21", inscp="1000"), member(category="dibao"), policy("serious_illness"))
    assert d.hifmi_pay == 0
    assert d.breakdown["serious_illness"]["terms"] == "default"
    ytd = YearToDate(serious_illness_base=y("50000"), serious_illness_paid=y("99999"))
    e = settle(claim("21", inscp="100"), member(category="tekun"), policy("serious_illness"), ytd)
    assert e.hifmi_pay == y("90")  # no cap for tekun


def test_serious_illness_does_not_cover_ordinary_outpatient():
    c = settle(claim("11", inscp="9000"), member(), policy("serious_illness"))
    assert c.hifmi_pay == 0
    assert c.delta.serious_illness_base == 0
    assert c.breakdown["serious_illness"] == {"applies": False, "why": "med_type 11 not covered"}


def test_the_serious_illness_base_is_what_basic_left():
    c = settle(claim("21", 1, inscp="11000"), member(), policy("basic", "serious_illness"))
    # basic: 500 deductible + 10% of 10500 = 1550 left; below the 1000 threshold by 550
    assert c.hifp_pay == y("9450")
    assert c.delta.serious_illness_base == y("1550")
    assert c.hifmi_pay == y("275")  # 50% of 550


def test_preselfpay_stays_out_of_the_base_by_default():
    ytd = YearToDate(serious_illness_base=y("10000"))
    c = settle(
        claim("21", inscp="100", pre="5000"),
        member(category="tekun"),
        policy("serious_illness"),
        ytd,
    )
    assert c.hifmi_pay == y("90")
    assert c.delta.serious_illness_base == y("100")
    assert c.psn_part_amt == y("5010")


def test_preselfpay_in_base_adds_it_and_pays_policy_range_first():
    p = policy("serious_illness", preselfpay_in_base=True)
    ytd = YearToDate(serious_illness_base=y("10000"))
    c = settle(claim("21", inscp="100", pre="5000"), member(category="tekun"), p, ytd)
    assert c.delta.serious_illness_base == y("5100")
    assert c.hifmi_pay == y("4590")  # 90% of 5100
    assert c.breakdown["serious_illness"]["paid_from"] == {"policy": y("100"), "pre": y("4490")}
    assert c.psn_part_amt == y("510")


# -- assistance -------------------------------------------------------------------------------


def test_assistance_pays_its_ratio_after_an_annual_deductible():
    p = policy("assistance")
    a = settle(claim("21", inscp="1000"), member(category="dibao"), p)
    assert a.maf_pay == y("720")  # 80% of (1000 - 100)
    assert a.delta.assistance_deductible_used == y("100")
    b = settle(claim("21", inscp="1000"), member(category="dibao"), p, a.delta)
    assert b.maf_pay == y("800")
    assert b.delta.assistance_deductible_used == 0


def test_assistance_is_limited_by_its_annual_limit():
    ytd = YearToDate(assistance_paid=y("1900"), assistance_deductible_used=y("100"))
    c = settle(claim("21", inscp="1000"), member(category="dibao"), policy("assistance"), ytd)
    assert c.maf_pay == y("100")
    assert c.breakdown["assistance"]["cap_hit"] == "annual_limit"


def test_ordinary_outpatient_assistance_has_a_sub_limit():
    ytd = YearToDate(assistance_deductible_used=y("100"))
    c = settle(claim("11", inscp="1000"), member(category="dibao"), policy("assistance"), ytd)
    assert c.maf_pay == y("300")
    assert c.breakdown["assistance"]["cap_hit"] == "outpatient_limit"
    assert c.delta.assistance_outpatient_paid == y("300")
    after = ytd.plus(c.delta)
    inpatient = settle(claim("21", inscp="1000"), member(category="dibao"), policy("assistance"), after)
    assert inpatient.maf_pay == y("800")
    assert inpatient.delta.assistance_outpatient_paid == 0


def test_tekun_assistance_pays_the_whole_remainder_without_limit():
    ytd = YearToDate(assistance_paid=y("999999"))
    c = settle(
        claim("11", inscp="1234.56", full="10"),
        member(category="tekun"),
        policy("assistance"),
        ytd,
    )
    assert c.maf_pay == y("1234.56")
    assert c.psn_part_amt == y("10")


@pytest.mark.parametrize(
    ("category", "why"),
    [
        ("none", "member has no assistance category"),
        ("disabled", "category disabled not in policy"),
    ],
)
def test_assistance_needs_a_category_the_policy_lists(category, why):
    c = settle(claim("21", inscp="1000"), member(category=category), policy("assistance"))
    assert c.maf_pay == 0
    assert c.breakdown["assistance"] == {"applies": False, "why": why}


def test_assistance_base_includes_preselfpay_only_when_flagged():
    c = settle(claim("21", inscp="100", pre="50"), member(category="tekun"), policy("assistance"))
    assert (c.maf_pay, c.psn_part_amt) == (y("100"), y("50"))
    p = policy("assistance", preselfpay_in_base=True)
    c = settle(claim("21", inscp="100", pre="50"), member(category="tekun"), p)
    assert (c.maf_pay, c.psn_part_amt) == (y("150"), 0)
    assert c.breakdown["assistance"]["paid_from"] == {"policy": y("100"), "pre": y("50")}


# -- supplementary ----------------------------------------------------------------------------


def test_supplementary_needs_enrolment_in_the_year():
    c = settle(claim("21", inscp="5000"), member(supp=False), policy("supplementary"))
    assert c.hmb_pay == 0
    assert c.breakdown["supplementary"]["why"] == "member not enrolled this year"


def test_supplementary_pays_after_its_annual_deductible():
    p = policy("supplementary")
    a = settle(claim("21", inscp="1500"), member(supp=True), p)
    assert a.hmb_pay == y("250")
    assert a.delta.supplementary_deductible_used == y("1000")
    b = settle(claim("21", inscp="100"), member(supp=True), p, a.delta)
    assert b.hmb_pay == y("50")


def test_supplementary_deductible_straddling_two_claims():
    ytd = YearToDate(supplementary_deductible_used=y("900"))
    c = settle(claim("21", inscp="300"), member(supp=True), policy("supplementary"), ytd)
    assert c.hmb_pay == y("100")
    assert c.delta.supplementary_deductible_used == y("100")


def test_supplementary_out_of_range_part_has_its_own_deductible_and_ratio():
    c = settle(claim("21", full="300", over="100", pre="200"), member(supp=True), policy("supplementary"))
    assert c.hmb_pay == y("40")  # 40% of (600 - 500)
    assert c.delta.supplementary_oor_deductible_used == y("500")
    assert c.delta.supplementary_deductible_used == 0
    assert c.breakdown["supplementary"]["out_of_range"]["paid_from"] == {"full": y("40")}


def test_out_of_range_payments_come_off_full_and_over_before_preselfpay():
    c = settle(
        claim("21", full="10", over="20", pre="1000"),
        member(category="tekun", supp=True),
        policy("supplementary"),
    )
    assert c.hmb_pay == y("412")
    assert c.breakdown["supplementary"]["out_of_range"]["paid_from"] == {
        "full": y("10"),
        "over": y("20"),
        "pre": y("382"),
    }


def test_one_supplementary_cap_serves_the_policy_range_part_first():
    m = member(category="tekun", supp=True)
    ytd = YearToDate(supplementary_paid=y("1900"))
    c = settle(claim("21", inscp="1000", full="1000"), m, policy("supplementary"), ytd)
    assert c.hmb_pay == y("100")
    assert c.breakdown["supplementary"]["policy_range"]["pay"] == y("100")
    assert c.breakdown["supplementary"]["out_of_range"]["pay"] == 0
    assert c.breakdown["supplementary"]["cap_hit"] == "annual_cap"
    ytd = YearToDate(supplementary_paid=y("1400"))
    c = settle(claim("21", inscp="1000", full="1000"), m, policy("supplementary"), ytd)
    assert c.hmb_pay == y("600")
    assert c.breakdown["supplementary"]["policy_range"]["pay"] == y("500")
    assert c.breakdown["supplementary"]["out_of_range"]["pay"] == y("100")


def test_without_an_out_of_range_ratio_only_the_policy_range_is_paid():
    terms = attrs.evolve(SUPP_DEFAULT, out_of_range_ratio_bp=None, deductible=0)
    p = policy("supplementary", supplementary=Supplementary(default=terms, by_category={}))
    c = settle(claim("21", inscp="100", full="1000"), member(supp=True), p)
    assert c.hmb_pay == y("50")
    assert c.delta.supplementary_oor_deductible_used == 0
    assert c.breakdown["supplementary"]["out_of_range"]["applies"] is False


def test_a_supplementary_category_override_drops_the_deductibles():
    c = settle(
        claim("21", inscp="100", full="100"),
        member(category="tekun", supp=True),
        policy("supplementary"),
    )
    assert c.hmb_pay == y("90")  # 50% of 100 + 40% of 100
    assert c.breakdown["supplementary"]["terms"] == "tekun"


# -- charity ----------------------------------------------------------------------------------


def test_charity_refers_only_above_the_threshold():
    p = policy("charity")
    ytd = YearToDate(out_of_pocket=y("4000"))
    at = settle(claim("21", inscp="1000"), member(category="dibao"), p, ytd)
    assert (at.charity_referral, at.charity_pay) == (False, 0)
    above = settle(claim("21", inscp="1000.01"), member(category="dibao"), p, ytd)
    assert above.charity_referral is True
    assert above.charity_pay == 1  # 50% of 0.01 rounds up


def test_charity_pays_only_the_part_above_the_threshold():
    ytd = YearToDate(out_of_pocket=y("4000"))
    c = settle(claim("21", inscp="1500"), member(category="dibao"), policy("charity"), ytd)
    assert c.charity_pay == y("250")  # 50% of (4000 + 1500 - 5000)
    assert c.delta.charity_paid == y("250")
    assert c.delta.out_of_pocket == y("1250")


def test_charity_takes_the_policy_range_remainder_first():
    ytd = YearToDate(out_of_pocket=y("6000"))
    c = settle(
        claim("21", inscp="100", pre="50", full="250"),
        member(category="tekun"),
        policy("charity"),
        ytd,
    )
    assert c.charity_pay == y("200")
    assert c.breakdown["charity"]["paid_from"] == {"policy": y("100"), "full": y("100")}


def test_charity_stops_at_its_annual_cap():
    ytd = YearToDate(out_of_pocket=y("9000"), charity_paid=y("900"))
    c = settle(claim("21", inscp="1000"), member(category="dibao"), policy("charity"), ytd)
    assert c.charity_pay == y("100")
    assert c.breakdown["charity"]["cap_hit"] == "annual_cap"


def test_charity_with_ratio_zero_only_refers():
    p = policy("charity", charity=attrs.evolve(BASE_POLICY.charity, ratio_bp=0, annual_cap=0))
    c = settle(claim("21", inscp="6000"), member(category="dibao"), p)
    assert (c.charity_referral, c.charity_pay) == (True, 0)


def test_charity_ignores_ineligible_categories():
    c = settle(claim("21", inscp="60000"), member(category="none"), policy("charity"))
    assert (c.charity_referral, c.charity_pay) == (False, 0)
    assert c.breakdown["charity"]["why"] == "category none not eligible"


def test_charity_judges_what_the_earlier_tiers_left():
    c = settle(claim("21", 1, inscp="6000"), member(category="dibao"), policy("basic", "charity"))
    # basic leaves 500 + 10% of 5500 = 1050, far below the threshold
    assert c.psn_part_amt == y("1050")
    assert c.charity_referral is False


# -- order ------------------------------------------------------------------------------------


def test_the_default_order_runs_every_tier_in_turn():
    m = member(category="dibao", supp=True)
    c = settle(claim("21", 1, inscp="8000", full="2000"), m, BASE_POLICY)
    # basic: 500 + 10% of 7500 = 1250 left; serious illness F(1250) = 125
    assert (c.hifp_pay, c.hifmi_pay) == (y("6750"), y("125"))
    # assistance: 80% of (1125 - 100) = 820; supplementary: 305 under its 1000 deductible,
    # out of range 40% of (2000 - 500) = 600
    assert (c.maf_pay, c.hmb_pay) == (y("820"), y("600"))
    assert c.fund_pay_sumamt == y("7695")
    assert c.psn_part_amt == y("1705")
    assert c.charity_referral is False
    assert list(c.breakdown) == list(BASE_POLICY.order)


def test_a_reversed_order_lets_assistance_go_before_basic():
    m = member(category="dibao")
    normal = settle(claim("21", 1, inscp="1000"), m, policy("basic", "assistance"))
    assert (normal.hifp_pay, normal.maf_pay) == (y("450"), y("360"))
    reverse = settle(claim("21", 1, inscp="1000"), m, policy("assistance", "basic"))
    assert reverse.maf_pay == y("720")
    assert reverse.hifp_pay == 0  # 280 left, all under the 500 deductible
    assert reverse.act_pay_dedc == y("280")
    assert list(reverse.breakdown)[:2] == ["assistance", "basic"]


def test_a_tier_missing_from_the_order_pays_nothing():
    m = member(category="tekun", supp=True)
    c = settle(claim("21", 1, inscp="8000"), m, policy("basic", "assistance"))
    assert c.hifmi_pay == 0
    assert c.hmb_pay == 0
    assert c.maf_pay == y("1250")
    assert c.breakdown["serious_illness"] == {"applies": False, "why": "not in policy order"}


def test_a_tier_missing_from_the_policy_pays_nothing():
    p = attrs.evolve(BASE_POLICY, serious_illness=None, supplementary=None, charity=None)
    c = settle(claim("21", 1, inscp="20000"), member(category="tekun", supp=True), p)
    assert (c.hifmi_pay, c.hmb_pay, c.charity_pay) == (0, 0, 0)
    assert c.breakdown["serious_illness"]["applies"] is False


def test_an_empty_order_leaves_everything_to_the_person():
    c = settle(claim("21", 1, inscp="100", full="1"), member(), policy(order=()))
    assert c.psn_part_amt == y("101")
    assert c.fund_pay_sumamt == 0


# -- years and accumulators -------------------------------------------------------------------


def test_a_claim_in_a_new_year_starts_from_an_empty_year_to_date():
    p = policy("basic", "serious_illness")
    spent = YearToDate(
        basic_paid=BASIC_390.annual_cap,
        basic_deductible_used={"11": y("100")},
        serious_illness_base=y("99999"),
        serious_illness_paid=SI_DEFAULT.annual_cap,
    )
    old = settle(claim("11", 1, inscp="200"), member(), p, spent)
    assert old.hifp_pay == 0
    new = settle(claim("11", 1, inscp="200"), member(), p, YearToDate())
    assert (new.act_pay_dedc, new.hifp_pay) == (y("100"), y("60"))


def test_year_to_date_plus_and_minus_are_inverse():
    a = YearToDate(basic_paid=5, basic_deductible_used={"11": 3}, out_of_pocket=7)
    d = YearToDate(basic_paid=2, basic_deductible_used={"14": 4, "11": 1}, charity_paid=1)
    assert a.plus(d).basic_deductible_used == {"11": 4, "14": 4}
    assert a.plus(d).minus(d) == a
    assert YearToDate().plus(d).minus(d) == YearToDate()
    assert d.negated().plus(d) == YearToDate()


def test_year_to_date_round_trips_through_a_plain_dict():
    a = YearToDate(basic_paid=5, basic_deductible_used={"11": 3}, supplementary_oor_deductible_used=9)
    d = a.to_dict()
    assert d["basic_deductible_used"] == {"11": 3}
    # An empty maternity accumulator is left out: deltas stored before maternity keep their form.
    assert len(d) == len(attrs.fields(YearToDate)) - 1 and "maternity_paid" not in d
    assert json.loads(json.dumps(d)) == d
    assert YearToDate.from_dict(d) == a
    mother = YearToDate(maternity_paid={"52": 4_500_00})
    assert mother.to_dict()["maternity_paid"] == {"52": 4_500_00}
    assert YearToDate.from_dict(json.loads(json.dumps(mother.to_dict()))) == mother
    with pytest.raises(ValueError):
        YearToDate.from_dict({"basic_payd": 1})


def test_year_to_date_refuses_non_integers():
    with pytest.raises(TypeError):
        YearToDate(basic_paid=1.5)  # type: ignore[arg-type]


def test_a_computation_round_trips_through_a_plain_dict():
    c = settle(claim("21", 1, inscp="20000"), member(category="dibao", supp=True), BASE_POLICY)
    d = json.loads(json.dumps(c.to_dict()))
    assert Computation.from_dict(d).delta == c.delta
    assert d["fund_pay_sumamt"] == c.fund_pay_sumamt


def test_claims_that_do_not_add_up_or_are_unknown_are_refused():
    bad = attrs.evolve(claim("21", inscp="100"), medfee_sumamt=1)
    with pytest.raises(ValueError, match="amounts_do_not_add_up"):
        compute_settlement(bad, member(), BASE_POLICY, YearToDate())
    with pytest.raises(ValueError):
        compute_settlement(claim("99", inscp="1"), member(), BASE_POLICY, YearToDate())
    with pytest.raises(ValueError):
        compute_settlement(claim("21", 4, inscp="1"), member(), BASE_POLICY, YearToDate())
    with pytest.raises(ValueError):
        compute_settlement(claim("21", inscp="1"), member("999"), BASE_POLICY, YearToDate())
    with pytest.raises(ValueError):
        claim("21", inscp="-1")


# -- the personal part ------------------------------------------------------------------------


def test_the_own_account_pays_the_personal_part_first():
    s = split_personal(1000, own_account_balance=5000, family_account_balance=None, use_acct=True)
    assert s == PersonalSplit(acct_pay=1000, acct_mulaid_pay=0, psn_cash_pay=0)


def test_an_insufficient_balance_pays_what_it_has_and_the_rest_is_cash():
    s = split_personal(1000, own_account_balance=614, family_account_balance=None, use_acct=True)
    assert s == PersonalSplit(acct_pay=614, acct_mulaid_pay=0, psn_cash_pay=386)
    s = split_personal(1000, own_account_balance=0, family_account_balance=None, use_acct=True)
    assert s == PersonalSplit(acct_pay=0, acct_mulaid_pay=0, psn_cash_pay=1000)


def test_the_family_account_pays_for_a_member_without_an_own_account():
    s = split_personal(516, own_account_balance=None, family_account_balance=1130, use_acct=True)
    assert s == PersonalSplit(acct_pay=0, acct_mulaid_pay=516, psn_cash_pay=0)
    s = split_personal(516, own_account_balance=None, family_account_balance=16, use_acct=True)
    assert s == PersonalSplit(acct_pay=0, acct_mulaid_pay=16, psn_cash_pay=500)


def test_use_acct_false_pays_everything_in_cash():
    for own, fam in ((5000, None), (None, 5000)):
        s = split_personal(1000, own_account_balance=own, family_account_balance=fam, use_acct=False)
        assert s == PersonalSplit(acct_pay=0, acct_mulaid_pay=0, psn_cash_pay=1000)


def test_no_account_at_all_is_cash():
    s = split_personal(1000, own_account_balance=None, family_account_balance=None, use_acct=True)
    assert s == PersonalSplit(acct_pay=0, acct_mulaid_pay=0, psn_cash_pay=1000)


def test_a_negative_balance_never_pays():
    s = split_personal(1000, own_account_balance=-5, family_account_balance=None, use_acct=True)
    assert s.acct_pay == 0


# -- remainders and look-back -----------------------------------------------------------------


def test_the_computation_says_what_is_left_to_the_person_by_part():
    m = member(category="dibao", supp=True)
    c = settle(claim("21", 1, inscp="8000", full="2000", pre="10"), m, BASE_POLICY)
    assert sum(c.left_to_person.values()) == c.psn_part_amt
    assert c.left_to_person["policy"] == y("305")


def test_look_back_assists_the_policy_range_remainder_within_the_year_limits():
    p = policy("basic", "assistance")
    lb = lookback_assistance(y("1000"), "21", "dibao", p, YearToDate())
    assert lb.maf_pay == y("720")  # 80% of (1000 - 100 deductible)
    assert lb.delta.assistance_paid == y("720")
    assert lb.delta.out_of_pocket == -y("720")
    near_limit = YearToDate(assistance_paid=y("1950"), assistance_deductible_used=y("100"))
    assert lookback_assistance(y("1000"), "21", "dibao", p, near_limit).maf_pay == y("50")
    outpatient = lookback_assistance(y("1000"), "11", "dibao", p, YearToDate())
    assert outpatient.maf_pay == y("300")
    assert outpatient.breakdown["cap_hit"] == "outpatient_limit"


def test_look_back_pays_nothing_without_assistance_terms():
    assert lookback_assistance(y("1000"), "21", "disabled", BASE_POLICY, YearToDate()).maf_pay == 0
    no_tier = policy("basic")
    assert lookback_assistance(y("1000"), "21", "dibao", no_tier, YearToDate()).maf_pay == 0
