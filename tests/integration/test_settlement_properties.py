"""Property tests of settlement through RegionApplication on PostgreSQL (SPEC 2, 4, 4.1).

Random members (both schemes, every assistance category, chronic, supplementary, family mutual
aid) and random claim sequences are settled under the example policy; every example uses fresh
psn_no and setl_id values, so all examples share the module's database without colliding.
"""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from app.outcomes import Outcome
from app.region import RegionApplication
from core.member_year import MemberYear
from core.money import format_yuan
from core.policy import ASSIST_CATEGORIES, Policy, parse_policy
from core.records import Claim, Contribution, MemberRecord, parse_claim
from core.settlement import PAYER_FIELDS, SettlementReversed
from core.tiers import YearToDate
from store.app import Store
from tests.conftest import EXAMPLES

REGION = "330109"
YEAR = 2023
POLICY_FILE = EXAMPLES / "policy-330109-2023.toml"

SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(scope="module")
def policy() -> Policy:
    return parse_policy(POLICY_FILE.read_bytes())


@pytest.fixture(scope="module")
def app(store: Store, policy: Policy) -> RegionApplication:
    store.add_region(REGION)
    region = store.region(REGION)
    assert region.record_policy(YEAR, policy.content_hash, POLICY_FILE.read_text(encoding="utf-8"))
    return region


# --- generated facts ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    insutype: str
    assist_category: str
    chronic: bool
    supplementary: bool
    acct_fen: int  # contribution allocated to the individual account (employees only)
    family_of: int | None  # index of an employee whose account may pay (residents only)


@dataclass(frozen=True)
class Visit:
    person: int
    med_type: str
    hosp_lv: int
    day: int
    inscp: int
    fulamt: int
    overlmt: int
    preself: int
    use_acct: bool


@st.composite
def people(draw: st.DrawFn) -> list[Person]:
    count = draw(st.integers(1, 4))
    out: list[Person] = []
    for _ in range(count):
        insutype = draw(st.sampled_from(["310", "390"]))
        employees = [i for i, p in enumerate(out) if p.insutype == "310"]
        family = None
        if insutype == "390" and employees and draw(st.booleans()):
            family = draw(st.sampled_from(employees))
        out.append(
            Person(
                insutype=insutype,
                assist_category=draw(st.sampled_from(ASSIST_CATEGORIES)),
                chronic=draw(st.booleans()),
                supplementary=draw(st.booleans()),
                acct_fen=draw(st.sampled_from([0, 5_000, 120_000, 240_000, 1_500_000])) if insutype == "310" else 0,
                family_of=family,
            )
        )
    return out


def fen(low: int, high: int) -> st.SearchStrategy[int]:
    """Amounts in fen, often round, sometimes with odd fen."""
    return st.one_of(st.integers(low, high), st.integers(low // 100, high // 100).map(lambda y: y * 100))


@st.composite
def visits(draw: st.DrawFn, n_people: int, max_size: int = 16) -> list[Visit]:
    out = []
    for _ in range(draw(st.integers(1, max_size))):
        med_type = draw(st.sampled_from(["11", "14", "21", "21"]))
        if med_type == "21":
            # inpatient: from a short stay to a very expensive one, so that annual caps bind
            inscp = draw(st.one_of(fen(0, 3_000_000), fen(10_000_000, 60_000_000)))
        else:
            inscp = draw(fen(0, 1_500_000))
        out.append(
            Visit(
                person=draw(st.integers(0, n_people - 1)),
                med_type=med_type,
                hosp_lv=draw(st.integers(1, 3)),
                day=draw(st.integers(0, 364)),
                inscp=inscp,
                fulamt=draw(st.one_of(st.just(0), fen(0, inscp // 5 + 100))),
                overlmt=draw(st.one_of(st.just(0), fen(0, 50_000))),
                preself=draw(st.one_of(st.just(0), fen(0, inscp // 10 + 100))),
                use_acct=draw(st.sampled_from([True, True, True, False])),
            )
        )
    return out


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[Person], list[Visit]]:
    persons = draw(people())
    return persons, draw(visits(len(persons)))


@dataclass
class World:
    """One example's members and claims, with fresh ids."""

    prefix: str
    persons: list[Person]
    claims: list[Claim]

    def psn(self, index: int) -> str:
        return f"{self.prefix}-P{index}"

    def person_of(self, psn_no: str) -> Person:
        return self.persons[int(psn_no.rsplit("-P", 1)[1])]

    @property
    def psn_nos(self) -> list[str]:
        return [self.psn(i) for i in range(len(self.persons))]

    @property
    def employees(self) -> list[str]:
        return [self.psn(i) for i, p in enumerate(self.persons) if p.insutype == "310"]


def build_world(persons: list[Person], visits_: list[Visit]) -> World:
    world = World(prefix=uuid.uuid4().hex[:12], persons=persons, claims=[])
    for i, v in enumerate(visits_):
        medfee = v.inscp + v.fulamt + v.overlmt + v.preself
        raw = {
            "setl_id": f"{world.prefix}-S{i:03d}",
            "psn_no": world.psn(v.person),
            "fixmedins_code": f"H{v.hosp_lv}01",
            "hosp_lv": v.hosp_lv,
            "med_type": v.med_type,
            "setl_time": (dt.date(YEAR, 1, 1) + dt.timedelta(days=v.day)).isoformat(),
            "medfee_sumamt": format_yuan(medfee),
            "fulamt_ownpay_amt": format_yuan(v.fulamt),
            "overlmt_selfpay": format_yuan(v.overlmt),
            "preselfpay_amt": format_yuan(v.preself),
            "inscp_scp_amt": format_yuan(v.inscp),
        }
        if not v.use_acct:
            raw["use_acct"] = False
        world.claims.append(parse_claim(raw))
    return world


def register(app: RegionApplication, world: World) -> None:
    records = [
        MemberRecord(
            psn_no=world.psn(i),
            insuplc_admdvs=REGION,
            insutype=p.insutype,
            assist_category=p.assist_category,
            chronic=p.chronic,
            supplementary=(YEAR,) if p.supplementary else (),
            valid_from=dt.date(YEAR, 1, 1),
            family_of=world.psn(p.family_of) if p.family_of is not None else None,
        )
        for i, p in enumerate(world.persons)
    ]
    assert [o.status for o in app.import_members(records)] == ["recorded"] * len(records)
    contributions = [
        Contribution(
            contrib_id=f"{world.psn(i)}-C",
            psn_no=world.psn(i),
            fund="310100",
            paid_date=dt.date(YEAR, 1, 5),
            amount=p.acct_fen * 2 + 100_000,
            acct_amount=p.acct_fen,
        )
        for i, p in enumerate(world.persons)
        if p.acct_fen
    ]
    if contributions:
        assert [o.status for o in app.import_contributions(contributions)] == ["recorded"] * len(contributions)


def settle_in_batches(app: RegionApplication, claims: Sequence[Claim], cuts: Sequence[int]) -> list[Outcome]:
    bounds = [0, *sorted({c % (len(claims) + 1) for c in cuts}), len(claims)]
    outcomes: list[Outcome] = []
    for start, end in itertools.pairwise(bounds):
        if end > start:
            outcomes.extend(app.settle_claims(claims[start:end]))
    return outcomes


# --- checks -------------------------------------------------------------------------------------


def assert_balanced(amounts: dict[str, int]) -> None:
    assert all(value >= 0 for value in amounts.values()), amounts
    payers = sum(amounts[name] for name in PAYER_FIELDS)
    assert payers + amounts["psn_part_amt"] == amounts["medfee_sumamt"], amounts
    assert amounts["acct_pay"] + amounts["acct_mulaid_pay"] + amounts["psn_cash_pay"] == amounts["psn_part_amt"]
    assert amounts["fund_pay_sumamt"] == amounts["hifp_pay"] + amounts["hifmi_pay"] + amounts["maf_pay"]


def assert_within_limits(ytd: YearToDate, person: Person, policy: Policy) -> None:
    category = person.assist_category
    for name, value in ytd.to_dict().items():
        if name == "basic_deductible_used":
            assert all(v >= 0 for v in value.values()), ytd
        else:
            assert value >= 0, (name, ytd)
    scheme = policy.basic[person.insutype]
    assert scheme.annual_cap is not None and scheme.outpatient_annual_cap is not None
    assert ytd.basic_paid <= scheme.annual_cap
    sub_cap = scheme.outpatient_annual_cap + (scheme.chronic_outpatient_bonus if person.chronic else 0)
    assert ytd.basic_outpatient_paid <= sub_cap
    for med_type, used in ytd.basic_deductible_used.items():
        assert used <= scheme.med_types[med_type].deductible
    assert policy.serious_illness is not None
    si_cap = policy.serious_illness.terms_for(category).annual_cap
    if si_cap is not None:
        assert ytd.serious_illness_paid <= si_cap
    assistance = policy.assistance.get(category)
    if assistance is None:
        assert ytd.assistance_paid == ytd.assistance_outpatient_paid == 0
    else:
        if assistance.annual_limit is not None:
            assert ytd.assistance_paid <= assistance.annual_limit
        if assistance.outpatient_limit is not None:
            assert ytd.assistance_outpatient_paid <= assistance.outpatient_limit
    assert ytd.assistance_outpatient_paid <= ytd.assistance_paid
    assert policy.supplementary is not None
    if not person.supplementary:
        assert ytd.supplementary_paid == 0
    else:
        supp = policy.supplementary.terms_for(category)
        if supp.annual_cap is not None:
            assert ytd.supplementary_paid <= supp.annual_cap
        assert ytd.supplementary_deductible_used <= supp.deductible
        assert ytd.supplementary_oor_deductible_used <= supp.out_of_range_deductible
    assert policy.charity is not None and policy.charity.annual_cap == 0
    assert ytd.charity_paid == 0
    # binding caps, for hypothesis' statistics (pytest --hypothesis-show-statistics)
    if ytd.basic_paid == scheme.annual_cap:
        event("basic annual cap reached")
    if ytd.basic_outpatient_paid == sub_cap:
        event("outpatient sub-cap reached")
    if assistance is not None and ytd.assistance_paid == assistance.annual_limit:
        event("assistance annual limit reached")
    if assistance is not None and ytd.assistance_outpatient_paid == assistance.outpatient_limit:
        event("assistance outpatient limit reached")
    if person.supplementary and ytd.supplementary_paid:
        event("supplementary paid")


def in_force(app: RegionApplication, setl_ids: Sequence[str]) -> dict[str, Any]:
    """The settlements of `setl_ids` that are in force (not reversed), by setl_id."""
    out = {}
    for setl_id in setl_ids:
        settlement = app.settlement(setl_id)
        assert settlement is not None
        if not settlement.reversed:
            out[setl_id] = settlement.current
    return out


def assert_accumulators_match_settlements(app: RegionApplication, world: World) -> dict[str, int]:
    """Each member-year equals the sum of its settlements' deltas; returns the expected balances."""
    facts = in_force(app, [c.setl_id for c in world.claims])
    expected_balance = {psn: world.person_of(psn).acct_fen for psn in world.employees}
    for psn_no in world.psn_nos:
        mine = {s: f for s, f in facts.items() if f.psn_no == psn_no}
        total = YearToDate()
        for f in mine.values():
            assert f.year == YEAR
            total = total.plus(YearToDate.from_dict(f.delta))
        member_year: MemberYear | None = app.member_year(psn_no, YEAR)
        if member_year is None:
            assert not mine
            continue
        assert member_year.ytd == total
        assert app.usage(psn_no, YEAR) == total
        assert set(member_year.applied) == set(mine)
        assert {s: a.version for s, a in member_year.applied.items()} == {s: f.version for s, f in mine.items()}
    for f in facts.values():
        paid_from_account = f.amounts["acct_pay"] + f.amounts["acct_mulaid_pay"]
        if paid_from_account:
            expected_balance[f.account_psn] -= paid_from_account
        if f.amounts["acct_pay"]:
            assert f.account_psn == f.psn_no
        if f.amounts["acct_mulaid_pay"]:
            person = world.person_of(f.psn_no)
            assert person.family_of is not None and f.account_psn == world.psn(person.family_of)
    return expected_balance


def balances(app: RegionApplication, world: World) -> dict[str, int]:
    return {psn: app.account_balance(psn) for psn in world.employees}


# --- properties ---------------------------------------------------------------------------------


@SETTINGS
@given(scenario=scenarios(), cuts=st.lists(st.integers(0, 50), max_size=2))
def test_every_settlement_balances_to_the_fen_and_no_cap_or_limit_is_ever_exceeded(
    app: RegionApplication, policy: Policy, scenario: tuple[list[Person], list[Visit]], cuts: list[int]
) -> None:
    world = build_world(*scenario)
    register(app, world)
    outcomes = settle_in_batches(app, world.claims, cuts)

    assert [o.status for o in outcomes] == ["settled"] * len(world.claims)
    for claim, outcome in zip(world.claims, outcomes, strict=True):
        facts = outcome.facts
        assert facts is not None
        assert (facts.setl_id, facts.psn_no, facts.version, facts.year) == (claim.setl_id, claim.psn_no, 1, YEAR)
        assert facts.policy_hash == policy.content_hash
        assert facts.amounts["medfee_sumamt"] == claim.medfee_sumamt
        assert facts.amounts["inscp_scp_amt"] == claim.inscp_scp_amt
        assert_balanced(facts.amounts)
        # nothing outside the policy range is paid by basic insurance
        assert facts.amounts["hifp_pay"] + facts.amounts["act_pay_dedc"] <= claim.inscp_scp_amt
        person = world.person_of(claim.psn_no)
        if not claim.use_acct or (person.insutype == "390" and person.family_of is None):
            assert facts.amounts["acct_pay"] == facts.amounts["acct_mulaid_pay"] == 0
        if person.insutype == "390":
            assert facts.amounts["acct_pay"] == 0

    for psn_no in world.psn_nos:
        assert_within_limits(app.usage(psn_no, YEAR), world.person_of(psn_no), policy)
    expected = assert_accumulators_match_settlements(app, world)
    assert balances(app, world) == expected
    assert all(balance >= 0 for balance in expected.values())


@SETTINGS
@given(scenario=scenarios(), data=st.data())
def test_reversing_any_subset_gives_back_exactly_what_those_settlements_took(
    app: RegionApplication, policy: Policy, scenario: tuple[list[Person], list[Visit]], data: st.DataObject
) -> None:
    world = build_world(*scenario)
    register(app, world)
    outcomes = app.settle_claims(world.claims)
    assert {o.status for o in outcomes} == {"settled"}
    before = balances(app, world)
    usage_before = {psn: app.usage(psn, YEAR) for psn in world.psn_nos}

    chosen = data.draw(st.lists(st.sampled_from(world.claims), unique=True), label="reversed")
    refunds = dict.fromkeys(world.employees, 0)
    taken_back = {psn: YearToDate() for psn in world.psn_nos}
    for claim in chosen:
        original = app.settlement(claim.setl_id)
        assert original is not None
        facts = app.reverse(claim.setl_id, operator="op-7", reason="hospital cancelled the visit")
        assert facts == original.current
        refund = facts.amounts["acct_pay"] + facts.amounts["acct_mulaid_pay"]
        if refund:
            refunds[facts.account_psn] += refund
        taken_back[facts.psn_no] = taken_back[facts.psn_no].plus(YearToDate.from_dict(facts.delta))
        reversed_ = app.settlement(claim.setl_id)
        assert reversed_ is not None and reversed_.reversed and reversed_.current.version == 1

    # the account gets back exactly what the reversed settlements took from it
    assert balances(app, world) == {psn: before[psn] + refunds[psn] for psn in world.employees}
    # every accumulator gives back exactly the reversed settlements' deltas
    for psn_no in world.psn_nos:
        assert app.usage(psn_no, YEAR) == usage_before[psn_no].minus(taken_back[psn_no])
        assert_within_limits(app.usage(psn_no, YEAR), world.person_of(psn_no), policy)
    expected = assert_accumulators_match_settlements(app, world)
    assert balances(app, world) == expected

    if chosen:
        # a reversal is final: neither reversed twice nor silently settled again
        with pytest.raises(SettlementReversed):
            app.reverse(chosen[0].setl_id, operator="op-7", reason="again")
        again = app.settle_claims([chosen[0]])
        assert (again[0].status, again[0].reason) == ("rejected", "settlement_reversed")
    if len(chosen) == len(world.claims):
        # everything reversed: every accumulator is back at zero, every account full again
        assert all(app.usage(psn, YEAR) == YearToDate() for psn in world.psn_nos)
        assert balances(app, world) == {psn: world.person_of(psn).acct_fen for psn in world.employees}


@SETTINGS
@given(scenario=scenarios())
def test_settling_the_same_batch_twice_changes_nothing(
    app: RegionApplication, scenario: tuple[list[Person], list[Visit]]
) -> None:
    world = build_world(*scenario)
    register(app, world)
    first = app.settle_claims(world.claims)
    assert {o.status for o in first} == {"settled"}
    position = app.recorder.max_notification_id()
    usage = {psn: app.usage(psn, YEAR) for psn in world.psn_nos}
    accounts = balances(app, world)

    second = app.settle_claims(world.claims)

    assert [o.status for o in second] == ["duplicate"] * len(world.claims)
    assert [o.facts for o in second] == [o.facts for o in first]
    assert app.recorder.max_notification_id() == position
    assert {psn: app.usage(psn, YEAR) for psn in world.psn_nos} == usage
    assert balances(app, world) == accounts
    # and once more, one claim at a time, in reverse order
    for claim, original in zip(reversed(world.claims), reversed(first), strict=True):
        (outcome,) = app.settle_claims([claim])
        assert (outcome.status, outcome.facts) == ("duplicate", original.facts)
    assert app.recorder.max_notification_id() == position
