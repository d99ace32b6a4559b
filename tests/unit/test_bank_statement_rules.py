"""The rules of bank statement matching (core/bank_statement.py): a statement read from UTF-8 or
GBK CSV, amounts to the fen with their sign, bank lines and postings paired one to one on date and
amount, counterparty and reference breaking ties, and every item accounted for exactly once."""

from __future__ import annotations

import dataclasses
import datetime as dt

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.bank_statement import (
    BankItem,
    StatementRejected,
    bank_amount,
    check_fund,
    decode_statement,
    match,
    parse_statement,
    recorded_result,
    statement_period,
    summary,
    unmatched_lines,
)
from core.codec import EventMapper
from core.reconciliation import Reconciliation, reconciliation_key


def line(on_date: str, amount: int, counterparty: str = "", reference: str = "", n: int = 0) -> BankItem:
    return BankItem(on_date, amount, counterparty, reference, line=n)


def posting(on_date: str, amount: int, counterparty: str = "", reference: str = "", kind: str = "") -> BankItem:
    return BankItem(on_date, amount, counterparty, reference, kind=kind)


def test_a_statement_with_a_header_in_any_column_order_is_read_with_line_numbers() -> None:
    text = "reference,amount,date,counterparty\n拨付 PAY-1,-1080.00,2023-04-05,H001\n\n利息,+12.5,2023-04-21,\n"
    assert parse_statement(text) == [
        BankItem("2023-04-05", -108000, "H001", "拨付 PAY-1", line=2),
        BankItem("2023-04-21", 1250, "", "利息", line=4),
    ]


def test_a_statement_without_a_header_is_date_amount_counterparty_reference() -> None:
    assert parse_statement('2023-04-05,"-1,080.00",H001,PAY-1\r\n') == [
        BankItem("2023-04-05", -108000, "H001", "PAY-1", line=1)
    ]


def test_a_chinese_header_names_the_columns() -> None:
    text = "交易日期,对方户名,对方账户,金额,摘要\n2023-04-05,某医院,H001,-1080.00,PAY-1\n"
    assert parse_statement(text) == [BankItem("2023-04-05", -108000, "某医院", "PAY-1", line=2)]


@pytest.mark.parametrize(
    ("text", "reason", "line_no"),
    [
        ("date,amount,counterparty,reference\n2023-04-05,1.005,H001,x\n", "amount_too_precise", 2),
        ("2023-04-05,12.00,H001,x\n2023-04-06,twelve,H001,x\n", "amount_not_a_number", 2),
        ("2023-04-05,12.00,H001,x\n2023/04/06,1.00,H001,x\n", "bad_date", 2),
        ("2023-02-30,12.00,H001,x\n", "bad_date", 1),
        ("2023-04-05,12.00\n", "bad_line", 1),
        ("when,amount,counterparty,reference\n", "bad_header", 1),
        ("date,amount,counterparty,reference\n", "empty_statement", 0),
    ],
)
def test_a_line_that_cannot_be_read_is_named_with_its_number(text: str, reason: str, line_no: int) -> None:
    with pytest.raises(StatementRejected) as caught:
        parse_statement(text)
    assert (caught.value.reason, caught.value.line) == (reason, line_no)
    if line_no:
        assert str(caught.value).startswith(f"line {line_no}: ")


def test_amounts_keep_their_sign_exactly() -> None:
    assert [bank_amount(t) for t in ("-0.01", "+3", "1,234,567.89", "0.10")] == [-1, 300, 123456789, 10]
    with pytest.raises(StatementRejected):
        bank_amount("1,23.00")


def test_utf8_with_or_without_bom_and_gbk_are_each_read_and_named() -> None:
    text = "2023-04-05,-1080.00,第一人民医院,拨付\n"
    assert decode_statement(text.encode("utf-8")) == (text, "utf-8")
    assert decode_statement(b"\xef\xbb\xbf" + text.encode("utf-8")) == (text, "utf-8-sig")
    assert decode_statement(text.encode("gbk")) == (text, "gbk")
    with pytest.raises(StatementRejected) as caught:
        decode_statement(b"\xff\xfe\x00")
    assert caught.value.reason == "bad_encoding"


def test_only_the_ledgers_funds_can_be_reconciled() -> None:
    assert check_fund("390100") == "390100"
    with pytest.raises(StatementRejected) as caught:
        check_fund("999999")
    assert caught.value.reason == "unknown_fund"


def test_the_period_is_the_one_given_or_the_statements_own() -> None:
    items = [line("2023-04-09", 1), line("2023-04-02", 1)]
    assert statement_period(items, None, None) == ("2023-04-02", "2023-04-09")
    assert statement_period(items, dt.date(2023, 4, 1), dt.date(2023, 4, 30)) == ("2023-04-01", "2023-04-30")
    with pytest.raises(StatementRejected):
        statement_period(items, dt.date(2023, 4, 1), None)


def test_date_and_amount_match_and_what_is_left_is_listed_on_its_side() -> None:
    bank = [line("2023-04-05", -108000, "H001", n=1), line("2023-04-06", 5000, n=2)]
    center = [posting("2023-04-05", -108000, "H001", "PAY-1"), posting("2023-04-07", 5000, "", "C-1")]
    found = match(bank, center)
    assert found.matched == [(bank[0], center[0])]
    assert unmatched_lines(found) == [
        {"side": "bank", "date": "2023-04-06", "amount": "50.00", "counterparty": "", "reference": "",
         "reason": "only_in_bank", "line": 2},
        {"side": "center", "date": "2023-04-07", "amount": "50.00", "counterparty": "", "reference": "C-1",
         "reason": "only_in_center", "kind": ""},
    ]  # fmt: skip


def test_the_sign_is_part_of_the_amount() -> None:
    found = match([line("2023-04-05", 108000)], [posting("2023-04-05", -108000)])
    assert (len(found.matched), len(found.only_in_bank), len(found.only_in_center)) == (0, 1, 1)


def test_a_tie_on_date_and_amount_is_broken_by_counterparty_then_reference() -> None:
    center = [
        posting("2023-04-05", -50000, "H001", "PAY-H001"),
        posting("2023-04-05", -50000, "H002", "PAY-H002"),
        posting("2023-04-05", -50000, "H002", "PAY-H002-B"),
    ]
    bank = [line("2023-04-05", -50000, "H002", "拨付 PAY-H002-B"), line("2023-04-05", -50000, "H001", "")]
    found = match(bank, center)
    assert found.matched == [(bank[0], center[2]), (bank[1], center[0])]
    assert found.only_in_center == [center[1]]


def test_one_bank_line_matches_one_posting_only() -> None:
    bank = [line("2023-04-05", 100)]
    center = [posting("2023-04-05", 100), posting("2023-04-05", 100)]
    found = match(bank, center)
    assert len(found.matched) == 1 and found.only_in_center == [center[1]]
    found = match(center, bank)
    assert len(found.matched) == 1 and len(found.only_in_bank) == 1


def test_the_summary_counts_and_totals_each_side() -> None:
    found = match([line("2023-04-05", -100), line("2023-04-06", 7)], [posting("2023-04-05", -100)])
    assert summary("390100", found) == {
        "summary": True, "fund": "390100", "matched": 1, "only_in_bank": 1, "only_in_center": 0,
        "bank_total": "-0.93", "center_total": "-1.00",
    }  # fmt: skip


def test_a_statement_is_reconciled_when_nothing_is_on_one_side_only() -> None:
    found = summary("390100", match([line("2023-04-05", -100)], [posting("2023-04-05", -100)]))
    assert recorded_result({**found, "from": "2023-04-05", "encoding": "gbk"}) == {
        "stmt_rslt": "0", "matched": 1, "only_in_bank": 0, "only_in_center": 0, "bank_total": "-1.00",
        "center_total": "-1.00",
    }  # fmt: skip
    found = summary("390100", match([], [posting("2023-04-05", -100)]))
    assert recorded_result({**found, "outside_period": 2})["stmt_rslt"] == "1"
    assert recorded_result({**found, "outside_period": 2})["outside_period"] == 2


items = st.lists(
    st.builds(
        BankItem,
        on_date=st.sampled_from(["2023-04-01", "2023-04-02"]),
        amount=st.integers(-3, 3),
        counterparty=st.sampled_from(["", "H001", "H002"]),
        reference=st.sampled_from(["", "PAY-1", "x PAY-1 y"]),
        line=st.integers(0, 5),
    ),
    max_size=12,
)


@given(items, items)
def test_every_item_ends_matched_or_listed_exactly_once_and_totals_are_kept(
    bank: list[BankItem], center: list[BankItem]
) -> None:
    found = match(bank, center)
    bank_ids = [id(b) for b, _ in found.matched] + [id(b) for b in found.only_in_bank]
    center_ids = [id(c) for _, c in found.matched] + [id(c) for c in found.only_in_center]
    assert sorted(bank_ids) == sorted(map(id, bank))
    assert sorted(center_ids) == sorted(map(id, center))
    assert all((b.on_date, b.amount) == (c.on_date, c.amount) for b, c in found.matched)
    # No pair left unmade: nothing listed on one side has a partner listed on the other.
    left_in_bank = {(b.on_date, b.amount) for b in found.only_in_bank}
    assert not left_in_bank & {(c.on_date, c.amount) for c in found.only_in_center}
    shown = summary("390100", found)
    assert shown["bank_total"] == summary("390100", match(bank, []))["bank_total"]
    assert shown["center_total"] == summary("390100", match([], center))["center_total"]
    assert len(unmatched_lines(found)) == len(found.only_in_bank) + len(found.only_in_center)


def test_a_reconciliation_stored_before_bank_statements_replays_with_no_fund() -> None:
    """Its `Recorded` payload has no `fund` key: the field's default answers (core.events)."""
    made = Reconciliation(kind="totals", file_sha256="ab", hospital="H001", begin="2023-03-01", end="2023-03-31",
                          operator="fin-1", on_date="2023-04-02", result={"stmt_rslt": "0"})  # fmt: skip
    mapper = EventMapper()
    stored = mapper.to_stored_event(made.collect_events()[0])
    payload = msgspec.json.decode(stored.state)
    del payload["fund"]
    old = dataclasses.replace(stored, state=msgspec.json.encode(payload))
    replayed = mapper.to_domain_event(old).mutate(None)
    assert (replayed.hospital, replayed.fund, replayed.id) == ("H001", "", made.id)


def test_a_bank_statements_key_names_its_fund_and_a_hospitals_key_is_unchanged() -> None:
    bank = {"kind": "bank", "file_sha256": "ab", "hospital": "", "begin": "2023-04-01", "end": "2023-04-30"}
    assert Reconciliation.create_id(**bank, fund="390100") != Reconciliation.create_id(**bank, fund="310100")
    hospitals = reconciliation_key("totals", "ab", "H001", "2023-03-01", "2023-03-31")
    assert hospitals == "totals:ab:H001:2023-03-01:2023-03-31"
