"""Member files in any order, on PostgreSQL (SPEC 3.1): a `family_of` binds whatever the line
order and the batch it falls in; a binding that cannot be made keeps the record and names its
refusal; the same file again records nothing. And a claim dated before a member's first record
is rejected naming the date, also when another region is asked first.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import msgspec
import pytest

from app.region import RegionApplication
from bulk import batch
from bulk.batch import import_contributions, import_members, settle_lines
from core.records import parse_member
from store.app import Store

A, B = "330109", "330110"


@pytest.fixture(scope="module")
def regions(store: Store) -> tuple[RegionApplication, RegionApplication]:
    for code in (A, B):
        store.add_region(code)
    return store.region(A), store.region(B)


def record(psn_no: str, valid_from: str, insutype: str = "390", family_of: str | None = None) -> dict[str, Any]:
    line = {"psn_no": psn_no, "insuplc_admdvs": A, "insutype": insutype, "assist_category": "none",
            "valid_from": valid_from}  # fmt: skip
    return line | ({"family_of": family_of} if family_of else {})


def member_file(store: Store, lines: list[dict[str, Any]], batch_size: int = 500) -> list[dict[str, Any]]:
    """Each line's output, in line order (those with a family_of are answered last)."""
    raw = [msgspec.json.encode(line) for line in lines]
    results = sorted(import_members(store, enumerate(raw, 1), batch_size=batch_size), key=lambda r: r.line_no)
    return [r.output for r in results]


def family_lines(p: str) -> list[dict[str, Any]]:
    """Dependents and the employees they name, `p` a prefix of every psn_no."""
    return [
        record(f"{p}KID1", "2023-01-01", family_of=f"{p}EMP1"),
        record(f"{p}EMP1", "2023-01-01", "310"),
        record(f"{p}KID2", "2023-01-01", family_of=f"{p}EMP2"),  # EMP2 is a resident until April
        record(f"{p}KID2", "2023-05-01", family_of=f"{p}EMP2"),  # the latest: EMP2 an employee by then
        record(f"{p}EMP2", "2023-01-01"),
        record(f"{p}EMP2", "2023-04-01", "310"),
        record(f"{p}KID4", "2023-01-01", family_of=f"{p}RES4"),
        record(f"{p}RES4", "2023-01-01"),
        record(f"{p}KID5", "2023-01-01", family_of=f"{p}EMP5"),
        record(f"{p}KID5", "2023-03-01"),  # the latest names no employee
        record(f"{p}EMP5", "2023-01-01", "310"),
    ]


EXPECTED = [  # (status, binding status, binding reason) per line of family_lines
    ("recorded", "bound", None), ("recorded", None, None),
    ("recorded", "refused", "not_an_employee"), ("recorded", "bound", None),
    ("recorded", None, None), ("recorded", None, None),
    ("recorded", "refused", "not_an_employee"), ("recorded", None, None),
    ("recorded", "superseded", None), ("recorded", None, None), ("recorded", None, None),
]  # fmt: skip


def bindings(app: RegionApplication, p: str) -> list[str | None]:
    return [app.member(f"{p}{kid}").family_employee for kid in ("KID1", "KID2", "KID4", "KID5")]


def summary(output: dict[str, Any]) -> tuple[str, str | None, str | None]:
    binding = output.get("binding", {})
    return output["status"], binding.get("status"), binding.get("reason")


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("batch_size", [1, 3, 500])
def test_a_family_of_binds_the_same_whatever_the_line_order_and_the_batch_it_falls_in(
    store: Store,
    regions: tuple[RegionApplication, RegionApplication],
    seed: int,
    batch_size: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a, _ = regions
    if batch_size == 3:  # the lines waiting for their binding go to a temporary file, as a large file's do
        monkeypatch.setattr(batch._HeldLines, "held_bytes_max", 100)
    p = f"O{seed}B{batch_size}-"
    lines = list(enumerate(family_lines(p)))
    random.Random(seed).shuffle(lines)  # seed 0..3: dependents before and after their employees

    out = member_file(store, [line for _, line in lines], batch_size)

    answered = {i: summary(output) for (i, _), output in zip(lines, out, strict=True)}
    assert [answered[i] for i in range(len(lines))] == EXPECTED
    assert bindings(a, p) == [f"{p}EMP1", f"{p}EMP2", None, None]
    assert a.member(f"{p}KID4").records[0].family_of == f"{p}RES4"  # refused, but recorded as given


def test_a_refused_binding_names_the_employee_and_why_on_the_line_and_keeps_the_member(
    store: Store, regions: tuple[RegionApplication, RegionApplication]
) -> None:
    a, _ = regions
    out = member_file(store, [record("R-KID", "2023-01-01", family_of="R-NOBODY")])

    assert out == [{
        "psn_no": "R-KID", "valid_from": "2023-01-01", "status": "recorded",
        "binding": {"family_of": "R-NOBODY", "status": "refused", "reason": "not_an_employee",
                    "detail": "R-NOBODY is not an employee insured in region 330109 on 2023-01-01"},
    }]  # fmt: skip
    assert a.member("R-KID").records[0].psn_no == "R-KID"
    claim = {"setl_id": "R-1", "psn_no": "R-KID", "fixmedins_code": "H1", "hosp_lv": 1, "med_type": "11",
             "setl_time": "2023-03-01", "medfee_sumamt": "100.00", "fulamt_ownpay_amt": "0.00",
             "overlmt_selfpay": "0.00", "preselfpay_amt": "0.00", "inscp_scp_amt": "100.00"}  # fmt: skip
    (settled,) = settle_lines(store, [(1, msgspec.json.encode(claim))])
    assert settled.output["reason"] == "no_policy"  # a known member (no policy is loaded here)


def test_the_same_member_file_again_records_nothing_and_names_the_refusals_still_standing(
    store: Store, regions: tuple[RegionApplication, RegionApplication]
) -> None:
    a, _ = regions
    lines = family_lines("AGAIN-")
    member_file(store, lines, batch_size=2)
    head = a.recorder.max_notification_id()

    again = member_file(store, lines, batch_size=2)

    assert a.recorder.max_notification_id() == head
    assert [summary(o) for o in again] == [
        ("unchanged", None, None), ("unchanged", None, None),
        ("unchanged", None, None), ("unchanged", None, None),  # KID2's first record states no binding now
        ("unchanged", None, None), ("unchanged", None, None),
        ("unchanged", "refused", "not_an_employee"), ("unchanged", None, None),  # KID4's latest, still refused
        ("unchanged", None, None), ("unchanged", None, None), ("unchanged", None, None),
    ]  # fmt: skip


def test_a_file_stopped_after_its_records_binds_when_run_again(
    store: Store, regions: tuple[RegionApplication, RegionApplication]
) -> None:
    """As if the import had died between the last batch of records and the bindings."""
    a, _ = regions
    lines = [record("STOP-KID", "2023-01-01", family_of="STOP-EMP"), record("STOP-EMP", "2023-01-01", "310")]
    statuses = [o.status for o in a.import_members([parse_member(line) for line in lines], bind=False)]
    assert (statuses, a.member("STOP-KID").family_employee) == (["recorded", "recorded"], None)

    out = member_file(store, lines)

    assert [summary(o) for o in out] == [("unchanged", "bound", None), ("unchanged", None, None)]
    assert a.member("STOP-KID").family_employee == "STOP-EMP"


def test_the_same_file_again_leaves_a_binding_an_operator_changed_since(
    store: Store, regions: tuple[RegionApplication, RegionApplication]
) -> None:
    a, _ = regions
    lines = [record("OP-KID", "2023-01-01", family_of="OP-EMP"), record("OP-EMP", "2023-01-01", "310")]
    assert summary(member_file(store, lines)[0]) == ("recorded", "bound", None)
    assert a.bind_family("OP-KID", employee=None, operator="clerk-1", reason="left", on_date=dt.date(2023, 5, 1))

    again = member_file(store, lines)

    assert [summary(o) for o in again] == [("unchanged", None, None), ("unchanged", None, None)]
    assert a.member("OP-KID").family_employee is None


def test_a_later_record_naming_no_employee_here_ends_the_binding_and_names_both(
    store: Store, regions: tuple[RegionApplication, RegionApplication]
) -> None:
    a, _ = regions
    member_file(store, [record("END-KID", "2023-01-01", family_of="END-EMP"), record("END-EMP", "2023-01-01", "310")])
    assert a.member("END-KID").family_employee == "END-EMP"

    (out,) = member_file(store, [record("END-KID", "2023-06-01", family_of="END-RES")])

    assert out["binding"] == {
        "family_of": "END-RES", "status": "refused", "reason": "not_an_employee", "ended": "END-EMP",
        "detail": "END-RES is not an employee insured in region 330109 on 2023-06-01",
    }  # fmt: skip
    assert a.member("END-KID").family_employee is None


def test_records_given_to_the_application_at_once_bind_whatever_their_order(
    regions: tuple[RegionApplication, RegionApplication],
) -> None:
    a, _ = regions
    records = [
        parse_member(record("ONE-KID", "2023-01-01", family_of="ONE-EMP")),
        parse_member(record("ONE-EMP", "2023-01-01", "310")),
    ]

    outcomes = a.import_members(records)

    assert [(o.status, o.extra) for o in outcomes] == [
        ("recorded", {"binding": {"family_of": "ONE-EMP", "status": "bound"}}), ("recorded", {}),
    ]  # fmt: skip
    assert a.member("ONE-KID").family_employee == "ONE-EMP"


def claim_line(setl_id: Any, psn_no: str, setl_time: str) -> tuple[int, bytes]:
    claim = {"setl_id": setl_id, "psn_no": psn_no, "fixmedins_code": "H1", "hosp_lv": 1, "med_type": "11",
             "setl_time": setl_time, "medfee_sumamt": "100.00", "fulamt_ownpay_amt": "0.00",
             "overlmt_selfpay": "0.00", "preselfpay_amt": "0.00", "inscp_scp_amt": "100.00"}  # fmt: skip
    return 1, msgspec.json.encode(claim)


def test_a_claim_dated_before_the_members_first_record_is_rejected_naming_the_date_in_any_region(
    store: Store, regions: tuple[RegionApplication, RegionApplication]
) -> None:
    """Two regions: no region has a record on that date, yet the one that knows the member answers."""
    b_member = record("LATE-B", "2023-06-01") | {"insuplc_admdvs": B}
    member_file(store, [record("LATE-A", "2023-06-01"), b_member])

    early = [
        next(settle_lines(store, [claim_line(f"EARLY-{p}", p, "2023-05-31")])).output for p in ("LATE-A", "LATE-B")
    ]
    (unknown,) = settle_lines(store, [claim_line("EARLY-X", "NO-SUCH-MEMBER", "2023-05-31")])
    (number,) = settle_lines(store, [claim_line(123, "LATE-A", "2023-07-01")])

    assert [(o["reason"], o["detail"]) for o in early] == [
        ("no_member_record_on_date", "member LATE-A has no record on 2023-05-31: the first is valid from 2023-06-01"),
        ("no_member_record_on_date", "member LATE-B has no record on 2023-05-31: the first is valid from 2023-06-01"),
    ]
    assert (unknown.output["reason"], "detail" in unknown.output) == ("unknown_member", False)
    assert (number.output["setl_id"], number.output["reason"]) == (123, "bad_setl_id")
    contribution = {"contrib_id": "C-EARLY", "psn_no": "LATE-B", "fund": "390100", "paid_date": "2023-01-10",
                    "amount": "100.00"}  # fmt: skip
    (paid,) = import_contributions(store, [(1, msgspec.json.encode(contribution))])
    assert paid.output["reason"] == "no_member_record_on_date"
