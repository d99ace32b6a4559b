"""Relationship transfers between two regions, on PostgreSQL: exactly once, nothing lost.

Region A (330109) releases, region B (330110) receives; both run the example 2023 policy.
Every member here is an employee (310) whose individual account is funded by one contribution
(`acct_amount`), so the balance that moves is known to the fen. Each test uses its own members.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs
import msgspec
import pytest
from eventsourcing.persistence import Tracking

from app.region import RegionApplication
from app.transfer_relay import relay
from bulk.batch import import_members, settle_lines
from core.errors import YibaoError
from core.ledger import DUE_TO_REGIONS, IN_TRANSIT, INDIVIDUAL_ACCOUNTS
from core.policy import parse_policy
from core.records import MemberRecord, parse_contribution
from core.transfer import COMPLETED, PENDING_REVIEW, REJECTED, RELEASED
from projections.read_model import catch_up, reading
from projections.transfers import balances_in_transit, monthly, transfers
from projections.verify import verify_region, verify_transfers
from store.app import Store
from tests.conftest import EXAMPLES, example_region

A, B = "330109", "330110"
POLICY_FILE = EXAMPLES / "policy-330109-2023.toml"
DATE = dt.date(2023, 7, 1)
TODAY = dt.date(2023, 7, 3)


@pytest.fixture(scope="module")
def regions(store: Store) -> tuple[RegionApplication, RegionApplication]:
    return example_region(store, A), example_region(store, B)


def employee(psn_no: str, region: str = A, *, insutype: str = "310", family_of: str | None = None) -> MemberRecord:
    return MemberRecord(
        psn_no=psn_no, insuplc_admdvs=region, insutype=insutype, assist_category="none", chronic=False,
        supplementary=(), valid_from=dt.date(2023, 1, 1), family_of=family_of,
    )  # fmt: skip


def enrol(app: RegionApplication, psn_no: str, account_yuan: str | None, **kw: Any) -> None:
    assert [o.status for o in app.import_members([employee(psn_no, app.region, **kw)])] == ["recorded"]
    if account_yuan is not None:
        contribution = parse_contribution(
            {"contrib_id": f"C-{psn_no}", "psn_no": psn_no, "fund": "310100", "paid_date": "2023-01-10",
             "amount": "9000.00", "acct_amount": account_yuan}
        )  # fmt: skip
        assert [o.status for o in app.import_contributions([contribution])] == ["recorded"]


def claim_line(setl_id: str, psn_no: str, setl_time: str, total: str = "1000.00") -> bytes:
    return (
        f'{{"setl_id": "{setl_id}", "psn_no": "{psn_no}", "fixmedins_code": "H1", "hosp_lv": 1, "med_type": "11",'
        f' "setl_time": "{setl_time}", "medfee_sumamt": "{total}", "fulamt_ownpay_amt": "0.00",'
        f' "overlmt_selfpay": "0.00", "preselfpay_amt": "0.00", "inscp_scp_amt": "{total}"}}'
    ).encode()


def settle(store: Store, *lines: bytes) -> list[dict[str, Any]]:
    return [r.output for r in settle_lines(store, enumerate(lines, 1))]


def start(app: RegionApplication, transfer: str, psn_no: str, to: str = B, date: dt.date = DATE) -> Any:
    return app.start_transfer(
        transfer, psn_no=psn_no, to_region=to, transfer_date=date, operator="clerk-1", requested_on=TODAY
    )


def account_money(apps: tuple[RegionApplication, ...]) -> dict[str, int]:
    """Fund 310200 balances (fen, credit positive) summed over the regions, from the journals."""
    totals = {INDIVIDUAL_ACCOUNTS: 0, IN_TRANSIT: 0, DUE_TO_REGIONS: 0}
    for app in apps:
        catch_up(app)
        with reading(app) as (curs, schema):
            curs.execute(
                f'SELECT account, sum(amount) AS s FROM "{schema}".journal WHERE fund = %s GROUP BY account',  # noqa: S608
                ("310200",),
            )
            for row in curs.fetchall():
                if row["account"] in totals:
                    totals[row["account"]] -= int(row["s"])
    return totals


def journal_balances(app: RegionApplication) -> int:
    catch_up(app)
    with reading(app) as (curs, schema):
        curs.execute(f'SELECT coalesce(sum(amount), 0) AS s FROM "{schema}".journal')  # noqa: S608
        return int(curs.fetchone()["s"])


def test_a_balance_under_1000_yuan_moves_at_once_with_the_member_and_their_contribution_years(
    store: Store, regions: tuple[RegionApplication, RegionApplication]
) -> None:
    a, b = regions
    enrol(a, "T-SMALL", "999.99")
    before = account_money(regions)

    state = start(a, "TR-SMALL", "T-SMALL")
    assert (state.status, state.facts.balance, state.facts.contribution_years) == (RELEASED, 99_999, [2023])
    assert a.account_balance("T-SMALL") == 0
    report = relay(store)
    assert (report.received, report.completed) == (["TR-SMALL"], ["TR-SMALL"])

    assert a.transfer("TR-SMALL").status == COMPLETED
    assert b.account_balance("T-SMALL") == 99_999
    moved = b.member("T-SMALL")
    assert moved.record_at(DATE).insuplc_admdvs == B and moved.contribution_years == {2023}
    assert b.member("T-SMALL").record_at(dt.date(2023, 6, 30)) is None
    after = account_money(regions)
    assert after[INDIVIDUAL_ACCOUNTS] + after[IN_TRANSIT] == before[INDIVIDUAL_ACCOUNTS] + before[IN_TRANSIT]
    assert after[DUE_TO_REGIONS] == before[DUE_TO_REGIONS] == 0  # A owes B exactly what B is owed by A
    assert journal_balances(a) == journal_balances(b) == 0
    assert relay(store) == type(report)()  # nothing left to carry: a second run records nothing


def test_after_the_transfer_date_the_old_region_refuses_claims_and_the_new_one_settles_them(
    store: Store, regions: tuple[RegionApplication, RegionApplication]
) -> None:
    a, b = regions
    enrol(a, "T-CLAIMS", "300.00")
    start(a, "TR-CLAIMS", "T-CLAIMS")
    relay(store)
    before, after = settle(
        store, claim_line("TC-BEFORE", "T-CLAIMS", "2023-06-30"), claim_line("TC-AFTER", "T-CLAIMS", "2023-07-01")
    )
    assert before["status"] == after["status"] == "settled"
    assert a.settlement("TC-BEFORE") is not None and b.settlement("TC-BEFORE") is None
    assert b.settlement("TC-AFTER") is not None and a.settlement("TC-AFTER") is None
    # The account moved: the claim in B is paid from it (all 300.00 of it go to the personal share).
    assert b.settlement("TC-AFTER").current.amounts["acct_pay"] == 30_000
    assert a.settlement("TC-BEFORE").current.amounts["acct_pay"] == 0  # the balance had left A
    outcome = a.settle_claims([_claim("TC-DIRECT", "T-CLAIMS", "2023-08-01")])[0]
    assert (outcome.status, outcome.reason) == ("rejected", "member_transferred_out")


def member_file(store: Store, *records: MemberRecord) -> list[dict[str, Any]]:
    """Each line's output, in line order (the lines with a family_of are answered last)."""
    lines = [msgspec.json.encode(r.to_dict()) for r in records]
    return [r.output for r in sorted(import_members(store, enumerate(lines, 1)), key=lambda r: r.line_no)]


def test_a_member_file_never_moves_a_member_to_another_region(
    store: Store, regions: tuple[RegionApplication, RegionApplication]
) -> None:
    # SPEC 5: only relationship transfers cross regions (the account balance goes with them).
    a, b = regions
    enrol(a, "T-FILE", "500.00")
    moved = attrs.evolve(employee("T-FILE", B), valid_from=dt.date(2023, 6, 1))

    (out,) = member_file(store, moved)

    assert (out["status"], out["reason"]) == ("rejected", "insured_in_other_region")
    assert "insured in region 330109 on 2023-06-01" in out["detail"]
    assert b.member("T-FILE") is None
    assert a.account_balance("T-FILE") == 50_000
    # Still a change of the member's own region, before and after (a new category) is recorded;
    # and two records of one new member in one file may not name two regions.
    changed = attrs.evolve(employee("T-FILE", A), valid_from=dt.date(2023, 3, 1), chronic=True)
    first = attrs.evolve(employee("T-FILE-NEW", A), valid_from=dt.date(2023, 2, 1))
    second = attrs.evolve(employee("T-FILE-NEW", B), valid_from=dt.date(2023, 4, 1))
    assert [o["status"] for o in member_file(store, changed, first, second)] == ["recorded", "recorded", "rejected"]
    assert b.member("T-FILE-NEW") is None
    # After a transfer to B, a record putting the member back in A is refused; B's are recorded.
    start(a, "TR-FILE", "T-FILE")
    relay(store)
    back = attrs.evolve(employee("T-FILE", A), valid_from=dt.date(2023, 9, 1))
    in_b = attrs.evolve(employee("T-FILE", B), valid_from=dt.date(2023, 9, 1), chronic=True)
    refused, recorded = member_file(store, back, in_b)
    assert (refused["status"], refused["reason"]) == ("rejected", "insured_in_other_region")
    assert "insured in region 330110 on 2023-09-01" in refused["detail"]
    assert recorded["status"] == "recorded"
    assert b.account_balance("T-FILE") == 50_000
    # A record dated before another region's: it would hold until the member's next record in
    # its own region, over the other region's span (in one file, or in two).
    later_b = attrs.evolve(employee("T-FILE-DESC", B), valid_from=dt.date(2023, 4, 1))
    earlier_a = attrs.evolve(employee("T-FILE-DESC", A), valid_from=dt.date(2023, 2, 1))
    assert [(o["status"], o.get("detail", "")[:46]) for o in member_file(store, later_b, earlier_a)] == [
        ("recorded", ""), ("rejected", "member T-FILE-DESC is insured in region 330110"),
    ]  # fmt: skip
    assert member_file(store, earlier_a)[0]["reason"] == "insured_in_other_region"
    assert a.member("T-FILE-DESC") is None
    # The import checks its own region again in its transaction: a record in A from after a
    # transfer out of A that committed after the file's check is refused there.
    enrol(a, "T-FILE-RACE", "100.00")
    start(a, "TR-FILE-RACE", "T-FILE-RACE")
    (raced,) = a.import_members([attrs.evolve(employee("T-FILE-RACE", A), valid_from=dt.date(2023, 9, 1))])
    assert (raced.status, raced.reason) == ("rejected", "insured_in_other_region")
    relay(store)  # carried over, as the other tests leave their transfers


def _claim(setl_id: str, psn_no: str, setl_time: str) -> Any:
    from core.records import decode_line, parse_claim

    return parse_claim(decode_line(claim_line(setl_id, psn_no, setl_time)))


def test_a_balance_of_1000_yuan_or_more_waits_for_approval_and_then_completes(
    store: Store, regions: tuple[RegionApplication, RegionApplication]
) -> None:
    a, b = regions
    enrol(a, "T-BIG", "1000.00")
    before = account_money(regions)
    assert start(a, "TR-BIG", "T-BIG").status == PENDING_REVIEW
    assert relay(store).received == []  # nothing to carry while it waits
    pending = account_money(regions)
    assert pending[IN_TRANSIT] - before[IN_TRANSIT] == 100_000
    catch_up(a)
    with reading(a) as (curs, schema):
        assert [t["transfer_id"] for t in transfers(curs, schema, status=PENDING_REVIEW)] == ["TR-BIG"]
        assert balances_in_transit(curs, schema, TODAY)["in_transit_by_transfer"] == {"TR-BIG": "1000.00"}
    # While it waits the member is insured nowhere after the date: A refuses, B does not know them.
    assert settle(store, claim_line("TB-WAIT", "T-BIG", "2023-07-02"))[0]["reason"] == "member_transferred_out"

    state = a.review_transfer("TR-BIG", approve=True, operator="chief-2", reason="documents checked", on_date=TODAY)
    assert state.status == RELEASED
    assert relay(store).completed == ["TR-BIG"]
    assert (a.transfer("TR-BIG").status, b.account_balance("T-BIG"), a.account_balance("T-BIG")) == (
        COMPLETED, 100_000, 0,
    )  # fmt: skip
    after = account_money(regions)
    assert after[INDIVIDUAL_ACCOUNTS] + after[IN_TRANSIT] == before[INDIVIDUAL_ACCOUNTS] + before[IN_TRANSIT]
    with pytest.raises(YibaoError) as refused:
        a.review_transfer("TR-BIG", approve=False, operator="chief-2", reason="too late", on_date=TODAY)
    assert refused.value.reason == "transfer_completed"


def test_a_rejected_transfer_returns_the_balance_and_the_member_stays(
    store: Store, regions: tuple[RegionApplication, RegionApplication]
) -> None:
    a, b = regions
    enrol(a, "T-REJ", "2500.50")
    before = account_money(regions)
    start(a, "TR-REJ", "T-REJ")
    state = a.review_transfer("TR-REJ", approve=False, operator="chief-2", reason="wrong region", on_date=TODAY)
    assert state.status == REJECTED
    assert a.account_balance("T-REJ") == 250_050 and b.member("T-REJ") is None
    assert relay(store).received == []
    assert account_money(regions) == before
    assert a.member("T-REJ").record_at(dt.date(2023, 9, 1)).insuplc_admdvs == A
    assert settle(store, claim_line("TR-REJ-C", "T-REJ", "2023-09-01"))[0]["status"] == "settled"
    # and a new transfer may start later (after that claim's date)
    assert start(a, "TR-REJ-2", "T-REJ", date=dt.date(2023, 10, 1)).status == PENDING_REVIEW


def test_a_repeated_request_records_nothing_and_a_conflicting_one_is_refused_by_name(
    store: Store, regions: tuple[RegionApplication, RegionApplication]
) -> None:
    a, _ = regions
    enrol(a, "T-DUP", "10.00")
    enrol(a, "T-DUP2", "10.00")
    assert start(a, "TR-DUP", "T-DUP").recorded
    again = start(a, "TR-DUP", "T-DUP")
    assert not again.recorded and again.facts.balance == 1_000
    reasons = {}
    for key, call in {
        "other_member": lambda: start(a, "TR-DUP", "T-DUP2"),
        "twice": lambda: start(a, "TR-DUP-B", "T-DUP"),
        "same_region": lambda: start(a, "TR-SAME", "T-DUP2", to=A),
        "unknown": lambda: start(a, "TR-NOBODY", "T-NOBODY"),
    }.items():
        with pytest.raises(YibaoError) as refused:
            call()
        reasons[key] = refused.value.reason
    assert reasons == {
        "other_member": "exists_with_different_content",
        "twice": "member_transferred_out",
        "same_region": "same_region",
        "unknown": "unknown_member",
    }


def test_a_transfer_dated_before_claims_already_settled_here_is_refused(
    store: Store, regions: tuple[RegionApplication, RegionApplication]
) -> None:
    a, _ = regions
    enrol(a, "T-LATE", "10.00")
    assert settle(store, claim_line("TL-1", "T-LATE", "2023-08-15"))[0]["status"] == "settled"
    with pytest.raises(YibaoError) as refused:
        start(a, "TR-LATE", "T-LATE")
    assert refused.value.reason == "claims_after_transfer_date"
    assert a.transfer("TR-LATE") is None


def test_projections_count_transfers_per_month_and_each_region_verifies(
    store: Store, regions: tuple[RegionApplication, RegionApplication]
) -> None:
    a, b = regions
    enrol(a, "T-COUNT", "120.00")
    start(a, "TR-COUNT", "T-COUNT", date=dt.date(2023, 11, 1))
    relay(store)
    catch_up(a)
    catch_up(b)
    with reading(a) as (curs, schema):
        november = [m for m in monthly(curs, schema, 2023) if m["month"] == "2023-11"]
    assert november == [{"month": "2023-11", "out": 1, "out_balance": "120.00", "in": 0, "in_balance": "0.00"}]
    with reading(b) as (curs, schema):
        november = [m for m in monthly(curs, schema, 2023) if m["month"] == "2023-11"]
        assert balances_in_transit(curs, schema, dt.date(2023, 12, 31))["in_transit"] == "0.00"
    assert november == [{"month": "2023-11", "out": 0, "out_balance": "0.00", "in": 1, "in_balance": "120.00"}]
    for app in regions:
        findings = verify_region(app)
        assert findings.problems == [], findings.problems


def test_family_mutual_aid_follows_binding_events_from_the_next_claim(
    store: Store, regions: tuple[RegionApplication, RegionApplication]
) -> None:
    a, _ = regions
    enrol(a, "F-EMP2", "500.00")
    enrol(a, "F-KID2", None, insutype="390")
    kid_claim = "2023-05-01"
    assert settle(store, claim_line("FK-1", "F-KID2", kid_claim))[0]["acct_mulaid_pay"] == "0.00"
    assert a.bind_family("F-KID2", employee="F-EMP2", operator="clerk-1", reason="parent", on_date=TODAY)
    assert not a.bind_family("F-KID2", employee="F-EMP2", operator="clerk-1", reason="parent", on_date=TODAY)
    # Resident outpatient at level 1: 60% after the annual 300.00 deductible, which FK-1 used up,
    # so 400.00 of the 1,000.00 is left to the person and the employee's account pays all of it.
    paid = settle(store, claim_line("FK-2", "F-KID2", kid_claim))[0]
    assert (paid["acct_mulaid_pay"], paid["psn_cash_pay"]) == ("400.00", "0.00")
    assert a.account_balance("F-EMP2") == 10_000
    bound = a.member("F-KID2")
    assert (bound.family_employee, a.settlement("FK-2").current.account_psn) == ("F-EMP2", "F-EMP2")
    assert a.bind_family("F-KID2", employee=None, operator="clerk-1", reason="left household", on_date=TODAY)
    contribution = parse_contribution(
        {"contrib_id": "C-F-EMP2-b", "psn_no": "F-EMP2", "fund": "310100", "paid_date": "2023-02-10",
         "amount": "900.00", "acct_amount": "100.00"}
    )  # fmt: skip
    a.import_contributions([contribution])
    unbound = settle(store, claim_line("FK-3", "F-KID2", kid_claim))[0]
    assert (unbound["acct_mulaid_pay"], unbound["psn_cash_pay"]) == ("0.00", "400.00")
    assert a.account_balance("F-EMP2") == 20_000
    with pytest.raises(YibaoError) as refused:
        a.bind_family("F-KID2", employee="F-KID2", operator="clerk-1", reason="x", on_date=TODAY)
    assert refused.value.reason == "bad_family_of"
    with pytest.raises(YibaoError) as refused:
        a.bind_family("F-EMP2", employee="F-KID2", operator="clerk-1", reason="x", on_date=TODAY)
    assert refused.value.reason == "not_an_employee"


def test_a_member_file_binding_must_name_an_employee_insured_here_or_is_refused_by_name_keeping_the_record(
    store: Store, regions: tuple[RegionApplication, RegionApplication]
) -> None:
    a, b = regions
    enrol(a, "F-RES3", None, insutype="390")
    enrol(b, "F-EMP3B", "100.00")
    records = [
        employee("F-KID3A", A, insutype="390", family_of="NOBODY"),  # unknown
        employee("F-KID3B", A, insutype="390", family_of="F-RES3"),  # a resident
        employee("F-KID3C", A, insutype="390", family_of="F-EMP3B"),  # an employee of the other region
        employee("F-KID3D", A, insutype="390", family_of="F-KID3D"),  # themself
        attrs.evolve(employee("F-KID3E", A, insutype="390", family_of="F-EMP4"), valid_from=dt.date(2023, 3, 1)),
        attrs.evolve(employee("F-KID3E", A, insutype="390", family_of="F-EMP4"), valid_from=dt.date(2023, 1, 15)),
        attrs.evolve(employee("F-EMP4", A), valid_from=dt.date(2023, 2, 1)),  # after the lines naming F-EMP4
    ]

    out = member_file(store, *records)

    assert [(o["status"], o.get("reason"), o.get("binding", {}).get("status")) for o in out] == [
        ("recorded", None, "refused"), ("recorded", None, "refused"), ("recorded", None, "refused"),
        ("recorded", None, "refused"),  # bound to themself: the binding is refused, the member kept (QA)
        ("recorded", None, "bound"),  # F-KID3E's latest record: bound to F-EMP4, who comes later
        ("recorded", None, "refused"),  # F-EMP4 is not yet insured on 2023-01-15: named, nothing bound
        ("recorded", None, None),
    ]  # fmt: skip
    assert {k: out[3]["binding"][k] for k in ("status", "reason")} == {"status": "refused", "reason": "bad_family_of"}
    assert out[0]["binding"] == {
        "family_of": "NOBODY", "status": "refused", "reason": "not_an_employee",
        "detail": "NOBODY is not an employee insured in region 330109 on 2023-01-01",
    }  # fmt: skip
    assert out[5]["binding"]["detail"] == "F-EMP4 is not an employee insured in region 330109 on 2023-01-15"
    assert [len(a.member(p).records) for p in ("F-KID3A", "F-KID3B", "F-KID3C", "F-KID3E")] == [1, 1, 1, 2]
    assert [a.member(p).family_employee for p in ("F-KID3A", "F-KID3B", "F-KID3C", "F-KID3E")] == [
        None, None, None, "F-EMP4"
    ]  # fmt: skip


# Regressions found by review: each failed before its fix.


@pytest.mark.parametrize("batch_size", [1, 500], ids=["one claim per transaction", "saved behind"])
def test_a_claim_settling_while_the_transfer_starts_is_settled_again_and_refused(
    store: Store, regions: tuple[RegionApplication, RegionApplication], batch_size: int
) -> None:
    """A resident has no account, so the claim and the transfer touch no aggregate in common
    but the member-year, which the transfer now writes: the claim's save conflicts, and its
    retry reads the transfer. The transfer is started by another process (another store on the
    same database) just before the claim's events are written, whether the claim is saved in
    the settling thread (one claim per transaction) or by the region's writer thread (batches)."""
    a, _ = regions
    psn_no, transfer_id, setl_id = f"T-RACE-{batch_size}", f"TR-RACE-{batch_size}", f"TRACE-{batch_size}"
    assert [o.status for o in a.import_members([employee(psn_no, A, insutype="390")])] == ["recorded"]
    recorder_class = type(a.recorder)
    original = recorder_class.insert_events
    started = []

    with Store(store.location) as other:

        def transfer_first(self: Any, stored_events: Any, **kwargs: Any) -> Any:
            if not started and self is a.recorder and any(e.topic == "Settlement.Settled" for e in stored_events):
                started.append(start(other.region(A), transfer_id, psn_no).status)
            return original(self, stored_events, **kwargs)

        recorder_class.insert_events = transfer_first  # type: ignore[method-assign]
        try:
            lines = enumerate([claim_line(setl_id, psn_no, "2023-07-15")], 1)
            result = next(iter(settle_lines(store, lines, batch_size=batch_size))).output
        finally:
            recorder_class.insert_events = original  # type: ignore[method-assign]
        assert started == [RELEASED]
        assert (result["status"], result["reason"]) == ("rejected", "member_transferred_out")
        assert a.settlement(setl_id) is None
    relay(store)


def test_a_contribution_dated_after_the_transfer_date_is_refused_by_the_old_region(
    store: Store, regions: tuple[RegionApplication, RegionApplication]
) -> None:
    a, _ = regions
    enrol(a, "T-CONTRIB", "1500.00")
    assert start(a, "TR-CONTRIB", "T-CONTRIB").status == PENDING_REVIEW
    late = parse_contribution(
        {"contrib_id": "C-T-CONTRIB-aug", "psn_no": "T-CONTRIB", "fund": "310100", "paid_date": "2023-08-10",
         "amount": "900.00", "acct_amount": "100.00"}
    )  # fmt: skip
    outcome = a.import_contributions([late])[0]
    assert (outcome.status, outcome.reason) == ("rejected", "member_transferred_out")
    assert a.account_balance("T-CONTRIB") == 0


def test_two_regions_may_use_the_same_transfer_id(
    store: Store, regions: tuple[RegionApplication, RegionApplication]
) -> None:
    a, b = regions
    store.add_region("330111")
    c = store.region("330111")
    text = POLICY_FILE.read_text(encoding="utf-8").replace('region = "330109"', 'region = "330111"')
    c.record_policy(2023, parse_policy(text.encode()).content_hash, text)
    enrol(a, "T-SAME-A", "100.00")
    enrol(c, "T-SAME-C", "200.00")
    start(a, "TR-SAME", "T-SAME-A")
    start(c, "TR-SAME", "T-SAME-C")
    report = relay(store)
    assert report.received.count("TR-SAME") == report.completed.count("TR-SAME") == 2
    assert (b.account_balance("T-SAME-A"), b.account_balance("T-SAME-C")) == (10_000, 20_000)
    assert a.transfer("TR-SAME").status == c.transfer("TR-SAME").status == COMPLETED
    assert verify_transfers([a, b, c]).problems == []


def test_the_money_leaves_on_the_day_of_the_request_whatever_the_transfer_date(
    store: Store, regions: tuple[RegionApplication, RegionApplication]
) -> None:
    a, _ = regions
    enrol(a, "T-AHEAD", "300.00")
    start(a, "TR-AHEAD", "T-AHEAD", date=dt.date(2023, 9, 1))  # requested 2023-07-03 for 1 September
    relay(store)
    catch_up(a)
    with reading(a) as (curs, schema):
        curs.execute(
            f'SELECT kind, posted_on::text AS d FROM "{schema}".journal WHERE ref = %s ORDER BY notification_id',  # noqa: S608
            ("TR-AHEAD",),
        )
        posted = sorted({(row["kind"], row["d"]) for row in curs.fetchall()})
    assert posted == [("transfer_completed", "2023-07-03"), ("transfer_out", "2023-07-03")]


def test_verify_checks_transfers_across_regions_and_names_an_arrival_nobody_released(  # last: it forges
    store: Store, regions: tuple[RegionApplication, RegionApplication]
) -> None:
    a, b = regions
    every_region = [store.region(code) for code in store.region_codes()]
    assert verify_transfers(every_region).problems == []
    enrol(a, "T-FORGED", "50.00")
    state = start(a, "TR-FORGED-REAL", "T-FORGED")
    relay(store)
    forged = msgspec.structs.replace(state.facts, transfer_id="TR-FORGED", balance=5_000_000)
    b.receive_transfers([(forged, "2023-07-03")], tracking=Tracking("someone", 1))
    findings = verify_transfers(every_region)
    assert findings.problems == [
        "transfer TR-FORGED arrived in 330110 but is not released by 330109",
        "inter-region balances net to 5000000 fen; arrivals not yet acknowledged amount to 0",
    ]
