"""Look-back reaches every claim it should (issue 17 item 6, SPEC 4.1): a member recognised
illness_poverty from D gets assistance on every settlement dated from six months before D for
as long as the recognition is in force, settled under an earlier record, in the years they fall
in, once; claims dated after D but settled before the recognition was imported included."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from app.region import RegionApplication
from core.policy import parse_policy
from core.records import MemberRecord, parse_claim
from store.app import Store
from store.server import ServerLocation
from tests.conftest import EXAMPLES

REGION = "330109"


@pytest.fixture(scope="module")
def app(store: Store) -> RegionApplication:
    store.add_region(REGION)
    application = store.region(REGION)
    for year, path in ((2023, EXAMPLES / "policy-330109-2023.toml"), (2024, EXAMPLES / "basic-year/policy-2024.toml")):
        application.record_policy(year, parse_policy(path.read_bytes()).content_hash, path.read_text(encoding="utf-8"))
    return application


def member(psn_no: str, valid_from: str, category: str = "none", *, chronic: bool = False) -> MemberRecord:
    return MemberRecord(
        psn_no=psn_no, insuplc_admdvs=REGION, insutype="390", assist_category=category, chronic=chronic,
        supplementary=(), valid_from=dt.date.fromisoformat(valid_from), family_of=None,
    )  # fmt: skip


def inpatient(setl_id: str, psn_no: str, setl_time: str) -> Any:
    """10,000.00 at a level-1 hospital: 800.00 deductible, 90% of the rest; 1,720.00 left to the person."""
    return parse_claim(
        {
            "setl_id": setl_id, "psn_no": psn_no, "fixmedins_code": "H001", "hosp_lv": 1, "med_type": "21",
            "setl_time": setl_time, "medfee_sumamt": "10000.00", "fulamt_ownpay_amt": "0.00",
            "overlmt_selfpay": "0.00", "preselfpay_amt": "0.00", "inscp_scp_amt": "10000.00",
        }
    )  # fmt: skip


def test_look_back_spans_two_years_and_reaches_claims_dated_after_recognition_until_the_next_record(
    app: RegionApplication,
) -> None:
    # The next record (chronic from June 2024) is known before the recognition is imported.
    app.import_members([member("LB", "2023-01-01"), member("LB", "2024-06-01", chronic=True)])
    settled = app.settle_claims(
        [
            inpatient("LB-1", "LB", "2023-07-31"),  # before the window of a recognition on 2024-02-01
            inpatient("LB-2", "LB", "2023-10-01"),  # in the window, in 2023
            inpatient("LB-3", "LB", "2024-03-01"),  # after recognition, settled before it was imported
            inpatient("LB-4", "LB", "2024-07-01"),  # after the next record: no longer illness_poverty
        ]
    )
    assert [o.facts.amounts["psn_part_amt"] for o in settled if o.facts] == [172_000] * 4

    (recognised,) = app.import_members([member("LB", "2024-02-01", "illness_poverty")])

    # 60% of the 1,720.00 left on each, within each year's limits.
    assert recognised.extra["lookback"] == [
        {"setl_id": "LB-2", "year": 2023, "maf_pay": "1032.00"},
        {"setl_id": "LB-3", "year": 2024, "maf_pay": "1032.00"},
    ]
    assert {s: app.settlement(s).current.lookback_maf for s in ("LB-1", "LB-2", "LB-3", "LB-4")} == {  # type: ignore[union-attr]
        "LB-1": 0, "LB-2": 103_200, "LB-3": 103_200, "LB-4": 0,
    }  # fmt: skip
    assert (app.usage("LB", 2023).assistance_paid, app.usage("LB", 2024).assistance_paid) == (103_200, 103_200)

    # Once: the same record again records nothing and pays nothing.
    (again,) = app.import_members([member("LB", "2024-02-01", "illness_poverty")])
    assert (again.status, again.extra) == ("unchanged", {})
    assert app.usage("LB", 2024).assistance_paid == 103_200


def test_a_claim_settled_as_illness_poverty_gets_no_look_back_on_top(app: RegionApplication) -> None:
    app.import_members([member("LC", "2023-01-01", "illness_poverty")])
    (outcome,) = app.settle_claims([inpatient("LC-1", "LC", "2023-05-01")])
    assert outcome.facts is not None and outcome.facts.amounts["maf_pay"] == 103_200
    app.import_members([member("LC", "2023-03-01")])  # recognition lifted from March...
    (again,) = app.import_members([member("LC", "2023-04-01", "illness_poverty")])  # ...and given back in April
    assert again.extra.get("lookback", []) == []
    assert app.usage("LC", 2023).assistance_paid == 103_200


def test_a_claim_in_the_window_arriving_after_the_recognition_gets_its_look_back_when_settled(
    app: RegionApplication,
) -> None:
    app.import_members([member("LD", "2023-01-01")])
    app.settle_claims([inpatient("LD-1", "LD", "2023-05-01")])
    (recognised,) = app.import_members([member("LD", "2023-09-01", "illness_poverty")])
    assert recognised.extra["lookback"] == [{"setl_id": "LD-1", "year": 2023, "maf_pay": "1032.00"}]
    # Dated in the window (before the recognition), submitted after it: the same assistance, at once.
    (late,) = app.settle_claims([inpatient("LD-2", "LD", "2023-05-02")])
    assert late.facts is not None and late.facts.amounts["maf_pay"] == 0  # settled under the earlier record
    assert app.settlement("LD-2").current.lookback_maf == 103_200  # type: ignore[union-attr]
    assert app.usage("LD", 2023).assistance_paid == 206_400
    # Before the window: nothing.
    app.settle_claims([inpatient("LD-3", "LD", "2023-02-28")])
    assert app.settlement("LD-3").current.lookback_maf == 0  # type: ignore[union-attr]
    assert app.usage("LD", 2023).assistance_paid == 206_400


def test_a_recognition_committed_between_a_claims_read_and_its_save_still_reaches_the_claim(
    app: RegionApplication, location: ServerLocation
) -> None:
    """Found by QA: a claim settled under the earlier record while the recognition was being
    imported lost its look-back. The recognition now touches the member's member-years, so the
    claim's save conflicts and it is settled again under the new record."""
    app.import_members([member("LR", "2023-01-01")])
    read = app.recorder.select_events_of
    calls = 0

    def recognise_in_between(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        found = read(*args, **kwargs)
        calls += 1
        if calls == 1:  # another process imports the recognition after this batch read the member
            with Store(location) as other:
                (done,) = other.region(REGION).import_members([member("LR", "2023-09-01", "illness_poverty")])
                assert done.status == "recorded"
        return found

    app.recorder.select_events_of = recognise_in_between
    try:
        (outcome,) = app.settle_claims([inpatient("LR-1", "LR", "2023-09-05")])
    finally:
        app.recorder.select_events_of = read
    assert calls > 1  # settled again after losing to the recognition
    # Settled under the recognition: 60% of the 1,720.00 left, as assistance at settlement.
    assert outcome.facts is not None and outcome.facts.amounts["maf_pay"] == 103_200
    assert app.usage("LR", 2023).assistance_paid == 103_200


def test_a_recognition_ended_and_given_again_does_not_look_back_twice(app: RegionApplication) -> None:
    app.import_members([member("LE", "2023-01-01")])
    app.settle_claims([inpatient("LE-1", "LE", "2023-05-01")])
    (first,) = app.import_members([member("LE", "2023-08-01", "illness_poverty")])
    assert first.extra["lookback"] == [{"setl_id": "LE-1", "year": 2023, "maf_pay": "1032.00"}]
    app.import_members([member("LE", "2023-09-01")])  # recognition ended...
    (again,) = app.import_members([member("LE", "2023-10-01", "illness_poverty")])  # ...and given again
    assert again.extra.get("lookback", []) == []
    assert app.usage("LE", 2023).assistance_paid == 103_200
