"""Settlement rules (SPEC 4, 4.1) as scenarios on PostgreSQL, to the fen, under the example policy.

Every expected amount is worked out by hand in the comments from policy-330109-2023.toml:
resident (390) inpatient: deductible 800 per visit, ratio 90/80/70% at levels 1/2/3; resident
ordinary outpatient: deductible 300 a year, 60/50/50%, sub-cap 2,000; employee (310) inpatient:
deductible 1,000 per visit, 95/90/88%; employee outpatient: deductible 1,000 a year, 80/70/60%;
serious illness: threshold 20,000, 60% up to a base of 100,000; assistance dibao 80%,
illness_poverty 60%, no deductible.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from app.outcomes import Outcome
from app.region import RegionApplication
from core.ids import settlement_id
from core.money import format_yuan, parse_yuan
from core.policy import Policy, parse_policy
from core.records import Claim, Contribution, MemberRecord, parse_claim
from core.settlement import Settlement
from core.tiers import YearToDate
from store.app import Store
from tests.conftest import EXAMPLES

REGION = "330109"
POLICY_FILE = EXAMPLES / "policy-330109-2023.toml"

SHOWN = (
    "act_pay_dedc",
    "hifp_pay",
    "hifmi_pay",
    "maf_pay",
    "hmb_pay",
    "charity_pay",
    "fund_pay_sumamt",
    "psn_part_amt",
    "acct_pay",
    "acct_mulaid_pay",
    "psn_cash_pay",
)


@pytest.fixture(scope="module")
def policy() -> Policy:
    return parse_policy(POLICY_FILE.read_bytes())


@pytest.fixture(scope="module")
def app(store: Store, policy: Policy) -> RegionApplication:
    store.add_region(REGION)
    region = store.region(REGION)
    assert region.record_policy(2023, policy.content_hash, POLICY_FILE.read_text(encoding="utf-8"))
    return region


def member(
    psn_no: str,
    insutype: str = "390",
    category: str = "none",
    *,
    valid_from: str = "2023-01-01",
    family_of: str | None = None,
) -> MemberRecord:
    return MemberRecord(
        psn_no=psn_no,
        insuplc_admdvs=REGION,
        insutype=insutype,
        assist_category=category,
        chronic=False,
        supplementary=(),
        valid_from=dt.date.fromisoformat(valid_from),
        family_of=family_of,
    )


def fund_account(app: RegionApplication, psn_no: str, yuan: str) -> None:
    acct = parse_yuan(yuan)
    contribution = Contribution(f"{psn_no}-C", psn_no, "310100", dt.date(2023, 1, 10), 2 * acct, acct)
    assert [o.status for o in app.import_contributions([contribution])] == ["recorded"]


def claim(
    setl_id: str,
    psn_no: str,
    med_type: str,
    hosp_lv: int,
    setl_time: str,
    inscp: str,
    fulamt: str = "0.00",
    **extra: Any,
) -> Claim:
    return parse_claim(
        {
            "setl_id": setl_id,
            "psn_no": psn_no,
            "fixmedins_code": "H001",
            "hosp_lv": hosp_lv,
            "med_type": med_type,
            "setl_time": setl_time,
            "medfee_sumamt": format_yuan(parse_yuan(inscp) + parse_yuan(fulamt)),
            "fulamt_ownpay_amt": fulamt,
            "overlmt_selfpay": "0.00",
            "preselfpay_amt": "0.00",
            "inscp_scp_amt": inscp,
            **extra,
        }
    )


def paid(outcome: Outcome) -> dict[str, str]:
    """The settled amounts that are not zero, as yuan strings."""
    assert outcome.status == "settled", (outcome.reason, outcome.detail)
    assert outcome.facts is not None
    amounts = outcome.facts.amounts
    return {name: format_yuan(amounts[name]) for name in SHOWN if amounts[name]}


def settle(app: RegionApplication, *claims: Claim) -> list[Outcome]:
    return app.settle_claims(list(claims))


def usage(app: RegionApplication, psn_no: str, year: int = 2023) -> dict[str, Any]:
    """The accumulators that are not zero, as yuan strings."""
    out: dict[str, Any] = {}
    for name, value in app.usage(psn_no, year).to_dict().items():
        if isinstance(value, dict):
            if value:
                out[name] = {k: format_yuan(v) for k, v in value.items()}
        elif value:
            out[name] = format_yuan(value)
    return out


# --- cross-year claims ------------------------------------------------------------------------------


def test_a_claim_dated_in_a_year_without_a_policy_is_rejected_and_writes_nothing(app: RegionApplication) -> None:
    app.import_members([member("X-NOPOL")])
    position = app.recorder.max_notification_id()
    (outcome,) = settle(app, claim("X-NOPOL-1", "X-NOPOL", "21", 3, "2025-01-10", "100000.00"))
    assert (outcome.status, outcome.reason) == ("rejected", "no_policy")
    assert app.recorder.max_notification_id() == position
    assert app.settlement("X-NOPOL-1") is None


def test_claims_across_a_year_end_use_their_own_years_accumulators_and_policy(
    app: RegionApplication, policy: Policy
) -> None:
    app.import_members([member("X-YEAR")])
    december = claim("X-YEAR-1", "X-YEAR", "21", 3, "2023-12-20", "100000.00")
    january = claim("X-YEAR-2", "X-YEAR", "21", 3, "2024-01-10", "100000.00")

    first, second = settle(app, december, january)
    # 2023: basic (100000 - 800) * 70% = 69440; burden 30560;
    # serious illness F(30560) = 60% * (30560 - 20000) = 6336; left 24224
    assert paid(first) == {
        "act_pay_dedc": "800.00",
        "hifp_pay": "69440.00",
        "hifmi_pay": "6336.00",
        "fund_pay_sumamt": "75776.00",
        "psn_part_amt": "24224.00",
        "psn_cash_pay": "24224.00",
    }
    assert first.facts is not None and first.facts.policy_hash == policy.content_hash
    # no 2024 policy loaded yet
    assert (second.status, second.reason) == ("rejected", "no_policy")

    # a 2024 policy that differs: resident inpatient at level 3 pays 60%
    text_2024 = POLICY_FILE.read_text(encoding="utf-8")
    old_ratio = '[basic.390.med_type.21]          # inpatient: deductible per admission\ndeductible = "800.00"\n'
    assert text_2024.count(old_ratio) == 1 and text_2024.count("year = 2023\n") == 1
    text_2024 = text_2024.replace("year = 2023\n", "year = 2024\n").replace(
        old_ratio + 'deductible_scope = "per_visit"\nratio_bp = { 1 = 9000, 2 = 8000, 3 = 7000 }',
        old_ratio + 'deductible_scope = "per_visit"\nratio_bp = { 1 = 9000, 2 = 8000, 3 = 6000 }',
    )
    policy_2024 = parse_policy(text_2024.encode("utf-8"))
    assert policy_2024.basic["390"].med_types["21"].ratio_bp[3] == 6000
    assert app.record_policy(2024, policy_2024.content_hash, text_2024)

    (second,) = settle(app, january)
    # 2024 starts from zero: basic (100000 - 800) * 60% = 59520; burden 40480;
    # serious illness F(40480) = 60% * (40480 - 20000) = 12288 (with 2023's base of 30560 it would be
    # F(71040) - F(30560) = 30624 - 6336 = 24288); left 40480 - 12288 = 28192
    assert paid(second) == {
        "act_pay_dedc": "800.00",
        "hifp_pay": "59520.00",
        "hifmi_pay": "12288.00",
        "fund_pay_sumamt": "71808.00",
        "psn_part_amt": "28192.00",
        "psn_cash_pay": "28192.00",
    }
    assert second.facts is not None
    assert (second.facts.year, second.facts.policy_hash) == (2024, policy_2024.content_hash)
    assert usage(app, "X-YEAR", 2023) == {
        "basic_paid": "69440.00",
        "serious_illness_base": "30560.00",
        "serious_illness_paid": "6336.00",
        "out_of_pocket": "24224.00",
    }
    assert usage(app, "X-YEAR", 2024) == {
        "basic_paid": "59520.00",
        "serious_illness_base": "40480.00",
        "serious_illness_paid": "12288.00",
        "out_of_pocket": "28192.00",
    }


# --- individual account, family mutual aid, use_acct ------------------------------------------------


def test_family_mutual_aid_pays_from_the_bound_employees_account_within_its_balance(app: RegionApplication) -> None:
    app.import_members([member("F-EMP", "310"), member("F-KID", family_of="F-EMP")])
    fund_account(app, "F-EMP", "2400.00")

    first, no_account, second = settle(
        app,
        claim("F-1", "F-KID", "11", 1, "2023-03-01", "1000.00", fulamt="200.00"),
        claim("F-2", "F-KID", "11", 1, "2023-03-15", "100.00", use_acct=False),
        claim("F-3", "F-KID", "21", 2, "2023-04-01", "10000.00"),
    )
    # outpatient: deductible 300, (1000 - 300) * 60% = 420; person 580 + 200 self-paid = 780,
    # all of it from the employee's account (2400 -> 1620)
    assert paid(first) == {
        "act_pay_dedc": "300.00",
        "hifp_pay": "420.00",
        "fund_pay_sumamt": "420.00",
        "psn_part_amt": "780.00",
        "acct_mulaid_pay": "780.00",
    }
    assert first.facts is not None and first.facts.account_psn == "F-EMP"
    # use_acct false: deductible used up, 100 * 60% = 60; the 40 left is cash, the account untouched
    assert paid(no_account) == {
        "hifp_pay": "60.00",
        "fund_pay_sumamt": "60.00",
        "psn_part_amt": "40.00",
        "psn_cash_pay": "40.00",
    }
    # inpatient level 2: (10000 - 800) * 80% = 7360; person 2640, of which the 1620 left in the
    # account and 1020 cash
    assert paid(second) == {
        "act_pay_dedc": "800.00",
        "hifp_pay": "7360.00",
        "fund_pay_sumamt": "7360.00",
        "psn_part_amt": "2640.00",
        "acct_mulaid_pay": "1620.00",
        "psn_cash_pay": "1020.00",
    }
    assert app.account_balance("F-EMP") == 0
    assert app.account_balance("F-KID") == 0

    # reversing the family member's settlement gives the employee's account its 1620 back
    app.reverse("F-3", operator="op-1", reason="billed twice")
    assert app.account_balance("F-EMP") == 162_000


def test_use_acct_false_pays_an_employees_personal_part_in_cash(app: RegionApplication) -> None:
    app.import_members([member("A-EMP", "310")])
    fund_account(app, "A-EMP", "2400.00")
    cash, account = settle(
        app,
        claim("A-1", "A-EMP", "11", 2, "2023-02-01", "1620.00", use_acct=False),
        claim("A-2", "A-EMP", "11", 2, "2023-02-02", "500.00"),
    )
    # employee outpatient level 2: deductible 1000, (1620 - 1000) * 70% = 434; person 1186 in cash
    assert paid(cash) == {
        "act_pay_dedc": "1000.00",
        "hifp_pay": "434.00",
        "fund_pay_sumamt": "434.00",
        "psn_part_amt": "1186.00",
        "psn_cash_pay": "1186.00",
    }
    # deductible used up: 500 * 70% = 350; person 150 from the own account (2400 -> 2250)
    assert paid(account) == {
        "hifp_pay": "350.00",
        "fund_pay_sumamt": "350.00",
        "psn_part_amt": "150.00",
        "acct_pay": "150.00",
    }
    assert app.account_balance("A-EMP") == 225_000
    assert usage(app, "A-EMP") == {
        "basic_paid": "784.00",
        "basic_outpatient_paid": "784.00",
        "basic_deductible_used": {"11": "1000.00"},
        "out_of_pocket": "1336.00",
    }


def test_reversing_a_settlement_restores_the_account_balance_and_the_accumulators(app: RegionApplication) -> None:
    app.import_members([member("V-EMP", "310")])
    fund_account(app, "V-EMP", "2400.00")
    first, second = settle(
        app,
        claim("V-1", "V-EMP", "21", 1, "2023-05-05", "5000.00"),
        claim("V-2", "V-EMP", "11", 1, "2023-05-06", "1500.00"),
    )
    # inpatient level 1: (5000 - 1000) * 95% = 3800; person 1200 from the account (2400 -> 1200)
    assert paid(first) == {
        "act_pay_dedc": "1000.00",
        "hifp_pay": "3800.00",
        "fund_pay_sumamt": "3800.00",
        "psn_part_amt": "1200.00",
        "acct_pay": "1200.00",
    }
    # outpatient level 1: (1500 - 1000) * 80% = 400; person 1100 from the account (1200 -> 100)
    assert paid(second) == {
        "act_pay_dedc": "1000.00",
        "hifp_pay": "400.00",
        "fund_pay_sumamt": "400.00",
        "psn_part_amt": "1100.00",
        "acct_pay": "1100.00",
    }
    assert app.account_balance("V-EMP") == 10_000

    reversed_facts = app.reverse("V-1", operator="op-2", reason="patient never admitted")
    assert reversed_facts.amounts["acct_pay"] == 120_000
    assert app.account_balance("V-EMP") == 130_000
    assert usage(app, "V-EMP") == {
        "basic_paid": "400.00",
        "basic_outpatient_paid": "400.00",
        "basic_deductible_used": {"11": "1000.00"},
        "out_of_pocket": "1100.00",
    }
    settlement = app.settlement("V-1")
    assert settlement is not None and settlement.reversed
    events = list(app.events.get(settlement_id("V-1")))
    assert [type(e) for e in events] == [Settlement.Settled, Settlement.Reversed]
    assert (events[1].operator, events[1].reason) == ("op-2", "patient never admitted")

    app.reverse("V-2", operator="op-2", reason="patient never came")
    assert app.account_balance("V-EMP") == 240_000
    assert app.usage("V-EMP", 2023) == YearToDate()


# --- member changes ---------------------------------------------------------------------------------


def test_a_member_change_applies_only_to_claims_dated_from_its_valid_from(app: RegionApplication) -> None:
    outcomes = app.import_members([member("M-CHG"), member("M-CHG", category="dibao", valid_from="2023-07-01")])
    assert [o.status for o in outcomes] == ["recorded", "recorded"]
    before, after = settle(
        app,
        claim("M-1", "M-CHG", "11", 1, "2023-06-30", "1300.00"),
        claim("M-2", "M-CHG", "11", 1, "2023-07-01", "1000.00"),
    )
    # June, no category yet: deductible 300, (1300 - 300) * 60% = 600; the person pays 700
    assert paid(before) == {
        "act_pay_dedc": "300.00",
        "hifp_pay": "600.00",
        "fund_pay_sumamt": "600.00",
        "psn_part_amt": "700.00",
        "psn_cash_pay": "700.00",
    }
    # July, dibao: 1000 * 60% = 600; assistance 80% of the 400 left = 320; the person pays 80
    assert paid(after) == {
        "hifp_pay": "600.00",
        "maf_pay": "320.00",
        "fund_pay_sumamt": "920.00",
        "psn_part_amt": "80.00",
        "psn_cash_pay": "80.00",
    }
    assert before.facts is not None and after.facts is not None
    assert (before.facts.assist_category, after.facts.assist_category) == ("none", "dibao")
    assert usage(app, "M-CHG") == {
        "basic_paid": "1200.00",
        "basic_outpatient_paid": "1200.00",
        "basic_deductible_used": {"11": "300.00"},
        "assistance_paid": "320.00",
        "assistance_outpatient_paid": "320.00",
        "out_of_pocket": "780.00",
    }


# --- look-back (因病致贫) ------------------------------------------------------------------------------


def test_recognition_as_illness_poverty_gives_assistance_back_on_the_six_months_before_only(
    app: RegionApplication,
) -> None:
    app.import_members([member("L-POOR")])
    too_old, oldest_in, inpatient = settle(
        app,
        # window for recognition on 2023-08-01: [2023-02-01, 2023-08-01)
        claim("L-1", "L-POOR", "21", 3, "2023-01-31", "10000.00"),
        claim("L-2", "L-POOR", "11", 1, "2023-02-01", "1300.00"),
        claim("L-3", "L-POOR", "21", 2, "2023-06-20", "20000.00", fulamt="1000.00"),
    )
    # L-1: (10000 - 800) * 70% = 6440; left 3560 (serious-illness base 3560, under the threshold)
    assert paid(too_old)["psn_part_amt"] == "3560.00"
    # L-2: (1300 - 300) * 60% = 600; left 700
    assert paid(oldest_in)["psn_part_amt"] == "700.00"
    # L-3: (20000 - 800) * 80% = 15360; left 4640 in range (base 3560 + 4640 = 8200, under the
    # threshold) + 1000 self-paid = 5640
    assert paid(inpatient) == {
        "act_pay_dedc": "800.00",
        "hifp_pay": "15360.00",
        "fund_pay_sumamt": "15360.00",
        "psn_part_amt": "5640.00",
        "psn_cash_pay": "5640.00",
    }
    before = app.usage("L-POOR", 2023)
    assert format_yuan(before.out_of_pocket) == "9900.00"  # 3560 + 700 + 5640
    assert before.assistance_paid == 0

    (recognised,) = app.import_members([member("L-POOR", category="illness_poverty", valid_from="2023-08-01")])

    # illness_poverty: 60% of the policy-range remainder, oldest first:
    # L-2: 700 * 60% = 420 (outpatient); L-3: 4640 * 60% = 2784 (the 1000 self-paid is out of range);
    # L-1 is dated before the window and gets nothing
    assert recognised.status == "recorded"
    assert recognised.extra["lookback"] == [
        {"setl_id": "L-2", "year": 2023, "maf_pay": "420.00"},
        {"setl_id": "L-3", "year": 2023, "maf_pay": "2784.00"},
    ]
    after = app.usage("L-POOR", 2023)
    assert after.assistance_paid - before.assistance_paid == 320_400
    assert before.out_of_pocket - after.out_of_pocket == 320_400
    assert usage(app, "L-POOR") == {
        "basic_paid": "22400.00",
        "basic_outpatient_paid": "600.00",
        "basic_deductible_used": {"11": "300.00"},
        "serious_illness_base": "8200.00",
        "assistance_paid": "3204.00",
        "assistance_outpatient_paid": "420.00",
        "out_of_pocket": "6696.00",
    }
    lookback = {s: app.settlement(s).current.lookback_maf for s in ("L-1", "L-2", "L-3")}  # type: ignore[union-attr]
    assert lookback == {"L-1": 0, "L-2": 42_000, "L-3": 278_400}

    # recorded once: the same record again is unchanged and looks back no further
    (again,) = app.import_members([member("L-POOR", category="illness_poverty", valid_from="2023-08-01")])
    assert (again.status, again.extra) == ("unchanged", {})
    assert app.usage("L-POOR", 2023) == after

    # from recognition on, claims get illness_poverty assistance directly:
    # 500 * 60% = 300 basic; 200 left; assistance 60% = 120; the person pays 80
    (later,) = settle(app, claim("L-4", "L-POOR", "11", 1, "2023-08-10", "500.00"))
    assert paid(later) == {
        "hifp_pay": "300.00",
        "maf_pay": "120.00",
        "fund_pay_sumamt": "420.00",
        "psn_part_amt": "80.00",
        "psn_cash_pay": "80.00",
    }

    # reversing a looked-back settlement gives back its look-back too: L-3 took 5640 - 2784 = 2856
    # of out-of-pocket and 2784 of assistance
    app.reverse("L-3", operator="op-3", reason="wrong patient")
    assert usage(app, "L-POOR") == {
        "basic_paid": "7340.00",
        "basic_outpatient_paid": "900.00",
        "basic_deductible_used": {"11": "300.00"},
        "serious_illness_base": "3560.00",
        "assistance_paid": "540.00",
        "assistance_outpatient_paid": "540.00",
        "out_of_pocket": "3920.00",
    }


# --- correction ---------------------------------------------------------------------------------------


def test_a_correction_is_version_two_with_operator_and_reason_and_replaces_the_first(app: RegionApplication) -> None:
    app.import_members([member("K-EMP", "310")])
    fund_account(app, "K-EMP", "2400.00")
    (original,) = settle(app, claim("K-1", "K-EMP", "21", 1, "2023-05-05", "5000.00"))
    # (5000 - 1000) * 95% = 3800; person 1200 from the account (2400 -> 1200)
    assert paid(original) == {
        "act_pay_dedc": "1000.00",
        "hifp_pay": "3800.00",
        "fund_pay_sumamt": "3800.00",
        "psn_part_amt": "1200.00",
        "acct_pay": "1200.00",
    }

    (corrected,) = app.correct_claims(
        [claim("K-1", "K-EMP", "21", 1, "2023-05-05", "3000.00")], operator="op-9", reason="hospital resubmitted"
    )
    # (3000 - 1000) * 95% = 1900; person 1100 from the account, after the 1200 came back (2400 -> 1300)
    assert paid(corrected) == {
        "act_pay_dedc": "1000.00",
        "hifp_pay": "1900.00",
        "fund_pay_sumamt": "1900.00",
        "psn_part_amt": "1100.00",
        "acct_pay": "1100.00",
    }
    settlement = app.settlement("K-1")
    assert settlement is not None and not settlement.reversed
    current = settlement.current
    assert (current.version, current.operator, current.reason) == (2, "op-9", "hospital resubmitted")
    assert current.amounts["inscp_scp_amt"] == 300_000
    events = list(app.events.get(settlement_id("K-1")))
    assert [type(e) for e in events] == [Settlement.Settled, Settlement.Reversed, Settlement.Resettled]
    assert (events[1].operator, events[1].reason, events[1].setl_version) == ("op-9", "hospital resubmitted", 1)
    assert app.account_balance("K-EMP") == 130_000
    # only version 2 counts in the year (the 1100 left is also its serious-illness base)
    assert usage(app, "K-EMP") == {
        "basic_paid": "1900.00",
        "serious_illness_base": "1100.00",
        "out_of_pocket": "1100.00",
    }
    member_year = app.member_year("K-EMP", 2023)
    assert member_year is not None and member_year.applied["K-1"].version == 2

    # the corrected claim is now the one a re-submission is compared with
    (duplicate,) = settle(app, claim("K-1", "K-EMP", "21", 1, "2023-05-05", "3000.00"))
    assert (duplicate.status, duplicate.facts) == ("duplicate", current)
    (stale,) = settle(app, claim("K-1", "K-EMP", "21", 1, "2023-05-05", "5000.00"))
    assert (stale.status, stale.reason) == ("rejected", "exists_with_different_content")


def test_a_settlements_facts_store_its_delta_without_zero_amounts(app: RegionApplication) -> None:
    app.import_members([member("Z-EMP", "310")])
    fund_account(app, "Z-EMP", "2400.00")
    settle(app, claim("Z-1", "Z-EMP", "21", 1, "2023-05-05", "5000.00"))
    settled = next(iter(app.events.get(settlement_id("Z-1"))))
    # inpatient level 1: 3,800 paid by the pool, 1,200 left to the person, which counts towards
    # serious illness's threshold; the inpatient deductible is a visit's, not the year's. The
    # other ten accumulators are 0 and not stored (a missing amount is 0, as in a member-year's).
    assert settled.facts.delta == {"basic_paid": 380_000, "out_of_pocket": 120_000, "serious_illness_base": 120_000}
