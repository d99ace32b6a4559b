"""Fund entries (基金收支) beyond contributions and claims, and the rule that a fund never pays
from money it does not have.

A `FundEntry` is one financing fact of a region, idempotent by its id (the same id with the same
content records nothing new; with other content it is refused, `exists_with_different_content`):
- `fund_transfer`: money moved from one fund of the region to another, 转移支出 of the one and
  转移收入 of the other; the serious-illness financing (大病保险筹资划转) is one, its amount the
  policy's per-capita figure times the members insured that year (`serious_illness_financing`);
- `interest`: interest the fund's bank account earned (利息收入);
- `opening_balance`: the balance a fund brings when its books are opened here (期初结余, the
  previous system's closing balance), so that the accumulated balance is the fund's real one.

Money leaves a fund's bank account on a hospital payment (拨付) and on a transfer out. Each is
refused (`insufficient_fund_balance`) when the fund's bank balance on its date, or on any later
date already booked, would fall below zero, unless the policy allows that fund an overdraft
(`check_bank_draw`; the application reads the balances under the region's write lock).

Imports core only.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from core.codec import aggregate_topic
from core.errors import YibaoError
from core.events import Aggregate, Created
from core.ids import fund_entry_id
from core.ledger import (
    BANK,
    FUNDS,
    INDIVIDUAL_ACCOUNT_FUND,
    INTEREST_INCOME,
    OPENING_BALANCE,
    TRANSFER_EXPENSE,
    TRANSFER_INCOME,
    Posting,
    basic_fund,
    check_balanced,
    journal,
    move,
    serious_illness_fund,
)
from core.money import format_yuan

FUND_TRANSFER, INTEREST, OPENING = "fund_transfer", "interest", "opening_balance"
ENTRY_KINDS = (FUND_TRANSFER, INTEREST, OPENING)
SERIOUS_ILLNESS_FINANCING_REASON = "大病保险筹资划转"

# Where each kind of event that can move a bank account keeps the date its postings are posted
# on (as the read model's journal has them): the balance check reads the events the read model
# has not projected yet from the log (tests/unit/test_funds.py holds this list to the read model).
BANK_EVENT_DATES: dict[str, tuple[str, ...]] = {
    "Contribution.Received": ("contribution", "paid_date"),
    "HospitalAccount.Paid": ("paid_on",),
    "MemberPayables.Paid": ("paid_on",),
    "HospitalAccount.Recovered": ("on_date",),
    "HospitalAccount.Fined": ("on_date",),
    "FundEntry.Recorded": ("entry", "on_date"),
    "RegionClearings.Cleared": ("on_date",),
}


class FundEntryRejected(YibaoError):
    reason = "fund_entry_rejected"


class InsufficientFundBalance(YibaoError):
    reason = "insufficient_fund_balance"


@attrs.frozen
class EntryFacts:
    """One fund entry, amounts in fen; `to_fund` only for a transfer."""

    kind: str
    entry_id: str
    fund: str
    amount: int
    on_date: str
    reason: str
    operator: str
    to_fund: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)

    def content(self) -> dict[str, Any]:
        """What an id stands for: everything but who recorded it (a retry by another operator
        is the same fact)."""
        return {k: v for k, v in self.to_dict().items() if k != "operator"}

    def describe(self) -> str:
        where = f"{self.fund} -> {self.to_fund}" if self.to_fund else self.fund
        return f"{self.kind} {where} {format_yuan(self.amount)} on {self.on_date} ({self.reason})"


def entry(
    kind: str, entry_id: str, *, fund: str, amount: int, on_date: dt.date, reason: str, operator: str,
    to_fund: str | None = None,
) -> EntryFacts:  # fmt: skip
    """A checked fund entry, or a named refusal."""
    if kind not in ENTRY_KINDS:
        raise AssertionError(f"unknown fund entry kind {kind!r}")
    if amount <= 0:
        raise FundEntryRejected(f"{kind} of {format_yuan(amount)}: the amount must be positive", reason="bad_amount")
    for code in (fund, to_fund):
        if code == INDIVIDUAL_ACCOUNT_FUND:
            raise FundEntryRejected(
                f"fund {code} holds the members' individual accounts: its money moves only with them",
                reason="individual_account_fund",
            )
        if code is not None and code not in FUNDS:
            raise FundEntryRejected(f"unknown fund {code!r}", reason="bad_fund")
    if (kind == FUND_TRANSFER) != (to_fund is not None) or fund == to_fund:
        raise FundEntryRejected(f"a transfer goes from one fund to another: {fund} to {to_fund}", reason="same_fund")
    return EntryFacts(kind, entry_id, fund, amount, on_date.isoformat(), reason, operator, to_fund)


def entry_postings(facts: EntryFacts) -> list[Posting]:
    if facts.kind == FUND_TRANSFER:
        assert facts.to_fund is not None
        return journal(
            *move(facts.fund, TRANSFER_EXPENSE, BANK, facts.amount, debit_party=facts.to_fund),
            *move(facts.to_fund, BANK, TRANSFER_INCOME, facts.amount, credit_party=facts.fund),
        )
    income = INTEREST_INCOME if facts.kind == INTEREST else OPENING_BALANCE
    return journal(*move(facts.fund, BANK, income, facts.amount))


@aggregate_topic("FundEntry")
class FundEntry(Aggregate):
    class Recorded(Created):
        entry: dict[str, Any]  # EntryFacts.to_dict()
        postings: list[Posting]

    @staticmethod
    def create_id(entry: dict[str, Any], postings: list[Posting]) -> Any:
        return fund_entry_id(entry["entry_id"])

    def __init__(self, entry: dict[str, Any], postings: list[Posting]) -> None:
        check_balanced(postings)
        self.entry = entry

    def check_same(self, facts: EntryFacts) -> None:
        """Refuse an id already used for another entry: a retry is answered `duplicate`, but an
        id given again with another amount must not be told it was recorded."""
        done = EntryFacts(**self.entry)
        if done.content() != facts.content():
            raise FundEntryRejected(
                f"{facts.entry_id} was already used, for {done.describe()}; not {facts.describe()}",
                reason="exists_with_different_content",
            )


# --- the serious-illness financing (大病保险筹资) -----------------------------------------------


def serious_illness_entry_id(region: str, year: int, insutype: str) -> str:
    """One financing per region, year and scheme: running the command again finds it."""
    return f"SI-{region}-{year}-{insutype}"


def serious_illness_financing(
    region: str, year: int, per_capita: Mapping[str, int], insured: Mapping[str, int], *, on_date: dt.date,
    operator: str,
) -> list[EntryFacts]:  # fmt: skip
    """Per scheme with a per-capita figure: that figure times the members insured that year,
    from the scheme's pooling fund to its serious-illness fund (390100 -> 390200 for residents,
    310100 -> 330100 for employees). A scheme with no member insured moves nothing."""
    entries = []
    for insutype, fen in sorted(per_capita.items()):
        members = insured.get(insutype, 0)
        if members == 0 or fen == 0:
            continue
        reason = f"{SERIOUS_ILLNESS_FINANCING_REASON} {year}: {members} insured x {format_yuan(fen)}"
        entries.append(
            entry(
                FUND_TRANSFER,
                serious_illness_entry_id(region, year, insutype),
                fund=basic_fund(insutype),
                to_fund=serious_illness_fund(insutype),
                amount=fen * members,
                on_date=on_date,
                reason=reason,
                operator=operator,
            )
        )
    return entries


# --- the bank balance rule --------------------------------------------------------------------


@attrs.frozen
class BankDraw:
    """What one fact of a save moves in funds' bank accounts on its date: `amounts`, fund -> fen
    leaving (positive), checked against the balance; `moves`, fund -> net movement (money in is
    positive), which the facts after it in the same save find booked."""

    on_date: str
    amounts: Mapping[str, int]
    moves: Mapping[str, int] = attrs.field(factory=dict)


def bank_moves(postings: Iterable[Posting]) -> dict[str, int]:
    """fund -> the net movement of its bank account in these postings (money in is positive)."""
    net: dict[str, int] = {}
    for p in postings:
        if p.account == BANK:
            net[p.fund] = net.get(p.fund, 0) + p.amount
    return {fund: amount for fund, amount in sorted(net.items()) if amount != 0}


def check_bank_draw(draw: BankDraw, days: Mapping[str, Sequence[tuple[str, int]]]) -> None:
    """Refuse a draw that takes a fund's bank balance below zero on its date or on any later date
    already booked. `days`: fund -> (date, bank movement) pairs, in any order."""
    for fund, amount in sorted(draw.amounts.items()):
        by_day = _by_day(days.get(fund, ()))
        balance = sum(moved for on, moved in by_day if on <= draw.on_date)
        lowest, lowest_on = balance, draw.on_date
        running = balance
        for on, moved in by_day:
            if on > draw.on_date:
                running += moved
                if running < lowest:
                    lowest, lowest_on = running, on
        if lowest - amount < 0:
            later = f" and {format_yuan(lowest)} on {lowest_on}" if lowest_on != draw.on_date else ""
            raise InsufficientFundBalance(
                f"fund {fund} has {format_yuan(balance)} in the bank on {draw.on_date}{later}: cannot pay "
                f"{format_yuan(amount)} from it (a policy allows overdrafts with [controls] overdraft_allowed)"
            )


def check_bank_draws(draws: Sequence[BankDraw], days: Mapping[str, Sequence[tuple[str, int]]]) -> None:
    """`check_bank_draw` for each draw of one save, in order, each after the ones before it."""
    booked = {fund: list(moves) for fund, moves in days.items()}
    for draw in draws:
        check_bank_draw(draw, booked)
        for fund, moved in draw.moves.items():
            booked[fund] = [*booked.get(fund, []), (draw.on_date, moved)]


def _by_day(moves: Iterable[tuple[str, int]]) -> list[tuple[str, int]]:
    """(date, net movement) per date, sorted: a balance is the balance at the end of a day."""
    sums: dict[str, int] = {}
    for on, moved in moves:
        sums[on] = sums.get(on, 0) + moved
    return sorted(sums.items())


def lowest_bank_balance(days: Sequence[tuple[str, int]]) -> tuple[str, int] | None:
    """The date and amount of a fund's lowest end-of-day bank balance, if it is below zero."""
    running, lowest = 0, None
    for on, moved in _by_day(days):
        running += moved
        if running < 0 and (lowest is None or running < lowest[1]):
            lowest = (on, running)
    return lowest
