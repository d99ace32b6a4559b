"""National ids and names on a settlement (SPEC 3.2, 4.2): the optional ids, a settlement time,
and the result's insutype, clr_type, hifob_pay and setldetail."""

from __future__ import annotations

import datetime as dt
import hashlib

import msgspec
import pytest

from core.records import RecordRejected, content_hash_of, parse_claim
from core.results import settlement_result
from core.settlement import SettlementFacts

CLAIM = {
    "setl_id": "S-1", "psn_no": "P-1", "fixmedins_code": "H-1", "hosp_lv": 3, "med_type": "21",
    "setl_time": "2024-03-05", "medfee_sumamt": "100.00", "fulamt_ownpay_amt": "0", "overlmt_selfpay": "0",
    "preselfpay_amt": "0", "inscp_scp_amt": "100.00",
}  # fmt: skip


def test_a_claim_without_the_new_fields_hashes_as_before() -> None:
    old_form = {
        "setl_id": "S-1", "psn_no": "P-1", "fixmedins_code": "H-1", "hosp_lv": 3, "med_type": "21",
        "setl_time": "2024-03-05", "medfee_sumamt": 10000, "fulamt_ownpay_amt": 0, "overlmt_selfpay": 0,
        "preselfpay_amt": 0, "inscp_scp_amt": 10000, "use_acct": True,
    }  # fmt: skip
    claim = parse_claim(CLAIM)
    assert claim.to_dict() == old_form
    assert claim.content_hash == hashlib.sha256(msgspec.json.encode(old_form, order="sorted")).hexdigest()


def test_the_ids_and_a_time_are_kept_and_hashed() -> None:
    claim = parse_claim({**CLAIM, "mdtrt_id": "M-9", "medins_setl_id": "HS-9", "setl_time": "2024-12-31 23:59:58"})
    assert claim.setl_time == dt.date(2024, 12, 31) and claim.year == 2024
    d = claim.to_dict()
    assert (d["mdtrt_id"], d["medins_setl_id"], d["setl_time"]) == ("M-9", "HS-9", "2024-12-31 23:59:58")
    assert type(claim).from_dict(d) == claim
    assert content_hash_of(d) != parse_claim(CLAIM).content_hash


@pytest.mark.parametrize(
    "value", ["2024-03-05 24:00:00", "2024-03-05T10:00:00", "2024-02-30 10:00:00", "2024-03-05 1:00:00"]
)
def test_a_bad_settlement_time_is_a_named_rejection(value: str) -> None:
    with pytest.raises(RecordRejected) as caught:
        parse_claim({**CLAIM, "setl_time": value})
    assert caught.value.reason == "bad_setl_time"


def _facts(insutype: str, med_type: str, claim_extra: dict[str, str] | None = None) -> SettlementFacts:
    amounts = {
        "medfee_sumamt": 100000, "inscp_scp_amt": 100000, "act_pay_dedc": 800, "hifp_pay": 60000,
        "hifmi_pay": 20000, "maf_pay": 5000, "hmb_pay": 1000, "charity_pay": 0, "fund_pay_sumamt": 85000,
        "psn_part_amt": 14000, "acct_pay": 4000, "acct_mulaid_pay": 0, "psn_cash_pay": 10000,
    }  # fmt: skip
    claim = {**parse_claim({**CLAIM, "med_type": med_type}).to_dict(), **(claim_extra or {})}
    return SettlementFacts(
        setl_id="S-1", version=1, psn_no="P-1", region="330109", year=2024, insutype=insutype,
        assist_category="none", claim=claim, content_hash="h", policy_hash="p", amounts=amounts,
        charity_referral=False, breakdown={}, delta={},
    )  # fmt: skip


def test_an_employees_serious_illness_tier_is_hifob_pay_of_fund_330100() -> None:
    out = settlement_result(_facts("310", "14", {"mdtrt_id": "M-1"}), "settled")
    assert (out["mdtrt_id"], out["insutype"], out["med_type"], out["clr_type"]) == ("M-1", "310", "14", "11")
    assert (out["hifmi_pay"], out["hifob_pay"], out["fund_pay_sumamt"]) == ("0.00", "200.00", "850.00")
    assert out["setldetail"] == [
        {"fund_pay_type": "310100", "fund_payamt": "600.00"},
        {"fund_pay_type": "330100", "fund_payamt": "200.00"},
        {"fund_pay_type": "610100", "fund_payamt": "50.00"},
        {"fund_pay_type": "HMB", "fund_payamt": "10.00"},
    ]
    assert out["refd_setl_flag"] == "0" and "medins_setl_id" not in out


def test_a_residents_serious_illness_fund_is_hifmi_pay_of_390200_and_a_reversal_is_negative() -> None:
    out = settlement_result(_facts("390", "21"), "reversed", sign=-1)
    assert (out["clr_type"], out["hifmi_pay"], out["hifob_pay"], out["refd_setl_flag"]) == (
        "21",
        "-200.00",
        "0.00",
        "1",
    )
    assert [d["fund_pay_type"] for d in out["setldetail"]] == ["390100", "390200", "610100", "HMB"]
    fund_sum = sum(int(out[n].replace(".", "")) for n in ("hifp_pay", "hifmi_pay", "hifob_pay", "maf_pay"))
    assert fund_sum == int(out["fund_pay_sumamt"].replace(".", "")) == -85000
