"""The 定点 registry (issue 21) through the CLI: from a region's first registration, a claim at an
unknown institution, at one suspended or terminated on its date, or at another level than the
registry's, is rejected by name and records nothing; a claim at an institution in force settles."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.cli_store import claim_line, coded_runner, jsonl, lines, member_line, region_year
from tests.conftest import EXAMPLES

POLICY = EXAMPLES / "policy-330109-2023.toml"
MEMBER = member_line("IN-1")
REGISTRY = [
    {"fixmedins_code": "H-OK", "fixmedins_name": "城东医院", "fixmedins_type": "hospital", "hosp_lv": 2,
     "admdvs": "330109", "valid_from": "2023-01-01"},
    {"fixmedins_code": "H-SUS", "fixmedins_name": "城西医院", "fixmedins_type": "hospital", "hosp_lv": 1,
     "admdvs": "330109", "valid_from": "2023-01-01"},
    {"fixmedins_code": "H-END", "fixmedins_name": "城北医院", "fixmedins_type": "hospital", "hosp_lv": 3,
     "admdvs": "330109", "valid_from": "2023-01-01"},
    {"fixmedins_code": "P-01", "fixmedins_name": "仁心药店", "fixmedins_type": "pharmacy",
     "admdvs": "330109", "valid_from": "2023-01-01"},
]  # fmt: skip


def claim(setl_id: str, hospital: str, level: int, day: str) -> dict[str, Any]:
    return claim_line(setl_id, "IN-1", "2000.00", day=day, fixmedins_code=hospital, hosp_lv=level)


@pytest.fixture(scope="module")
def yibao(database_url: str) -> Any:
    run = coded_runner(database_url)
    region_year(run, POLICY, [MEMBER], [])
    before = lines(run("claims", "settle", "-", stdin=jsonl([claim("IN-BEFORE", "ANY-CODE", 1, "2023-02-01")])))
    assert before[0]["status"] == "settled"  # no institution registered yet: any code settles, as before
    imported = lines(run("institutions", "import", "-", "--operator", "clerk", stdin=jsonl(REGISTRY)))
    assert [r["status"] for r in imported] == ["recorded"] * 4
    run("institutions", "suspend", "H-SUS", "--from", "2023-03-01", "--to", "2023-03-31", "--reason", "飞行检查",
        "--operator", "clerk")  # fmt: skip
    run("institutions", "terminate", "H-END", "--on", "2023-06-01", "--reason", "欺诈骗保", "--operator", "clerk")
    return run


@pytest.mark.parametrize(
    ("hospital", "level", "day", "status", "reason"),
    [
        ("H-OK", 2, "2023-03-10", "settled", None),
        ("H-NONE", 2, "2023-03-10", "rejected", "unknown_institution"),
        ("H-SUS", 1, "2023-03-10", "rejected", "institution_suspended"),
        ("H-SUS", 1, "2023-04-01", "settled", None),  # the suspension ended on 31 March
        ("H-END", 3, "2023-05-31", "settled", None),
        ("H-END", 3, "2023-06-01", "rejected", "institution_terminated"),
        ("H-OK", 3, "2023-03-10", "rejected", "hosp_lv_mismatch"),
    ],
)
def test_a_claim_meets_the_registry_on_its_date(
    yibao: Any, hospital: str, level: int, day: str, status: str, reason: str | None
) -> None:
    setl_id = f"IN-{hospital}-{level}-{day}"
    got = lines(yibao("claims", "settle", "-", stdin=jsonl([claim(setl_id, hospital, level, day)])))[0]
    assert (got["status"], got.get("reason")) == (status, reason)
    if status == "rejected":
        yibao("trace", setl_id, code=1)  # nothing recorded for it
    else:
        # 2,000.00 inpatient, resident 390, per admission: (2,000 - 800) * the level's ratio
        # (90%, 80%, 70% at levels 1, 2, 3): the registry's level is the one paid at.
        assert got["hifp_pay"] == {1: "1080.00", 2: "960.00", 3: "840.00"}[level]


def test_importing_the_file_again_records_nothing(yibao: Any) -> None:
    again = lines(yibao("institutions", "import", "-", "--operator", "clerk", stdin=jsonl(REGISTRY)))
    assert [r["status"] for r in again] == ["unchanged"] * 4


def test_a_bad_line_is_named_and_the_others_are_recorded(yibao: Any) -> None:
    bad = {**REGISTRY[0], "fixmedins_code": "H-BAD", "fixmedins_type": "clinic"}
    elsewhere = {**REGISTRY[0], "fixmedins_code": "H-FAR", "admdvs": "110101"}
    new = {**REGISTRY[0], "fixmedins_code": "H-NEW"}
    got = lines(yibao("institutions", "import", "-", "--operator", "clerk", stdin=jsonl([bad, elsewhere, new]), code=1))
    assert [(r["status"], r.get("reason")) for r in got] == [
        ("rejected", "bad_fixmedins_type"), ("rejected", "unknown_region"), ("recorded", None),
    ]  # fmt: skip


def test_resume_ends_an_open_suspension_the_day_before(yibao: Any, tmp_path: Path) -> None:
    yibao("institutions", "suspend", "H-OK", "--from", "2023-08-01", "--reason", "整改", "--operator", "clerk")
    held = lines(yibao("claims", "settle", "-", stdin=jsonl([claim("IN-HELD", "H-OK", 2, "2023-08-20")])))[0]
    assert held["reason"] == "institution_suspended"
    resumed = lines(yibao("institutions", "resume", "H-OK", "--on", "2023-09-01", "--reason", "整改完成",
                          "--operator", "clerk"))  # fmt: skip
    assert resumed == [{"fixmedins_code": "H-OK", "change": "resumed", "status": "recorded"}]
    after = lines(yibao("claims", "settle", "-", stdin=jsonl([claim("IN-AFTER", "H-OK", 2, "2023-09-01")])))[0]
    assert after["status"] == "settled"
    listed = {r["fixmedins_code"]: r for r in lines(yibao("institutions", "list", "--on", "2023-08-31"))}
    assert listed["H-OK"]["standing"] == "institution_suspended"
    assert (listed["H-SUS"]["standing"], listed["H-END"]["standing"]) == ("active", "institution_terminated")
    assert listed["H-END"]["why"] == "agreement ended on 2023-06-01: 欺诈骗保"
    assert listed["P-01"]["hosp_lv"] == 0 and listed["P-01"]["fixmedins_type"] == "pharmacy"
    today = {r["fixmedins_code"]: r["standing"] for r in lines(yibao("institutions", "list"))}
    assert (today["H-OK"], today["H-END"]) == ("active", "institution_terminated")


def test_changes_to_an_unknown_institution_are_refused_by_name(yibao: Any) -> None:
    got = yibao("institutions", "suspend", "H-NONE", "--from", "2023-01-01", "--reason", "r", "--operator", "c", code=1)
    assert "unknown_institution" in got.stderr


def test_a_pharmacy_sells_and_only_sells(yibao: Any) -> None:
    def at(setl_id: str, code: str, med_type: str, level: int = 1) -> dict[str, Any]:
        line = {**claim(setl_id, code, level, "2023-10-10"), "med_type": med_type, "medfee_sumamt": "500.00",
                "inscp_scp_amt": "500.00"}  # fmt: skip
        return lines(yibao("claims", "settle", "-", stdin=jsonl([line])))[0]

    bought = at("IN-P-41", "P-01", "41")
    # Under the ordinary outpatient rules of a resident: (500 - the 300.00 annual deductible) x 60% at level 1.
    assert (bought["status"], bought["hifp_pay"], bought["med_type"], bought["clr_type"]) == (
        "settled", "120.00", "41", "41"
    )  # fmt: skip
    assert at("IN-P-11", "P-01", "11")["reason"] == "not_a_pharmacy_purchase"
    assert at("IN-P-52", "P-01", "52")["reason"] == "not_a_pharmacy_purchase"
    assert at("IN-H-41", "H-OK", "41")["reason"] == "not_a_pharmacy"
    # A pharmacy registered without a level is paid at level 1: a claim saying another is refused.
    assert at("IN-P-41-3", "P-01", "41", level=3)["reason"] == "hosp_lv_mismatch"
