"""The rules of a reconciliation (core/reconcile.py): totals compared to the fen, a difference
named per (setl_id, refd_setl_flag), hospital lines read from JSON or the national TAB file."""

from __future__ import annotations

import pytest

from core.reconcile import compare_totals, difference, parse_detail, parse_totals, signed_yuan, summary, totals_result
from core.records import RecordRejected

TOTALS = {
    "fixmedins_code": "H001", "insutype": "390", "clr_type": "21", "stmt_begndate": "2023-03-01",
    "stmt_enddate": "2023-03-31", "medfee_sumamt": "5000.00", "fund_pay_sumamt": "3060.00", "acct_pay": "0.00",
    "fixmedins_setl_cnt": 4,
}  # fmt: skip
CENTER = {"medfee_sumamt": 500000, "fund_pay_sumamt": 306000, "acct_pay": 0, "fixmedins_setl_cnt": 4}


def test_totals_agree_only_to_the_fen() -> None:
    assert compare_totals(CENTER, CENTER) == ("0", [])
    off = {**CENTER, "acct_pay": 1, "fixmedins_setl_cnt": 3}
    assert compare_totals(off, CENTER) == ("1", ["acct_pay", "fixmedins_setl_cnt"])


def test_a_totals_line_keeps_its_keys_and_gets_the_centres_figures() -> None:
    out, verdict = totals_result({**TOTALS, "medfee_sumamt": "5000.01"}, CENTER)
    assert verdict == "1" and out["stmt_rslt_dscr"] == "medfee_sumamt"
    assert out["center"] == {"medfee_sumamt": "5000.00", "fund_pay_sumamt": "3060.00", "acct_pay": "0.00",
                             "fixmedins_setl_cnt": 4}  # fmt: skip
    assert out["medfee_sumamt"] == "5000.01"


def test_refunds_are_in_unless_the_flag_is_0() -> None:
    assert parse_totals(TOTALS).with_refunds
    assert parse_totals({**TOTALS, "refd_setl_flag": "1"}).with_refunds
    assert not parse_totals({**TOTALS, "refd_setl_flag": "0"}).with_refunds


@pytest.mark.parametrize(
    ("change", "reason"),
    [({"refd_setl_flag": "2"}, "bad_refd_setl_flag"), ({"clr_type": "14"}, "bad_clr_type"),
     ({"stmt_enddate": "2023-02-28"}, "bad_period"), ({"fixmedins_setl_cnt": 1.5}, "bad_fixmedins_setl_cnt"),
     ({"acct_pay": "0.001"}, "amount_too_precise"), ({"extra": 1}, "unknown_field")],
)  # fmt: skip
def test_a_bad_totals_line_is_a_named_rejection(change: dict[str, object], reason: str) -> None:
    with pytest.raises(RecordRejected) as caught:
        parse_totals({**TOTALS, **change})
    assert caught.value.reason == reason


def test_reversal_amounts_are_negative_fen() -> None:
    assert (signed_yuan("x", "-180.00"), signed_yuan("x", "180.5"), signed_yuan("x", "-0.01")) == (-18000, 18050, -1)


def test_a_tab_line_and_a_json_line_are_the_same_line() -> None:
    tab = parse_detail(b"RC-3\tM-RC-3\tRC-1\t-1000.00\t-180.00\t0.00\t1\n")
    js = parse_detail(b'{"setl_id": "RC-3", "mdtrt_id": "M-RC-3", "psn_no": "RC-1", "medfee_sumamt": "-1000.00",'
                      b' "fund_pay_sumamt": "-180.00", "acct_pay": "0.00", "refd_setl_flag": "1"}')  # fmt: skip
    assert tab == js and tab.amounts == (-100000, -18000, 0) and tab.refd_setl_flag == "1"
    with pytest.raises(RecordRejected) as caught:
        parse_detail(b"RC-3\t-1000.00\n")
    assert caught.value.reason == "bad_detail_line"


def test_each_kind_of_difference_is_named() -> None:
    assert difference("S", "0", (100, 80, 0), (100, 80, 0)) is None
    assert difference("S", "0", (100, 80, 0), None)["reason"] == "only_in_center"  # type: ignore[index]
    assert difference("S", "1", None, (-100, -80, 0))["reason"] == "only_in_hospital"  # type: ignore[index]
    differ = difference("S", "0", (100, 80, 20), (100, 79, 20))
    assert differ == {"setl_id": "S", "refd_setl_flag": "0", "stmt_rslt": "1", "reason": "amounts_differ",
                      "fields": {"fund_pay_sumamt": {"center": "0.80", "hospital": "0.79"}}}  # fmt: skip
    assert summary({"matched": 3, "amounts_differ": 1}) == {
        "summary": True, "matched": 3, "only_in_center": 0, "only_in_hospital": 0, "amounts_differ": 1}  # fmt: skip
