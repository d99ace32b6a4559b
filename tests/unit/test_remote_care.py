"""The pure rules of 异地就医 and 清分: who a remote claim is owed to, what the region of
treatment records, how two regions' dues must agree, and what a clearing clears."""

from __future__ import annotations

import datetime as dt

import pytest

from core.ledger import (
    DUE_FROM_REGIONS,
    DUE_TO_REGIONS,
    Posting,
    due_by_fund,
    region_clearing_postings,
    remote_reversed_postings,
    remote_settled_postings,
    settlement_postings,
)
from core.records import Claim
from core.region_clearing import Dues, RegionClearings, RegionsDisagree, check_agree
from core.remote_care import RemoteCare

A, B = "330109", "330110"
AMOUNTS = {"hifp_pay": 300_000, "hifmi_pay": 50_000, "maf_pay": 0, "hmb_pay": 0, "charity_pay": 0, "acct_pay": 20_000,
           "acct_mulaid_pay": 0}  # fmt: skip


def claim(**more: object) -> Claim:
    base: dict[str, object] = {
        "setl_id": "S1", "psn_no": "P1", "fixmedins_code": "HB", "hosp_lv": 2, "med_type": "21",
        "setl_time": dt.date(2023, 3, 1), "medfee_sumamt": 1, "fulamt_ownpay_amt": 0, "overlmt_selfpay": 0,
        "preselfpay_amt": 0, "inscp_scp_amt": 1,
    }  # fmt: skip
    return Claim(**{**base, **more})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("more", "treated_elsewhere"),
    [({}, None), ({"mdtrtarea_admvs": A}, None), ({"mdtrtarea_admvs": B}, B),
     ({"mdtrtarea_admvs": B, "payee": "member"}, None)],
    ids=["not said", "at home", "elsewhere", "paid to the member"],
)  # fmt: skip
def test_a_claim_is_treated_elsewhere_only_when_it_names_another_region_and_the_hospital_is_paid(
    more: dict[str, str], treated_elsewhere: str | None
) -> None:
    assert claim(**more).treated_elsewhere(A) == treated_elsewhere


def test_a_remote_settlement_owes_every_payer_and_the_account_to_the_region_of_treatment() -> None:
    postings = settlement_postings(insutype="310", hospital="HB", amounts=AMOUNTS, account_psn="P1", treated_in=B)
    assert [p for p in postings if p.account == DUE_TO_REGIONS] == [
        Posting("310100", DUE_TO_REGIONS, B, -300_000),
        Posting("330100", DUE_TO_REGIONS, B, -50_000),
        Posting("310200", DUE_TO_REGIONS, B, -20_000),
    ]
    assert not any(p.account == "payable_to_hospitals" for p in postings)
    assert due_by_fund(postings, B) == {"310100": 300_000, "310200": 20_000, "330100": 50_000}
    assert due_by_fund(postings, "330111") == {}


def test_the_region_of_treatment_owes_its_hospital_what_it_is_owed_and_undoes_it_on_a_reversal() -> None:
    amounts = {"310100": 300_000, "310200": 20_000}
    assert remote_settled_postings(hospital="HB", insured_in=A, amounts=amounts) == [
        Posting("310100", DUE_FROM_REGIONS, A, 300_000), Posting("310100", "payable_to_hospitals", "HB", -300_000),
        Posting("310200", DUE_FROM_REGIONS, A, 20_000), Posting("310200", "payable_to_hospitals", "HB", -20_000),
    ]  # fmt: skip
    paid_one = remote_reversed_postings(hospital="HB", insured_in=A, amounts=amounts, paid_funds=frozenset({"310100"}))
    assert paid_one == [
        Posting("310100", "receivable_from_hospitals", "HB", 300_000), Posting("310100", DUE_FROM_REGIONS, A, -300_000),
        Posting("310200", "payable_to_hospitals", "HB", 20_000), Posting("310200", DUE_FROM_REGIONS, A, -20_000),
    ]  # fmt: skip


def test_a_clearing_empties_both_dues_and_the_bank_pays_the_net_per_fund() -> None:
    postings = region_clearing_postings(other=B, owed_to={"390100": 512_000, "310200": -3_000},
                                        owed_by={"390100": 80_000, "610100": 7_000})  # fmt: skip
    assert postings == [
        Posting("310200", DUE_TO_REGIONS, B, -3_000), Posting("310200", "bank", "", 3_000),  # owed back: received
        Posting("390100", DUE_TO_REGIONS, B, 512_000), Posting("390100", DUE_FROM_REGIONS, B, -80_000),
        Posting("390100", "bank", "", -432_000),
        Posting("610100", DUE_FROM_REGIONS, B, -7_000), Posting("610100", "bank", "", 7_000),
    ]  # fmt: skip


def test_two_regions_must_agree_to_the_fen_per_fund_net() -> None:
    mine = Dues({"390100": 512_000}, {"390100": 80_000})
    check_agree(A, B, mine, Dues({"390100": 80_000}, {"390100": 512_000}))
    # a transferred balance: owed on A's due_to_regions, claimed as a debit of B's (a negative owed_to)
    check_agree(A, B, Dues({"310200": 30_000}, {}), Dues({"310200": -30_000}, {}))
    with pytest.raises(
        RegionsDisagree, match=f"^fund 390100: {A} owes {B} 4320.00 net by its books, {B} is owed 4319.99"
    ):
        check_agree(A, B, mine, Dues({"390100": 80_000}, {"390100": 511_999}))
    with pytest.raises(RegionsDisagree, match=f"^fund 610100: {A} owes {B} 0.00 net by its books, {B} is owed 0.01"):
        check_agree(A, B, mine, Dues({"390100": 80_000, "610100": -1}, {"390100": 512_000}))
    assert Dues({"390100": 0}, {}).empty and mine.net == 432_000 and mine.net_by_fund() == {"390100": 432_000}


def test_a_clearing_clears_up_to_its_month_or_the_latest_day_cleared_before_and_once_by_name() -> None:
    book = RegionClearings(region=A, other=B)
    assert book.through(dt.date(2023, 5, 31)) == dt.date(2023, 5, 31)
    name = book.next_name("2023-09")
    assert name == f"{A}-{B}-2023-09-1"
    common = {"decided_in": A, "dues": Dues({"390100": 1}, {}), "on_date": "2023-10-03", "operator": "fin"}
    assert book.clear(name, month="2023-09", through="2023-09-30", **common)  # type: ignore[arg-type]
    assert not book.clear(name, month="2023-09", through="2023-09-30", **common)  # type: ignore[arg-type]
    assert book.through(dt.date(2023, 5, 31)) == dt.date(2023, 9, 30)  # not May alone: September took it
    assert book.through(dt.date(2023, 10, 31)) == dt.date(2023, 10, 31)
    assert book.next_name("2023-09") == f"{A}-{B}-2023-09-2"
    assert book.next_name("2023-10") == f"{A}-{B}-2023-10-1"


def test_a_remote_version_is_withdrawn_only_while_it_is_owed() -> None:
    care = RemoteCare(setl_id="S1")
    care.owe(1, B, "HB", {"390100": 5}, "2023-03-01")
    care.withdraw(1, "2023-03-05")
    assert care.owing is None
    with pytest.raises(AssertionError, match="S1 v1 is not owed"):
        care.withdraw(1, "2023-03-06")
