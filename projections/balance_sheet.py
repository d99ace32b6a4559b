"""Balance sheet per region and fund as of a date (SPEC 6), from the general journal.

Balances are sums of postings up to the date (assets and expenses are debit balances,
liabilities, the opening balance and income credit balances). Income is shown in the order of
the national fund statement (征缴, 财政补助, 利息, 转移, 其他), then expense (待遇, 转移). The
accumulated balance (累计结余) is assets minus liabilities; it must equal the opening balance
brought in plus all income minus all expense, else the journal was changed outside yibao and the sheet is
refused (`read_model_inconsistent`, naming the entries).
Months of payment capacity (可支付月数) = balance / average monthly benefit expense of the
12 months up to the date.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from psycopg import sql

from core.ledger import ACCOUNTS, ASSETS, BENEFIT_EXPENSE, EXPENSES, FUNDS, INCOME, LIABILITIES, OPENING_BALANCE
from core.money import format_yuan
from projections.read_model import ReadModelInconsistent

LINES = (
    "bank", "receivable_from_hospitals", "due_from_regions", "payable_to_hospitals", "payable_to_members",
    "individual_accounts", "in_transit", "due_to_regions", *INCOME, "income_of_year", *EXPENSES, "expense_of_year",
    "opening_balance", "balance", "surplus_of_year",
)  # fmt: skip
LABELS = {
    "bank": ("银行存款", "bank"),
    "receivable_from_hospitals": ("应收医疗机构款(追回)", "receivable from hospitals"),
    "due_from_regions": ("应收其他统筹区款(异地就医)", "due from other regions"),
    "payable_to_hospitals": ("应付医疗机构款", "payable to hospitals"),
    "payable_to_members": ("应付参保人款", "payable to members"),
    "individual_accounts": ("个人账户", "individual accounts"),
    "in_transit": ("在途资金(转移)", "in transit"),
    "due_to_regions": ("应付其他统筹区款(往来)", "due to other regions"),
    # The income lines in the order of the national fund statement (基金收支表).
    "contribution_income": ("本年征缴收入", "contribution income (year)"),
    "fiscal_subsidy_income": ("本年财政补助收入", "fiscal subsidy income (year)"),
    "interest_income": ("本年利息收入", "interest income (year)"),
    "transfer_income": ("本年转移收入", "transfer income (year)"),
    "other_income": ("本年其他收入", "other income (year)"),
    "income_of_year": ("本年收入合计", "total income (year)"),
    "benefit_expense": ("本年待遇支出", "benefit expense (year)"),
    "transfer_expense": ("本年转移支出", "transfer expense (year)"),
    "expense_of_year": ("本年支出合计", "total expense (year)"),
    "opening_balance": ("期初结余(建账)", "opening balance brought in"),
    "balance": ("累计结余", "accumulated balance"),
    "surplus_of_year": ("当年结余", "surplus of the year"),
    "months_of_capacity": ("可支付月数", "months of payment capacity"),
}


@dataclass(frozen=True)
class FundSheet:
    fund: str
    lines: dict[str, int]  # fen, positive in the account's natural direction
    months_of_capacity: Decimal | None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {name: format_yuan(self.lines[name]) for name in LINES}
        out["months_of_capacity"] = None if self.months_of_capacity is None else str(self.months_of_capacity)
        return out


@dataclass(frozen=True)
class BalanceSheet:
    region: str
    as_of: dt.date
    funds: list[FundSheet]

    def to_json(self) -> dict[str, Any]:
        return {
            "region": self.region,
            "as_of": self.as_of.isoformat(),
            "funds": {sheet.fund: sheet.to_json() for sheet in self.funds},
        }


Sums = dict[tuple[str, str], int]  # (fund, account) -> fen, debit positive


def _sums(curs: Any, schema: str, where: sql.Composable, params: tuple[Any, ...]) -> Sums:
    curs.execute(
        sql.SQL("SELECT fund, account, sum(amount) AS total FROM {} WHERE {} GROUP BY fund, account").format(
            sql.Identifier(schema, "journal"), where
        ),
        params,
    )
    return {(row["fund"], row["account"]): int(row["total"]) for row in curs.fetchall()}


def balance_sheet(curs: Any, schema: str, region: str, as_of: dt.date) -> BalanceSheet:
    cumulative = _sums(curs, schema, sql.SQL("posted_on <= %s"), (as_of,))
    year_start = dt.date(as_of.year, 1, 1)
    of_year = _sums(curs, schema, sql.SQL("posted_on BETWEEN %s AND %s"), (year_start, as_of))
    twelve_months_ago = as_of - dt.timedelta(days=365)
    last_12 = _sums(
        curs, schema, sql.SQL("posted_on > %s AND posted_on <= %s AND account = %s"),
        (twelve_months_ago, as_of, BENEFIT_EXPENSE),
    )  # fmt: skip
    return _sheet(curs, schema, region, as_of, cumulative, of_year, last_12)


def _sheet(
    curs: Any, schema: str, region: str, as_of: dt.date, cumulative: Sums, of_year: Sums, last_12: Sums
) -> BalanceSheet:  # fmt: skip
    """The sheet from the sums of postings up to the date, of its year, and of benefit expense in
    the 12 months up to it."""
    funds = []
    for fund in FUNDS:
        if not any(key[0] == fund for key in cumulative):
            continue
        lines: dict[str, int] = {}
        for account in ASSETS:
            lines[account] = cumulative.get((fund, account), 0)
        for account in LIABILITIES:
            lines[account] = -cumulative.get((fund, account), 0)
        for account in INCOME:
            lines[account] = -of_year.get((fund, account), 0)
        lines["income_of_year"] = sum(lines[a] for a in INCOME)
        for account in EXPENSES:
            lines[account] = of_year.get((fund, account), 0)
        lines["expense_of_year"] = sum(lines[a] for a in EXPENSES)
        lines["opening_balance"] = -cumulative.get((fund, OPENING_BALANCE), 0)
        lines["balance"] = sum(lines[a] for a in ASSETS) - sum(lines[a] for a in LIABILITIES)
        lines["surplus_of_year"] = lines["income_of_year"] - lines["expense_of_year"]
        all_income = -sum(cumulative.get((fund, a), 0) for a in INCOME)
        all_expense = sum(cumulative.get((fund, a), 0) for a in EXPENSES)
        if lines["balance"] != lines["opening_balance"] + all_income - all_expense:  # rows changed outside yibao
            raise ReadModelInconsistent(_unbalanced(curs, schema, region, fund, as_of, lines["balance"]))
        monthly = Decimal(last_12.get((fund, BENEFIT_EXPENSE), 0)) / 12
        months = (
            (Decimal(lines["balance"]) / monthly).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
            if monthly > 0
            else None
        )
        funds.append(FundSheet(fund, lines, months))
    return BalanceSheet(region, as_of, funds)


class DailyTotals:
    """The journal summed per fund, account and day, up to a position, kept in memory by a
    long-running reader (the console): brought forward by reading only the postings after its
    position (the journal's key starts with it), so a sheet of any date sums days, not postings."""

    def __init__(self) -> None:
        self.position = 0
        self.days: dict[tuple[str, str, dt.date], int] = {}

    def refresh(self, curs: Any, schema: str, tracked: int) -> None:
        """Add the postings of events after the position up to `tracked`, the read model's
        position (every posting at or before it is written); start again after a rebuild."""
        if tracked < self.position:
            self.position, self.days = 0, {}
        curs.execute(
            sql.SQL(
                "SELECT fund, account, posted_on, sum(amount) AS total FROM {} "
                "WHERE notification_id > %s AND notification_id <= %s GROUP BY fund, account, posted_on"
            ).format(sql.Identifier(schema, "journal")),
            (self.position, tracked),
        )
        for row in curs.fetchall():
            key = (row["fund"], row["account"], row["posted_on"])
            self.days[key] = self.days.get(key, 0) + int(row["total"])
        self.position = tracked

    def sums(self, after: dt.date, through: dt.date, account: str | None = None) -> Sums:
        """Per fund and account, the postings dated after `after` up to `through`."""
        out: Sums = {}
        for (fund, name, day), total in self.days.items():
            if after < day <= through and (account is None or name == account):
                out[fund, name] = out.get((fund, name), 0) + total
        return out

    def sheet(self, curs: Any, schema: str, region: str, as_of: dt.date) -> BalanceSheet:
        """The sheet as of a date (`curs` and `schema`: to name the entries of a fund that does not balance)."""
        before_year = dt.date(as_of.year, 1, 1) - dt.timedelta(days=1)
        return _sheet(
            curs, schema, region, as_of, self.sums(dt.date.min, as_of), self.sums(before_year, as_of),
            self.sums(as_of - dt.timedelta(days=365), as_of, BENEFIT_EXPENSE),
        )  # fmt: skip

    def monthly(self, year: int, account: str) -> dict[str, list[int]]:
        """Per fund, the account's postings of each month of the year (debit positive)."""
        out: dict[str, list[int]] = {}
        for (fund, name, day), total in self.days.items():
            if name == account and day.year == year:
                out.setdefault(fund, [0] * 12)[day.month - 1] += total
        return out


entries_named_max = 10


def _unbalanced(curs: Any, schema: str, region: str, fund: str, as_of: dt.date, balance: int) -> str:
    """The one-line refusal of a fund whose books do not balance, naming the journal entries
    (notification_id, and their legs) whose legs do not sum to zero, are dated apart, or post to
    an account not in the chart."""
    curs.execute(
        sql.SQL(
            "SELECT notification_id, array_agg(leg ORDER BY leg) AS legs FROM {} WHERE fund = %s "
            "GROUP BY notification_id HAVING min(posted_on) <= %s AND (sum(amount) <> 0 "
            "OR count(DISTINCT posted_on) > 1 OR bool_or(account <> ALL(%s))) ORDER BY notification_id LIMIT %s"
        ).format(sql.Identifier(schema, "journal")),
        (fund, as_of, list(ACCOUNTS), entries_named_max + 1),
    )
    rows = curs.fetchall()
    named = ", ".join(f"{row['notification_id']} (legs {','.join(map(str, row['legs']))})" for row in rows)
    found = f"journal entries (notification_id) not balanced: {named}" if rows else "no single entry is unbalanced"
    if len(rows) > entries_named_max:
        found = found.rsplit(", ", 1)[0] + " and more"
    return (
        f"region {region} fund {fund} as of {as_of.isoformat()}: the books do not balance (accumulated "
        f"balance {format_yuan(balance)} is not income minus expense); {found}; the read model was changed "
        "outside yibao (`yibao verify` checks it, `yibao projections rebuild` builds it again from the events)"
    )


def _display_width(text: str) -> int:
    """Columns a terminal uses for `text` (CJK characters take two)."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def render_table(sheet: BalanceSheet) -> str:
    """A plain-text table, Chinese and English labels, funds as columns."""
    funds = [f.fund for f in sheet.funds]
    width = 16
    labels = {name: f"{LABELS[name][0]} {LABELS[name][1]}" for name in (*LINES, "months_of_capacity")}
    label_width = max(_display_width(label) for label in labels.values()) + 2
    header = " " * label_width + "".join(f"{fund:>{width}}" for fund in funds)
    rows = [f"资产负债表 Balance sheet — region {sheet.region}, as of {sheet.as_of.isoformat()}", header]
    for name in (*LINES, "months_of_capacity"):
        label = labels[name]
        cells = []
        for f in sheet.funds:
            if name == "months_of_capacity":
                cells.append("-" if f.months_of_capacity is None else str(f.months_of_capacity))
            else:
                cells.append(format_yuan(f.lines[name]))
        padding = " " * (label_width - _display_width(label))
        rows.append(label + padding + "".join(f"{c:>{width}}" for c in cells))
    if not funds:
        rows.append("(no postings yet)")
    return "\n".join(rows)


STATEMENT = (
    ("brought_forward", "上年结余", "balance brought forward"),
    *((name, LABELS[name][0].removeprefix("本年"), LABELS[name][1].removesuffix(" (year)")) for name in INCOME),
    ("income_of_year", "收入合计", "total income"),
    *((name, LABELS[name][0].removeprefix("本年"), LABELS[name][1].removesuffix(" (year)")) for name in EXPENSES),
    ("expense_of_year", "支出合计", "total expense"),
    ("surplus_of_year", "当年结余", "surplus of the year"),
    ("balance", "累计结余", "accumulated balance"),
    ("months_of_capacity", "可支付月数", "months of payment capacity"),
)


def render_statement(sheet: BalanceSheet, *, indent: str = "") -> str:
    """The fund statement of the year (基金收支表) a finance officer reads: per fund, the balance
    it started the year with, income by line in the national order, expense, the surplus of the
    year, the accumulated balance and the months of payment capacity."""
    width = 14
    rows = [f"{indent}基金收支表 Fund statement {sheet.as_of.year} (yuan)"]
    label_width = max(_display_width(f"{zh} {en}") for _, zh, en in STATEMENT) + 2
    rows.append(indent + " " * label_width + "".join(f"{f.fund:>{width}}" for f in sheet.funds))
    for name, zh, en in STATEMENT:
        cells = []
        for f in sheet.funds:
            if name == "months_of_capacity":
                cells.append("-" if f.months_of_capacity is None else str(f.months_of_capacity))
            elif name == "brought_forward":
                cells.append(format_yuan(f.lines["balance"] - f.lines["surplus_of_year"]))
            else:
                cells.append(format_yuan(f.lines[name]))
        label = f"{zh} {en}"
        padding = " " * (label_width - _display_width(label))
        rows.append(indent + label + padding + "".join(f"{c:>{width}}" for c in cells))
    return "\n".join(rows)
