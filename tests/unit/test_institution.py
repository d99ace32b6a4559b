"""The 定点 registry's pure rules (core.institution, core.settle.at_institution)."""

from __future__ import annotations

import datetime as dt

import pytest

from core import settle
from core.institution import Institution, InstitutionRegistry, InstitutionRejected, Standing, standing
from core.records import Claim, RecordRejected, parse_claim, parse_institution

D = dt.date.fromisoformat
HOSPITAL = Institution("H1", "城东医院", "hospital", 2, "330109", "2023-02-01")


def registry() -> InstitutionRegistry:
    made = InstitutionRegistry(region="330109")
    assert made.register(HOSPITAL, "clerk")
    return made


def test_an_empty_or_absent_registry_accepts_any_institution() -> None:
    assert standing(None, "ANY", D("2023-03-01")) == (Standing.ACTIVE, None)
    assert standing(InstitutionRegistry(region="330109"), "ANY", D("2023-03-01")) == (Standing.ACTIVE, None)


def test_standing_on_each_date() -> None:
    made = registry()
    assert made.suspend("H1", D("2023-03-01"), D("2023-03-31"), "飞行检查", "clerk")
    assert made.terminate("H1", D("2023-07-01"), "欺诈骗保", "clerk")
    got = {
        day: standing(made, "H1", D(day))[0]
        for day in ("2023-01-31", "2023-02-01", "2023-03-01", "2023-03-31", "2023-04-01", "2023-06-30", "2023-07-01")
    }
    assert got == {
        "2023-01-31": Standing.UNKNOWN, "2023-02-01": Standing.ACTIVE, "2023-03-01": Standing.SUSPENDED,
        "2023-03-31": Standing.SUSPENDED, "2023-04-01": Standing.ACTIVE, "2023-06-30": Standing.ACTIVE,
        "2023-07-01": Standing.TERMINATED,
    }  # fmt: skip
    assert standing(made, "H2", D("2023-04-01"))[0] is Standing.UNKNOWN


def test_resume_ends_the_open_suspension_the_day_before_and_only_that() -> None:
    made = registry()
    made.suspend("H1", D("2023-05-01"), None, "整改", "clerk")
    with pytest.raises(InstitutionRejected) as none:  # none in force then: refused, nothing recorded
        made.resume("H1", D("2023-04-30"), "early", "clerk")
    assert none.value.reason == "no_suspension"
    assert made.resume("H1", D("2023-06-10"), "整改完成", "clerk")
    assert [standing(made, "H1", D(d))[0] for d in ("2023-06-09", "2023-06-10")] == [
        Standing.SUSPENDED,
        Standing.ACTIVE,
    ]


def test_changes_recorded_once() -> None:
    made = registry()
    assert not made.register(HOSPITAL, "clerk")
    assert made.suspend("H1", D("2023-03-01"), None, "r", "clerk")
    assert not made.suspend("H1", D("2023-03-01"), None, "r", "clerk")
    assert made.terminate("H1", D("2023-07-01"), "r", "clerk")
    assert not made.terminate("H1", D("2023-07-01"), "r", "clerk")
    with pytest.raises(InstitutionRejected) as moved:  # ended already, on another date
        made.terminate("H1", D("2023-05-01"), "r", "clerk")
    assert moved.value.reason == "already_terminated"
    assert len(made.pending_events) == 4  # opened, registered, suspended, terminated


def test_refusals_are_named() -> None:
    made = registry()
    with pytest.raises(InstitutionRejected) as unknown:
        made.suspend("H9", D("2023-03-01"), None, "r", "clerk")
    assert unknown.value.reason == "unknown_institution"
    with pytest.raises(InstitutionRejected) as backwards:
        made.suspend("H1", D("2023-03-01"), D("2023-02-01"), "r", "clerk")
    assert backwards.value.reason == "bad_period"
    with pytest.raises(InstitutionRejected) as elsewhere:
        made.register(Institution("H2", "n", "hospital", 1, "110101", "2023-01-01"), "clerk")
    assert elsewhere.value.reason == "wrong_region"


def claim_at(code: str, level: int, day: str = "2023-03-10") -> Claim:
    return parse_claim({
        "setl_id": "S1", "psn_no": "P1", "fixmedins_code": code, "hosp_lv": level, "med_type": "21",
        "setl_time": day, "medfee_sumamt": "100.00", "fulamt_ownpay_amt": "0.00", "overlmt_selfpay": "0.00",
        "preselfpay_amt": "0.00", "inscp_scp_amt": "100.00",
    })  # fmt: skip


def test_the_registry_level_decides() -> None:
    made = registry()
    assert settle.at_institution(claim_at("H1", 2), made) is None
    refused = settle.at_institution(claim_at("H1", 3), made)
    assert refused is not None and refused.reason is settle.Rejection.HOSP_LV_MISMATCH
    unknown = settle.at_institution(claim_at("H1", 2, "2023-01-15"), made)
    assert unknown is not None and unknown.reason is settle.Rejection.UNKNOWN_INSTITUTION
    assert unknown.detail == "registered from 2023-02-01"


def test_a_pharmacy_may_leave_its_level_out_a_hospital_may_not() -> None:
    line = {"fixmedins_code": "P1", "fixmedins_name": "仁心药店", "fixmedins_type": "pharmacy", "admdvs": "330109",
            "valid_from": "2023-01-01"}  # fmt: skip
    assert parse_institution(line).hosp_lv == 0
    with pytest.raises(RecordRejected) as missing:
        parse_institution({**line, "fixmedins_type": "hospital"})
    assert missing.value.reason == "bad_hosp_lv"
    with pytest.raises(RecordRejected) as blank:
        parse_institution({**line, "fixmedins_name": "  "})
    assert blank.value.reason == "bad_fixmedins_name"


def test_registrations_count_by_their_dates_not_the_order_they_were_imported() -> None:
    made = registry()
    later = Institution("H1", "城东医院", "hospital", 3, "330109", "2023-10-01")
    assert made.register(later, "clerk")
    assert not made.register(HOSPITAL, "clerk")  # the older file again: nothing recorded
    entry = made.entries["H1"]
    assert [entry.registration_on(d).hosp_lv for d in ("2023-09-30", "2023-10-20")] == [2, 3]  # type: ignore[union-attr]


def test_a_registration_after_a_termination_is_a_new_agreement() -> None:
    made = registry()
    made.terminate("H1", D("2023-06-01"), "欺诈骗保", "clerk")
    assert made.register(Institution("H1", "城东医院", "hospital", 2, "330109", "2023-09-01"), "clerk")
    days = ("2023-05-31", "2023-06-01", "2023-08-31", "2023-09-01")
    assert [standing(made, "H1", D(d))[0] for d in days] == [
        Standing.ACTIVE, Standing.TERMINATED, Standing.TERMINATED, Standing.ACTIVE,
    ]  # fmt: skip
    assert made.terminate("H1", D("2023-12-01"), "again", "clerk")  # the new agreement may end too
    assert standing(made, "H1", D("2023-07-01"))[1] == "agreement ended on 2023-06-01: 欺诈骗保"
    assert standing(made, "H1", D("2023-12-01"))[1] == "agreement ended on 2023-12-01: again"
