"""`yibao verify` holds each settlement to the caps of the policy version it recorded, with the
chronic outpatient bonus only for a member registered chronic on its date (issue 17 item 4)."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import attrs
import pytest

from app.region import RegionApplication
from core import settle
from core.ids import member_year_id
from core.member_year import MemberYear
from core.policy import Policy, parse_policy
from core.records import MemberRecord, parse_claim
from projections.verify import verify_region
from store.app import Store
from tests.conftest import EXAMPLES

REGIONS = (f"3301{n}" for n in itertools.count(20))  # a region of each test's own


def member(
    app: RegionApplication, psn_no: str, *, chronic: bool = False, valid_from: str = "2023-01-01"
) -> MemberRecord:
    return MemberRecord(
        psn_no=psn_no, insuplc_admdvs=app.region, insutype="390", assist_category="none", chronic=chronic,
        supplementary=(), valid_from=dt.date.fromisoformat(valid_from), family_of=None,
    )  # fmt: skip


def outpatient(setl_id: str, psn_no: str, setl_time: str, inscp: str) -> Any:
    """An ordinary outpatient claim at a level-1 hospital: 300.00 deductible, then 60%."""
    return parse_claim(
        {
            "setl_id": setl_id, "psn_no": psn_no, "fixmedins_code": "H001", "hosp_lv": 1, "med_type": "11",
            "setl_time": setl_time, "medfee_sumamt": inscp, "fulamt_ownpay_amt": "0.00", "overlmt_selfpay": "0.00",
            "preselfpay_amt": "0.00", "inscp_scp_amt": inscp,
        }
    )  # fmt: skip


def problems(app: RegionApplication) -> list[str]:
    return verify_region(app).problems


def settled_with_terms(app: RegionApplication, record: MemberRecord, claim: Any) -> None:
    """Record a settlement decided on `record` whatever the member's own records say: a defect
    that verify must find (the service layer never does this)."""
    policy = app.policy_book(claim.year)
    assert policy is not None
    uow = app.unit_of_work()
    member_year = uow.get(member_year_id(claim.psn_no, claim.year), MemberYear) or uow.add(
        MemberYear(psn_no=claim.psn_no, year=claim.year)
    )
    decided = settle.decide(
        claim, region=app.region, record=record, policy=parse_policy(policy.current[1].encode()), ytd=member_year.ytd,
        accounts=settle.Accounts(), version=1,
    )  # fmt: skip
    app._record_settlement(uow, None, member_year, decided, None, None)
    app.save_aggregates(uow.changed())


@pytest.fixture
def app(store: Store) -> RegionApplication:
    region = next(REGIONS)
    text = (EXAMPLES / "policy-330109-2023.toml").read_text(encoding="utf-8")
    text = text.replace('region = "330109"', f'region = "{region}"')
    store.add_region(region)
    application = store.region(region)
    application.record_policy(2023, parse_policy(text.encode()).content_hash, text)
    return application


def lower_outpatient_cap(app: RegionApplication, cap: str) -> Policy:
    book = app.policy_book(2023)
    assert book is not None
    text = book.current[1].replace('outpatient_annual_cap = "2000.00"', f'outpatient_annual_cap = "{cap}"', 1)
    policy = parse_policy(text.encode())
    app.record_policy(2023, policy.content_hash, text)
    return policy


def test_a_later_policy_version_with_a_lower_cap_leaves_an_unchanged_store_clean(app: RegionApplication) -> None:
    app.import_members([member(app, "R-1")])
    (outcome,) = app.settle_claims([outpatient("CAP-1", "R-1", "2023-03-01", "5000.00")])
    assert outcome.facts is not None and outcome.facts.amounts["hifp_pay"] == 200_000  # the 2,000.00 sub-cap
    assert problems(app) == []
    lower_outpatient_cap(app, "1000.00")
    assert problems(app) == []
    # A claim settled under the new version pays nothing more: it raised nothing, so no cap binds it.
    (later,) = app.settle_claims([outpatient("CAP-2", "R-1", "2023-04-01", "800.00")])
    assert later.facts is not None and later.facts.amounts["hifp_pay"] == 0
    assert problems(app) == []


def test_a_settlement_over_the_cap_of_its_own_policy_version_is_named(app: RegionApplication) -> None:
    app.import_members([member(app, "R-2")])
    generous = attrs.evolve(member(app, "R-2"), chronic=True)  # a bonus the member does not have
    settled_with_terms(app, generous, outpatient("CAP-3", "R-2", "2023-03-01", "6000.00"))
    assert [p.split(": ", 1)[1] for p in problems(app)] == [
        f"settlement CAP-3 v1 (policy {app.policy_book(2023).current[0][:12]}): "  # type: ignore[union-attr]
        "basic_outpatient_paid 250000 over its cap 200000"
    ]


def test_the_chronic_bonus_counts_from_the_date_the_member_was_registered_chronic(app: RegionApplication) -> None:
    for psn_no in ("R-3", "R-5"):
        app.import_members([member(app, psn_no), member(app, psn_no, chronic=True, valid_from="2023-07-01")])
    # Paid with the bonus after registration: within the sub-cap plus the bonus.
    (outcome,) = app.settle_claims([outpatient("CAP-4", "R-3", "2023-08-01", "6000.00")])
    assert outcome.facts is not None and outcome.facts.amounts["hifp_pay"] == 250_000
    assert problems(app) == []
    # The same bonus before registration is over the cap.
    settled_with_terms(app, member(app, "R-5", chronic=True), outpatient("CAP-5", "R-5", "2023-03-01", "6000.00"))
    found = problems(app)
    assert len(found) == 1 and "settlement CAP-5 v1" in found[0]
    assert found[0].endswith("basic_outpatient_paid 250000 over its cap 200000")


def test_a_registration_withdrawn_later_does_not_make_a_settlement_made_under_it_wrong(app: RegionApplication) -> None:
    app.import_members([member(app, "R-4", chronic=True)])
    (outcome,) = app.settle_claims([outpatient("CAP-6", "R-4", "2023-03-01", "6000.00")])
    assert outcome.facts is not None and outcome.facts.amounts["hifp_pay"] == 250_000
    app.import_members([member(app, "R-4", valid_from="2023-02-01")])  # not chronic from before that claim
    assert problems(app) == []
