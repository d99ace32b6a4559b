"""A payment is summed only from journal entries that still balance (found by QA: one journal row
edited by a superuser made `finance pay` pay a hospital 1,000,000.00 more than it was owed)."""

from __future__ import annotations

import datetime as dt

import pytest

from core.records import MemberRecord, parse_claim
from projections.read_model import ReadModelInconsistent, catch_up
from projections.statements import owed_reader
from store.app import Store
from tests.conftest import example_region

REGION = "330109"


def test_a_payment_over_a_journal_entry_changed_by_hand_is_refused_and_records_nothing(store: Store) -> None:
    app = example_region(store, REGION, overdraft=True)
    app.import_members([MemberRecord(
        psn_no="PB-1", insuplc_admdvs=REGION, insutype="390", assist_category="none", chronic=False,
        supplementary=(), valid_from=dt.date(2023, 1, 1), family_of=None,
    )])  # fmt: skip
    app.settle_claims([parse_claim({
        "setl_id": "PB-S1", "psn_no": "PB-1", "fixmedins_code": "H-PB", "hosp_lv": 1, "med_type": "21",
        "setl_time": "2023-03-01", "medfee_sumamt": "10000.00", "fulamt_ownpay_amt": "0.00",
        "overlmt_selfpay": "0.00", "preselfpay_amt": "0.00", "inscp_scp_amt": "10000.00",
    })])  # fmt: skip
    catch_up(app)
    with store.connect_admin() as conn:
        conn.execute(
            "UPDATE region_330109.journal SET amount = amount - 100000000 WHERE party = 'H-PB' "
            "AND account = 'payable_to_hospitals'"
        )
    head = app.region_log.max_notification_id()
    with pytest.raises(ReadModelInconsistent, match=r"not balanced: .*nothing paid"):
        app.pay_hospitals(
            ["H-PB"], payment_id="PB-PAY", read_owed=owed_reader(app, dt.date(2023, 12, 31)),
            through=dt.date(2023, 12, 31), paid_on=dt.date(2023, 12, 31), operator="fin-1",
        )  # fmt: skip
    assert app.region_log.max_notification_id() == head
