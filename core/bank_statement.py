"""Bank statement matching (银行对账): a fund's bank statement against the fund's bank postings.

Pure rules, no database: decoding and parsing the statement a bank exports (CSV: date, amount,
counterparty, reference; UTF-8 with or without BOM, or GBK), and matching its lines one to one
with the centre's postings to the fund's bank account. A bank line and a posting match when
their date and amount are equal to the fen; when several of one date and amount could pair up,
those whose counterparty is the same, and whose reference the bank's reference contains, pair
first. Amounts are signed fen: positive is money into the fund's account, on both sides.

Imports core only.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import re
from collections.abc import Iterable, Sequence
from typing import Any

import attrs

from core.errors import YibaoError
from core.funds import OPENING
from core.ledger import FUNDS
from core.money import AmountError, format_yuan, parse_yuan

__all__ = [
    "NOT_BANK_MOVEMENTS",
    "ONLY_IN_BANK",
    "ONLY_IN_CENTER",
    "SIDE_BANK",
    "SIDE_CENTER",
    "BankItem",
    "Matching",
    "StatementRejected",
    "bank_amount",
    "check_fund",
    "decode_statement",
    "match",
    "parse_statement",
    "recorded_result",
    "statement_period",
    "summary",
    "unmatched_line",
    "unmatched_lines",
    "within",
]

SIDE_BANK, SIDE_CENTER = "bank", "center"
ONLY_IN_BANK, ONLY_IN_CENTER = "only_in_bank", "only_in_center"
# Journal kinds that post to a bank account without money moving through it: an opening balance
# (期初结余) is the balance the fund's books start from, not a line of any statement.
NOT_BANK_MOVEMENTS = (OPENING,)
COLUMNS = ("date", "amount", "counterparty", "reference")
# Header names banks use for each column (lower-cased), beside the English ones.
HEADER_NAMES = {
    "date": ("date", "日期", "交易日期", "记账日期"),
    "amount": ("amount", "金额", "交易金额", "发生额"),
    "counterparty": ("counterparty", "对方户名", "对方名称", "对方账户", "对方单位"),
    "reference": ("reference", "摘要", "附言", "用途", "备注", "参考号"),
}
statement_lines_max = 1_000_000  # a fund's statement of a year is far smaller
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_GROUPED = re.compile(r"[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]*)?")


class StatementRejected(YibaoError):
    """A statement that cannot be read; `reason` names what is wrong and `line` where (0: the file)."""

    reason = "bad_statement"

    def __init__(self, message: str, *, reason: str, line: int = 0) -> None:
        super().__init__(f"line {line}: {message}" if line else message, reason=reason)
        self.line = line


@attrs.frozen
class BankItem:
    """One bank line or one posting to the fund's bank account (fen, + into the account).

    `line` is the statement line number (bank side); `kind` the journal's kind of the posting
    (centre side: hospital_payment, contribution, recovery, fine, fund_transfer, interest)."""

    on_date: str
    amount: int
    counterparty: str
    reference: str
    line: int = 0
    kind: str = ""


@attrs.frozen
class Matching:
    matched: list[tuple[BankItem, BankItem]]  # (bank line, posting)
    only_in_bank: list[BankItem]
    only_in_center: list[BankItem]


def decode_statement(data: bytes) -> tuple[str, str]:
    """The statement's text and the encoding it was read in: UTF-8 (with or without BOM), else
    GBK (GB18030 for the characters GBK lacks), as Chinese banks export."""
    if data.startswith(codecs.BOM_UTF8):
        candidates: tuple[str, ...] = ("utf-8-sig",)
    else:
        candidates = ("utf-8", "gbk", "gb18030")
    for encoding in candidates:
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    raise StatementRejected("the statement is neither UTF-8 nor GBK text", reason="bad_encoding")


def parse_statement(text: str) -> list[BankItem]:
    """The statement's lines, in file order. A first row whose first cell is not a date is a
    header naming the columns (HEADER_NAMES); without one the columns are in COLUMNS order."""
    reader = csv.reader(io.StringIO(text, newline=""))
    order: dict[str, int] | None = None
    items: list[BankItem] = []
    for row in reader:
        cells = [cell.strip() for cell in row]
        if not any(cells):
            continue
        if order is None:
            order = _columns(cells, reader.line_num)
            if not _DATE.fullmatch(cells[0]):
                continue
        if len(items) >= statement_lines_max:
            raise StatementRejected(f"more than {statement_lines_max} lines", reason="too_many_lines")
        items.append(_item(cells, order, reader.line_num))
    if not items:
        raise StatementRejected("the statement has no lines", reason="empty_statement")
    return items


def _columns(first: list[str], line: int) -> dict[str, int]:
    """Where each column is: from the header row, or COLUMNS order when the first row is data."""
    if _DATE.fullmatch(first[0]):
        return {name: i for i, name in enumerate(COLUMNS)}
    names = [cell.lstrip("\ufeff").lower() for cell in first]
    order = {}
    for column, aliases in HEADER_NAMES.items():
        found = [names.index(alias) for alias in aliases if alias in names]  # the first alias given wins
        if not found:
            raise StatementRejected(
                f"header {first}: no {column!r} column ({', '.join(aliases)})", reason="bad_header", line=line
            )
        order[column] = found[0]
    return order


def _item(cells: list[str], order: dict[str, int], line: int) -> BankItem:
    if len(cells) <= max(order.values()):
        raise StatementRejected(f"expected {max(order.values()) + 1} columns, got {len(cells)}", reason="bad_line",
                                line=line)  # fmt: skip
    on_date = cells[order["date"]]
    if not _DATE.fullmatch(on_date):
        raise StatementRejected(f"date {on_date!r}: expected YYYY-MM-DD", reason="bad_date", line=line)
    try:
        dt.date.fromisoformat(on_date)
    except ValueError:
        raise StatementRejected(f"date {on_date!r} does not exist", reason="bad_date", line=line) from None
    return BankItem(
        on_date, bank_amount(cells[order["amount"]], line), cells[order["counterparty"]], cells[order["reference"]],
        line=line,
    )  # fmt: skip


def bank_amount(text: str, line: int = 0) -> int:
    """A signed yuan amount in fen ("-1,234.56" allowed, thousands grouped by commas), exactly;
    more than two decimals is refused, not rounded."""
    sign, digits = (-1, text[1:]) if text[:1] == "-" else (1, text[1:] if text[:1] == "+" else text)
    if _GROUPED.fullmatch(digits):
        digits = digits.replace(",", "")
    try:
        return sign * parse_yuan(digits)
    except AmountError as exc:
        raise StatementRejected(f"amount {text!r}: {exc}", reason=exc.reason, line=line) from None


def check_fund(fund: str) -> str:
    if fund not in FUNDS:
        raise StatementRejected(f"unknown fund {fund!r} (one of {', '.join(FUNDS)})", reason="unknown_fund")
    return fund


def statement_period(items: Sequence[BankItem], begin: dt.date | None, end: dt.date | None) -> tuple[str, str]:
    """The period reconciled: the one given, else the statement's first and last dates."""
    if (begin is None) != (end is None):
        raise StatementRejected("give both --from and --to, or neither", reason="bad_period")
    if begin is None or end is None:
        return min(item.on_date for item in items), max(item.on_date for item in items)
    if end < begin:
        raise StatementRejected("--to is before --from", reason="bad_period")
    return begin.isoformat(), end.isoformat()


def within(items: Iterable[BankItem], begin: str, end: str) -> list[BankItem]:
    """The items dated in [begin, end] (ISO dates compare as text)."""
    return [item for item in items if begin <= item.on_date <= end]


def match(bank: Sequence[BankItem], center: Sequence[BankItem]) -> Matching:
    """Pair bank lines with postings one to one on (date, amount); within one (date, amount) the
    pairs with the most in common (`_affinity`) are taken first, then in each side's order.
    Every item ends either in exactly one pair or in exactly one of the two unmatched lists."""
    by_key: dict[tuple[str, int], tuple[list[int], list[int]]] = {}
    for i, item in enumerate(bank):
        by_key.setdefault((item.on_date, item.amount), ([], []))[0].append(i)
    for j, item in enumerate(center):
        by_key.setdefault((item.on_date, item.amount), ([], []))[1].append(j)
    pairs: list[tuple[int, int]] = []
    for bank_ids, center_ids in by_key.values():
        pairs.extend(_pair(bank, center, bank_ids, center_ids))
    pairs.sort()
    paired_bank, paired_center = {i for i, _ in pairs}, {j for _, j in pairs}
    return Matching(
        matched=[(bank[i], center[j]) for i, j in pairs],
        only_in_bank=[item for i, item in enumerate(bank) if i not in paired_bank],
        only_in_center=[item for j, item in enumerate(center) if j not in paired_center],
    )


def _pair(
    bank: Sequence[BankItem], center: Sequence[BankItem], bank_ids: list[int], center_ids: list[int]
) -> list[tuple[int, int]]:
    """Pairs of one (date, amount): as many as the smaller side has, best affinity first."""
    if len(bank_ids) == 1 and len(center_ids) == 1:
        return [(bank_ids[0], center_ids[0])]
    ranked = sorted((-_affinity(bank[i], center[j]), i, j) for i in bank_ids for j in center_ids)
    used_bank: set[int] = set()
    used_center: set[int] = set()
    pairs = []
    for _, i, j in ranked:
        if i not in used_bank and j not in used_center:
            used_bank.add(i)
            used_center.add(j)
            pairs.append((i, j))
    return pairs


def _affinity(line: BankItem, posting: BankItem) -> int:
    """How much a bank line and a posting of the same date and amount have in common: the same
    counterparty (a hospital payment's is the hospital code), and the posting's reference (its
    payment, contribution, recovery or fine id) written in the bank's reference (摘要)."""
    same_party = bool(posting.counterparty) and line.counterparty == posting.counterparty
    return int(same_party) + int(_names(line.reference, posting.reference))


def _names(text: str, reference: str) -> bool:
    """Whether `text` holds `reference` as a whole id: PAY-1 is not named by "PAY-12"."""
    if not reference:
        return False
    return re.search(rf"(?<![A-Za-z0-9_-]){re.escape(reference)}(?![A-Za-z0-9_-])", text) is not None


def unmatched_line(item: BankItem, side: str) -> dict[str, Any]:
    """The output line of an item found on one side only."""
    out: dict[str, Any] = {
        "side": side, "date": item.on_date, "amount": format_yuan(item.amount), "counterparty": item.counterparty,
        "reference": item.reference, "reason": ONLY_IN_BANK if side == SIDE_BANK else ONLY_IN_CENTER,
    }  # fmt: skip
    if side == SIDE_BANK:
        out["line"] = item.line
    else:
        out["kind"] = item.kind
    return out


def unmatched_lines(matching: Matching) -> list[dict[str, Any]]:
    """Every unmatched item, by date; on one date the bank's lines first, each side in its order."""
    sided = [(item, SIDE_BANK, n) for n, item in enumerate(matching.only_in_bank)]
    sided += [(item, SIDE_CENTER, n) for n, item in enumerate(matching.only_in_center)]
    sided.sort(key=lambda s: (s[0].on_date, s[1] != SIDE_BANK, s[2]))
    return [unmatched_line(item, side) for item, side, _ in sided]


def summary(fund: str, matching: Matching) -> dict[str, Any]:
    """The summary line: counts, and each side's total (matched and unmatched items)."""
    bank_total = sum(b.amount for b, _ in matching.matched) + sum(b.amount for b in matching.only_in_bank)
    center_total = sum(c.amount for _, c in matching.matched) + sum(c.amount for c in matching.only_in_center)
    return {
        "summary": True, "fund": fund, "matched": len(matching.matched), ONLY_IN_BANK: len(matching.only_in_bank),
        ONLY_IN_CENTER: len(matching.only_in_center), "bank_total": format_yuan(bank_total),
        "center_total": format_yuan(center_total),
    }  # fmt: skip


def recorded_result(found: dict[str, Any]) -> dict[str, Any]:
    """What a reconciliation records of a statement's summary line: `stmt_rslt` "0" when nothing
    is on one side only, "1" otherwise, and the counts and totals."""
    differ = found[ONLY_IN_BANK] + found[ONLY_IN_CENTER]
    kept = ("matched", ONLY_IN_BANK, ONLY_IN_CENTER, "bank_total", "center_total", "outside_period")
    return {"stmt_rslt": "0" if differ == 0 else "1", **{k: found[k] for k in kept if k in found}}
