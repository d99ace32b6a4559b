"""A member payment (零星报销) never pays a settlement reversed between the sum it paid and its
save: the reversal touches the region's MemberPayables, so the payment's save fails on its
version and what is owed is summed again (the interleaving forced at that exact point).

Amounts from policy-330109-2023.toml, a resident inpatient at level 1: a claim of 10,000.00
pays basic (fund 390100) 0.9 x (10,000 - 800) = 8,280.00.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from app.region import RegionApplication
from core.hospital import OwedAt
from core.records import MemberRecord, parse_claim
from projections.statements import owed_reader
from tests.integration.test_payment_positions import app, other

__all__ = ["app", "other"]  # the region and the same region through another store: fixtures

REGION = "330109"
THROUGH = dt.date(2023, 12, 31)


def settle_to_member(app: RegionApplication, setl_id: str) -> None:
    psn_no = f"M-{setl_id}"
    record = MemberRecord(
        psn_no=psn_no, insuplc_admdvs=REGION, insutype="390", assist_category="none", chronic=False,
        supplementary=(), valid_from=dt.date(2023, 1, 1), family_of=None,
    )  # fmt: skip
    assert [o.status for o in app.import_members([record])] == ["recorded"]
    raw = {
        "setl_id": setl_id, "psn_no": psn_no, "fixmedins_code": "ABROAD", "hosp_lv": 1, "med_type": "21",
        "setl_time": "2023-03-01", "medfee_sumamt": "10000.00", "fulamt_ownpay_amt": "0.00", "overlmt_selfpay": "0.00",
        "preselfpay_amt": "0.00", "inscp_scp_amt": "10000.00", "payee": "member",
    }  # fmt: skip
    assert [o.status for o in app.settle_claims([parse_claim(raw)])] == ["settled"]


def test_a_reversal_between_the_sum_and_the_save_is_not_paid(app: RegionApplication, other: Any) -> None:
    settle_to_member(app, "MP-1")
    settle_to_member(app, "MP-2")
    read = owed_reader(app, THROUGH, members=True)
    sums: list[OwedAt] = []

    def read_then_reverse() -> OwedAt:
        at = read()
        sums.append(at)
        if len(sums) == 1:  # another process reverses MP-1 after this sum was read
            other.reverse("MP-1", operator="op", reason="double claim", on_date=dt.date(2023, 3, 5))
        return at

    payment = app.pay_members("MP-PAY", read_owed=read_then_reverse, through=THROUGH, paid_on=dt.date(2024, 1, 5),
                              operator="fin")  # fmt: skip
    assert sums[0].owed == {"M-MP-1": {"390100": 828000}, "M-MP-2": {"390100": 828000}}
    assert len(sums) == 2  # the first save lost to the reversal; summed again
    assert payment.paid == {"M-MP-2": {"390100": 828000}}
