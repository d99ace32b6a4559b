"""Member-year snapshots on PostgreSQL: a long member-year loads from its latest snapshot, equals
a full replay, still reverses claims applied before the snapshot, and a forged snapshot is named
by verify."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from app.region import RegionApplication
from core import snapshot
from core.ids import member_year_id
from core.policy import parse_policy
from core.records import MemberRecord, decode_line, parse_claim
from projections.verify import verify_region
from store.app import Store
from tests.conftest import EXAMPLES

REGION = "330109"
POLICY_FILE = EXAMPLES / "policy-330109-2023.toml"
CLAIMS = 240


def claim(n: int) -> object:
    line = {
        "setl_id": f"SN-{n}", "psn_no": "SN-1", "fixmedins_code": "H1", "hosp_lv": 1, "med_type": "11",
        "setl_time": f"2023-{1 + n % 12:02d}-{1 + n % 28:02d}", "medfee_sumamt": "20.00", "fulamt_ownpay_amt": "0.00",
        "overlmt_selfpay": "0.00", "preselfpay_amt": "0.00", "inscp_scp_amt": "20.00",
    }  # fmt: skip
    return parse_claim(decode_line(json.dumps(line).encode()))


@pytest.fixture(scope="module")
def app(store: Store) -> RegionApplication:
    store.add_region(REGION)
    region = store.region(REGION)
    policy = parse_policy(POLICY_FILE.read_bytes())
    region.record_policy(2023, policy.content_hash, POLICY_FILE.read_text(encoding="utf-8"))
    member = MemberRecord(
        psn_no="SN-1", insuplc_admdvs=REGION, insutype="390", assist_category="none", chronic=False,
        supplementary=(), valid_from=dt.date(2023, 1, 1),
    )  # fmt: skip
    region.import_members([member])
    claims = [claim(n) for n in range(CLAIMS)]
    for start in range(0, CLAIMS, 37):  # batches that cross the snapshot points at odd places
        assert {o.status for o in region.settle_claims(claims[start : start + 37])} == {"settled"}
    return region


def test_a_long_member_year_loads_from_its_latest_snapshot_and_equals_a_full_replay(app: RegionApplication) -> None:
    aggregate_id = member_year_id("SN-1", 2023)
    stored = app.recorder.select_events_of([aggregate_id])[aggregate_id]
    assert stored[0].topic == "MemberYear.Snapshot"
    # Version 1 opened it; batches of 37 claims end at versions 38, 75, ... 223, 241: the last one
    # to pass a multiple of 50 (200) ended at 223.
    assert stored[0].originator_version == 223
    assert len(stored) == 1 + (CLAIMS + 1 - 223)  # the snapshot, then the events after it
    loaded = app.member_year("SN-1", 2023)
    replayed = app.repository.get(aggregate_id)  # the library's full replay, no snapshot
    assert loaded is not None and snapshot.state_of(loaded) == snapshot.state_of(replayed)
    assert loaded.version == CLAIMS + 1


def test_a_claim_applied_before_the_snapshot_is_reversed_exactly(app: RegionApplication) -> None:
    before = app.member_year("SN-1", 2023)
    assert before is not None
    given_back = before.applied["SN-3"].delta
    app.reverse("SN-3", operator="auditor-1", reason="duplicate bill", on_date=dt.date(2023, 12, 30))
    after = app.member_year("SN-1", 2023)
    assert after is not None and "SN-3" not in after.applied
    assert after.ytd == before.ytd.minus(given_back)
    assert snapshot.state_of(after) == snapshot.state_of(app.repository.get(member_year_id("SN-1", 2023)))


def test_verify_checks_every_snapshot_and_names_a_forged_one(app: RegionApplication, store: Store) -> None:
    findings = verify_region(app)
    assert findings.problems == [] and findings.checked["snapshots"] == 4  # at 75, 112, 186, 223
    with store.connect_admin() as conn:
        conn.execute("ALTER TABLE region_330109.snapshots DISABLE TRIGGER USER")
        try:
            row = conn.execute(
                "SELECT originator_id, originator_version, state FROM region_330109.snapshots "
                "ORDER BY originator_version DESC LIMIT 1"
            ).fetchone()
            assert row is not None
            state = json.loads(bytes(row[2]))
            state["ytd"]["basic_paid"] -= 100_000  # a thousand yuan of headroom, forged
            conn.execute(
                "UPDATE region_330109.snapshots SET state = %s WHERE originator_id = %s AND originator_version = %s",
                (json.dumps(state).encode(), row[0], row[1]),
            )
            problems = verify_region(app).problems
        finally:
            conn.execute(
                "UPDATE region_330109.snapshots SET state = %s WHERE originator_id = %s AND originator_version = %s",
                (bytes(row[2]), row[0], row[1]),
            )
            conn.execute("ALTER TABLE region_330109.snapshots ENABLE TRIGGER USER")
    assert problems == [f"snapshot of aggregate {row[0]} at version {row[1]} differs from its events"]
    assert verify_region(app).problems == []
