"""The centre's side of a reconciliation (3201, 3202), read from the `settlement_lines` table of
every region (a hospital may treat members of several): its totals for a period, and the
streamed comparison of a hospital's settlement lines with its own. And the centre's side of a
bank statement: a fund's postings to its bank account, from the region's journal.

The detail comparison holds no side in memory: the hospital's lines are copied into a temporary
table, PostgreSQL joins both sides summed per (setl_id, refd_setl_flag) with a FULL OUTER JOIN,
and the joined rows come back in batches through a server-side cursor; `core.reconcile` decides
each row.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from typing import Any

from psycopg import sql
from psycopg.rows import tuple_row

from core.bank_statement import NOT_BANK_MOVEMENTS, BankItem
from core.ledger import BANK
from core.reconcile import LINE_AMOUNTS, DetailLine
from store.migrate import schema_name

fetch_rows = 10_000  # joined rows per round trip of the server-side cursor


def _lines(regions: list[str]) -> sql.Composable:
    """Every region's settlement lines, as one relation."""
    return sql.SQL(" UNION ALL ").join(
        sql.SQL("SELECT * FROM {}").format(sql.Identifier(schema_name(code), "settlement_lines")) for code in regions
    )


def center_totals(
    curs: Any, regions: list[str], hospital: str, insutype: str, clr_type: str, begin: dt.date, end: dt.date,
    *, with_refunds: bool,
) -> dict[str, int]:  # fmt: skip
    """The centre's four figures of a hospital's lines dated in [begin, end]; reversal lines
    (refd_setl_flag '1') are included only `with_refunds`."""
    query = sql.SQL(
        "SELECT coalesce(sum(medfee_sumamt), 0) AS medfee_sumamt, coalesce(sum(fund_pay_sumamt), 0) AS fund_pay_sumamt,"
        " coalesce(sum(acct_pay), 0) AS acct_pay, count(*) AS fixmedins_setl_cnt FROM ({}) AS l"
        " WHERE hospital = %s AND insutype = %s AND clr_type = %s AND line_date BETWEEN %s AND %s"
        " AND (%s OR refd_setl_flag = '0')"
    ).format(_lines(regions))
    row = curs.execute(query, (hospital, insutype, clr_type, begin, end, with_refunds)).fetchone()
    return {name: int(row[name]) for name in ("medfee_sumamt", "fund_pay_sumamt", "acct_pay", "fixmedins_setl_cnt")}


Joined = tuple[str, str, tuple[int, ...] | None, tuple[int, ...] | None]


def joined_lines(
    curs: Any, regions: list[str], hospital: str, begin: dt.date, end: dt.date, lines: Iterable[DetailLine]
) -> Iterator[Joined]:
    """(setl_id, refd_setl_flag, centre's summed amounts or None, hospital's or None) of every
    key either side has, in key order. `lines` is consumed once, streamed into PostgreSQL."""
    curs.execute(
        "CREATE TEMP TABLE hospital_lines (setl_id text NOT NULL, refd_setl_flag text NOT NULL,"
        " medfee_sumamt bigint NOT NULL, fund_pay_sumamt bigint NOT NULL, acct_pay bigint NOT NULL)"
        " ON COMMIT DROP"
    )
    with curs.copy("COPY hospital_lines FROM STDIN") as copy:
        for line in lines:
            copy.write_row((line.setl_id, line.refd_setl_flag, *line.amounts))
    sums = sql.SQL(", ").join(sql.SQL("sum({0}) AS {0}").format(sql.Identifier(n)) for n in LINE_AMOUNTS)
    query = sql.SQL(
        "WITH c AS (SELECT setl_id, refd_setl_flag, {sums} FROM ({lines}) AS l"
        "           WHERE hospital = %s AND line_date BETWEEN %s AND %s GROUP BY 1, 2),"
        " h AS (SELECT setl_id, refd_setl_flag, {sums} FROM hospital_lines GROUP BY 1, 2)"
        " SELECT coalesce(c.setl_id, h.setl_id), coalesce(c.refd_setl_flag, h.refd_setl_flag), c.setl_id IS NOT NULL,"
        " c.medfee_sumamt, c.fund_pay_sumamt, c.acct_pay, h.setl_id IS NOT NULL,"
        " h.medfee_sumamt, h.fund_pay_sumamt, h.acct_pay"
        " FROM c FULL OUTER JOIN h USING (setl_id, refd_setl_flag) ORDER BY 1, 2"
    ).format(sums=sums, lines=_lines(regions))
    with curs.connection.cursor(name="reconcile_detail", row_factory=tuple_row) as joined:
        joined.itersize = fetch_rows
        joined.execute(query, (hospital, begin, end))
        for row in joined:
            center = tuple(map(int, row[3:6])) if row[2] else None
            declared = tuple(map(int, row[7:10])) if row[6] else None
            yield row[0], row[1], center, declared


def bank_postings(curs: Any, schema: str, fund: str, begin: str, end: str) -> list[BankItem]:
    """A fund's postings to its bank account dated in [begin, end], one per journal entry (its
    bank legs of the fund summed), by date and journal position. Each carries the entry's kind and
    reference (payment, contribution, recovery, fine or fund entry id) and, as counterparty, the
    first party an entry's legs name, the fund's own legs first: a hospital payment's, recovery's
    or fine's is the hospital code, a fund transfer's the other fund, a contribution's the member
    when part of it goes to the individual account (none otherwise), interest has none."""
    journal = sql.Identifier(schema, "journal")
    query = sql.SQL(
        "SELECT j.posted_on, j.kind, j.ref, sum(j.amount) AS amount,"
        " coalesce((SELECT o.party FROM {0} AS o WHERE o.notification_id = j.notification_id AND o.party <> ''"
        "           ORDER BY o.fund = %(fund)s DESC, o.leg LIMIT 1), '') AS counterparty"
        " FROM {0} AS j WHERE j.fund = %(fund)s AND j.account = %(bank)s AND j.posted_on BETWEEN %(begin)s AND %(end)s"
        " AND j.kind <> ALL(%(not_moved)s) GROUP BY j.notification_id, j.posted_on, j.kind, j.ref"
        " HAVING sum(j.amount) <> 0 ORDER BY j.posted_on, j.notification_id"
    ).format(journal)
    params = {"fund": fund, "bank": BANK, "begin": begin, "end": end, "not_moved": list(NOT_BANK_MOVEMENTS)}
    return [
        BankItem(row["posted_on"].isoformat(), int(row["amount"]), row["counterparty"], row["ref"], kind=row["kind"])
        for row in curs.execute(query, params).fetchall()
    ]
