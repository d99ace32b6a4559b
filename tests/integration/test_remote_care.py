"""异地就医 on PostgreSQL: a member of region A treated at a hospital of region B is settled in A,
owed by A to B and by B to its hospital, reversed on both sides, and cleared (清分) exactly once.

A (330109) insures the members, B (330110) registers hospital HB; both run the example 2023
policy with every fund allowed to overdraw (these tests are about who owes whom, not whether a
fund holds the money). Amounts are fen.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from psycopg import sql

from app import relay as relay_module
from app.clearing_between_regions import clear_between_regions
from app.region import RegionApplication
from app.remote_relay import relay_pending, relay_remote_care
from bulk.batch import settle_lines
from core.institution import Institution
from core.records import MemberRecord, parse_contribution
from projections.read_model import catch_up, reading
from projections.region_dues import dues_reader, dues_with, verify_region_dues
from projections.statements import hospital_statement, owed_reader, owed_to_hospitals
from store.app import Store
from tests.conftest import example_region

A, B = "330109", "330110"
HB = "HB"


@pytest.fixture(scope="module")
def regions(store: Store) -> tuple[RegionApplication, RegionApplication]:
    apps = [example_region(store, code, overdraft=True) for code in (A, B)]
    institution = Institution(HB, "乙地人民医院", "hospital", 2, B, "2023-01-01")
    assert apps[1].register_institutions([institution], operator="registrar") == [True]
    return apps[0], apps[1]


def enrol(app: RegionApplication, psn_no: str) -> None:
    record = MemberRecord(
        psn_no=psn_no, insuplc_admdvs=app.region, insutype="390", assist_category="none", chronic=False,
        supplementary=(), valid_from=dt.date(2023, 1, 1),
    )  # fmt: skip
    assert [o.status for o in app.import_members([record])] == ["recorded"]


def claim(setl_id: str, psn_no: str, day: str, total: str = "5000.00", **extra: str) -> bytes:
    fields = {
        "setl_id": setl_id, "psn_no": psn_no, "fixmedins_code": HB, "hosp_lv": 2, "med_type": "21",
        "setl_time": day, "medfee_sumamt": total, "fulamt_ownpay_amt": "0.00", "overlmt_selfpay": "0.00",
        "preselfpay_amt": "0.00", "inscp_scp_amt": total, "mdtrtarea_admvs": B, **extra,
    }  # fmt: skip
    return (
        ("{" + ", ".join(f'"{k}": {v if k == "hosp_lv" else repr(v)}' for k, v in fields.items()) + "}")
        .replace("'", '"')
        .encode()
    )


def settle(store: Store, *lines: bytes) -> list[dict[str, Any]]:
    return [r.output for r in settle_lines(store, enumerate(lines, 1))]


def journal(app: RegionApplication, ref_like: str) -> list[tuple[str, str, str, int]]:
    catch_up(app)
    query = sql.SQL("SELECT kind, fund, account, party, amount FROM {} WHERE ref LIKE %s ORDER BY notification_id, leg")
    with reading(app) as (curs, schema):
        rows = curs.execute(query.format(sql.Identifier(schema, "journal")), (ref_like,)).fetchall()
    return [(r["kind"], r["fund"], r["account"], r["party"], int(r["amount"])) for r in rows]


def test_a_remote_claim_is_owed_by_the_insured_region_to_the_region_of_treatment(store, regions):
    a, b = regions
    enrol(a, "P1")
    [result] = settle(store, claim("R1", "P1", "2023-03-10"))
    assert result["status"] == "settled", result
    # On A's policy: (5,000 - the 800 deductible of an admission) x 80% at level 2.
    assert (result["hifp_pay"], result["fund_pay_sumamt"], result["psn_cash_pay"]) == ("3360.00", "3360.00", "1640.00")
    assert journal(a, "R1") == [
        ("settlement", "390100", "benefit_expense", "", 336000),
        ("settlement", "390100", "due_to_regions", B, -336000),
    ]
    assert relay_remote_care(store).settlements == ["R1 v1"]
    assert journal(b, f"{A}:R1") == [
        ("remote_settlement", "390100", "due_from_regions", A, 336000),
        ("remote_settlement", "390100", "payable_to_hospitals", HB, -336000),
    ]
    assert relay_remote_care(store).settlements == []  # carried once
    with reading(b) as (curs, schema):
        assert owed_to_hospitals(curs, schema, dt.date(2023, 3, 31)) == {HB: {"390100": 336000}}
        # settled at HB, against its total budget (纳入就医地总额管理)
        assert hospital_statement(curs, schema, HB, 2023, None)["funds"]["390100"]["settled"] == "3360.00"


def test_a_claim_at_an_institution_the_region_of_treatment_does_not_know_is_rejected_by_name(store, regions):
    a, _ = regions
    enrol(a, "P2")
    unknown, elsewhere = settle(
        store,
        claim("R2", "P2", "2023-03-11").replace(b'"HB"', b'"HX"'),
        claim("R3", "P2", "2023-03-11", mdtrtarea_admvs="999999"),
    )
    assert (unknown["reason"], unknown["status"]) == ("unknown_institution", "rejected")
    assert "HX is not a 定点 institution of region 330110" in unknown["detail"]
    assert elsewhere["reason"] == "unknown_treatment_region"


def pay(app: RegionApplication, payment_id: str, through: dt.date) -> dict[str, int]:
    [(payment, result)] = app.pay_hospitals(
        [HB], payment_id=payment_id, read_owed=owed_reader(app, through), through=through, paid_on=through,
        operator="cashier",
    )  # fmt: skip
    assert result.status == "recorded"
    return payment.owed


def test_a_reversal_after_the_region_of_treatment_paid_its_hospital_is_owed_back_by_the_hospital(store, regions):
    a, b = regions
    enrol(a, "P4")
    settle(store, claim("R4", "P4", "2023-04-10"))
    relay_remote_care(store)
    assert pay(b, "PAY-APR", dt.date(2023, 4, 30)) == {"390100": 336000 * 2}  # R1 of March and R4
    a.reverse("R4", operator="clerk", reason="duplicate bill", on_date=dt.date(2023, 5, 5))
    assert relay_remote_care(store).settlements == ["R4 v1 reversed"]
    assert journal(b, f"{A}:R4")[2:] == [
        ("remote_reversal", "390100", "receivable_from_hospitals", HB, 336000),  # paid: 追回 due
        ("remote_reversal", "390100", "due_from_regions", A, -336000),
    ]
    assert b.hospital_account(HB).receivable == {"390100": 336000}
    assert journal(a, "R4")[2:] == [
        ("reversal", "390100", "benefit_expense", "", -336000),
        ("reversal", "390100", "due_to_regions", B, 336000),
    ]


def test_a_correction_follows_the_claim_to_the_region_of_treatment(store, regions):
    a, b = regions
    enrol(a, "P5")
    settle(store, claim("R5", "P5", "2023-06-10"))
    [corrected] = a.correct_claims(
        [parse(claim("R5", "P5", "2023-06-10", total="3000.00"))], operator="clerk", reason="bill corrected",
        on_date=dt.date(2023, 6, 20),
    )  # fmt: skip
    assert corrected.status == "settled"
    assert relay_remote_care(store).settlements == ["R5 v1", "R5 v1 reversed", "R5 v2"]
    unpaid = [row for row in journal(b, f"{A}:R5") if row[2] == "payable_to_hospitals"]
    assert unpaid == [  # not paid yet: the payable falls, (3,000 - 800) x 80% is owed instead
        ("remote_settlement", "390100", "payable_to_hospitals", HB, -336000),
        ("remote_reversal", "390100", "payable_to_hospitals", HB, 336000),
        ("remote_settlement", "390100", "payable_to_hospitals", HB, -176000),
    ]


def parse(line: bytes) -> Any:
    import msgspec

    from core.records import parse_claim

    return parse_claim(msgspec.json.decode(line))


def both_dues(store: Store, through: dt.date | None = None) -> tuple[Any, Any]:
    read = dues_reader()
    last = through or dt.date(2099, 12, 31)
    return read(store.region(A), B, last), read(store.region(B), A, last)


def test_clearing_between_regions_nets_both_ways_once_and_balances_both_books(store, regions):
    a, b = regions
    enrol(b, "Q1")  # a member of B treated at A's hospital HA
    a.register_institutions([Institution("HA", "甲地医院", "hospital", 2, A, "2023-01-01")], operator="registrar")
    line = claim("S1", "Q1", "2023-06-15", total="1800.00", mdtrtarea_admvs=A).replace(b'"HB"', b'"HA"')
    [result] = settle(store, line)
    assert result["hifp_pay"] == "800.00"  # (1,800 - 800) x 80%
    relay_remote_care(store)
    mine, theirs = both_dues(store, dt.date(2023, 6, 30))
    # A owes B for R1 (336,000) and R5 v2 (176,000), R4 reversed; B owes A 80,000 for S1.
    assert (mine.owed_to, mine.owed_by) == ({"390100": 512000}, {"390100": 80000})
    assert (theirs.owed_to, theirs.owed_by) == ({"390100": 80000}, {"390100": 512000})
    done = clear_between_regions(store, "2023-06", read_dues=dues_reader(), on_date=dt.date(2023, 7, 5), operator="fin")
    assert [(p.first, p.second, p.clearing, p.dues.net) for p in done] == [(A, B, f"{A}-{B}-2023-06-1", 432000)]
    assert journal(a, f"{A}-{B}-2023-06-1") == [
        ("region_clearing", "390100", "due_to_regions", B, 512000),
        ("region_clearing", "390100", "due_from_regions", B, -80000),
        ("region_clearing", "390100", "bank", "", -432000),
    ]
    assert journal(b, f"{A}-{B}-2023-06-1") == [
        ("region_clearing", "390100", "due_to_regions", A, 80000),
        ("region_clearing", "390100", "due_from_regions", A, -512000),
        ("region_clearing", "390100", "bank", "", 432000),
    ]
    again = clear_between_regions(
        store, "2023-06", read_dues=dues_reader(), on_date=dt.date(2023, 7, 6), operator="fin"
    )
    assert [(p.clearing, p.dues.empty) for p in again] == [(None, True)]
    assert all(d.empty for d in both_dues(store))
    assert not verify_region_dues(store).problems


def test_what_is_settled_for_a_cleared_month_later_is_cleared_by_a_second_clearing_of_it(store, regions):
    a, _ = regions
    enrol(a, "P7")
    settle(store, claim("R7", "P7", "2023-06-28", total="1000.00"))  # (1,000 - 800) x 80% = 160.00
    done = clear_between_regions(store, "2023-06", read_dues=dues_reader(), on_date=dt.date(2023, 7, 9), operator="fin")
    assert [(p.clearing, p.dues.owed_to) for p in done] == [(f"{A}-{B}-2023-06-2", {"390100": 16000})]
    assert a.region_clearings(B) is not None and list(a.region_clearings(B).cleared) == [
        f"{A}-{B}-2023-06-1", f"{A}-{B}-2023-06-2",
    ]  # fmt: skip


def test_a_clearing_decided_but_not_mirrored_is_mirrored_by_the_next_run_and_moves_money_once(store, regions):
    a, b = regions
    enrol(a, "P8")
    settle(store, claim("R8", "P8", "2023-07-03", total="1000.00"))
    relay_remote_care(store)
    read = dues_reader()
    # The first half of a run killed between the two regions: decided in A, never relayed to B.
    name, _ = a.decide_region_clearing(
        B, "2023-07", dt.date(2023, 7, 31), lambda through: (read(a, B, through), read(b, A, through)),
        on_date=dt.date(2023, 8, 2), operator="fin",
    )  # fmt: skip
    assert name == f"{A}-{B}-2023-07-1"
    assert relay_pending(store) == 1
    assert verify_region_dues(store).checked["steps waiting for the relay"] == 1
    done = clear_between_regions(store, "2023-07", read_dues=read, on_date=dt.date(2023, 8, 3), operator="fin")
    assert [p.clearing for p in done] == [None]
    assert journal(b, name)[-1] == ("region_clearing", "390100", "bank", "", 16000)
    assert all(d.empty for d in both_dues(store))
    with reading(b) as (curs, schema):
        assert dues_with(curs, schema, A).clearings == 3  # 2023-06-1, 2023-06-2 and 2023-07-1, each once


def test_a_month_cleared_after_a_later_one_takes_only_what_was_posted_for_it_since(store, regions):
    """Run again for every month of the year after December was cleared, a clearing must not
    give back what the later clearings took (the demo's second run found this)."""
    a, _ = regions
    enrol(a, "P9")
    settle(store, claim("R9", "P9", "2023-09-05", total="1000.00"))
    [(name, _)] = [(p.clearing, p.dues) for p in clear_between_regions(
        store, "2023-09", read_dues=dues_reader(), on_date=dt.date(2023, 10, 3), operator="fin")]  # fmt: skip
    assert name == f"{A}-{B}-2023-09-1"
    for month in ("2023-01", "2023-05", "2023-08"):
        again = clear_between_regions(store, month, read_dues=dues_reader(), on_date=dt.date(2023, 10, 4),
                                      operator="fin")  # fmt: skip
        assert [(p.clearing, p.dues.empty) for p in again] == [(None, True)], month
    settle(store, claim("R10", "P9", "2023-08-20", total="1000.00"))  # late, for a month before the latest cleared
    [late] = clear_between_regions(store, "2023-08", read_dues=dues_reader(), on_date=dt.date(2023, 10, 5),
                                   operator="fin")  # fmt: skip
    assert (late.clearing, late.dues.owed_to) == (f"{A}-{B}-2023-08-1", {"390100": 16000})
    assert a.region_clearings(B).cleared[late.clearing].through == "2023-09-30"


def test_a_relay_records_pages_of_events_for_other_regions_as_followed(store, regions, monkeypatch):
    """A third region's remote claims are not read again by every later relay to B."""
    a, b = regions
    c = example_region(store, "330111", overdraft=True)
    monkeypatch.setattr(relay_module, "page_size", 1)
    enrol(a, "P11")
    settle(store, claim("R11", "P11", "2023-10-02", total="1000.00", mdtrtarea_admvs=c.region))
    before = b.tracked_position(f"remote_care:{A}")
    assert relay_remote_care(store).settlements == ["R11 v1"]  # in C
    assert b.tracked_position(f"remote_care:{A}") > before  # B passed the page that held nothing for it
    assert relay_pending(store) == 0


def test_a_transferred_account_balance_is_paid_between_the_banks_by_the_clearing(store, regions):
    """转移接续: A owes B the balance from completion, B claims it from arrival (a debit of its
    due_to_regions); the clearing pays it from A's bank to B's and leaves both accounts at zero."""
    a, b = regions
    record = MemberRecord(
        psn_no="E12", insuplc_admdvs=A, insutype="310", assist_category="none", chronic=False, supplementary=(),
        valid_from=dt.date(2023, 1, 1),
    )  # fmt: skip
    a.import_members([record])
    a.import_contributions([parse_contribution({"contrib_id": "C-E12", "psn_no": "E12", "fund": "310100",
                                                "paid_date": "2023-01-10", "amount": "9000.00",
                                                "acct_amount": "800.00"})])  # fmt: skip
    a.start_transfer("TR-E12", psn_no="E12", to_region=B, transfer_date=dt.date(2023, 11, 1), operator="clerk",
                     requested_on=dt.date(2023, 10, 20))  # fmt: skip
    done = clear_between_regions(store, "2023-11", read_dues=dues_reader(), on_date=dt.date(2023, 12, 3),
                                 operator="fin")  # fmt: skip
    [pair] = [p for p in done if (p.first, p.second) == (A, B)]
    assert (pair.clearing, pair.dues.owed_to, pair.dues.owed_by) == (f"{A}-{B}-2023-11-1", {"310200": 80000}, {})
    assert journal(b, pair.clearing) == [
        ("region_clearing", "310200", "due_to_regions", A, -80000),  # B's claim on A, a debit, falls
        ("region_clearing", "310200", "bank", "", 80000),
    ]
    assert journal(a, pair.clearing) == [
        ("region_clearing", "310200", "due_to_regions", B, 80000),
        ("region_clearing", "310200", "bank", "", -80000),
    ]
    assert all(d.empty for d in both_dues(store)) and not verify_region_dues(store).problems
