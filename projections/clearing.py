"""What a clearing (清算, 3203) reads: a hospital's month summed from the settlement lines, each
fund's part from the journal rows of the same events, and the hospital's totals reconciliations of
the month checked against the centre's figures now (`core.clearing` decides)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

from psycopg import sql

from app.clearing_cases import MonthRead
from app.region import RegionApplication
from core.clearing import LineCheck, PeriodCheck, month_bounds, month_figures, unreconciled
from core.ledger import BENEFIT_EXPENSE
from projections.read_model import catch_up, reading
from projections.reconciliation import center_totals
from store.migrate import schema_name


def figures_of_month(curs: Any, schema: str, hospital: str, first: dt.date, last: dt.date) -> dict[str, Any]:
    """3203's figures of the hospital's lines in one region dated in [first, last]."""
    lines, journal = sql.Identifier(schema, "settlement_lines"), sql.Identifier(schema, "journal")
    row = curs.execute(
        sql.SQL(
            "SELECT count(*) FILTER (WHERE refd_setl_flag = '0') AS settled,"
            " count(*) FILTER (WHERE refd_setl_flag = '1') AS reversed,"
            " coalesce(sum(medfee_sumamt), 0) AS medfee, coalesce(sum(acct_pay), 0) AS acct"
            " FROM {} WHERE hospital = %s AND line_date BETWEEN %s AND %s"
        ).format(lines),
        (hospital, first, last),
    ).fetchone()
    # A line's notification_id is the position of the event that made it, as for its journal rows.
    funds = curs.execute(
        sql.SQL(
            "SELECT j.fund, sum(j.amount) AS paid FROM {} l JOIN {} j ON j.notification_id = l.notification_id"
            " WHERE l.hospital = %s AND l.line_date BETWEEN %s AND %s AND j.account = %s GROUP BY j.fund"
        ).format(lines, journal),
        (hospital, first, last, BENEFIT_EXPENSE),
    ).fetchall()
    paid = {r["fund"]: int(r["paid"]) for r in funds}
    return month_figures(int(row["settled"]), int(row["reversed"]), int(row["medfee"]), int(row["acct"]), paid)


def _keys_present(curs: Any, regions: Sequence[str], hospital: str, first: dt.date, last: dt.date) -> set[Any]:
    found: set[Any] = set()
    for code in regions:
        query = sql.SQL(
            "SELECT DISTINCT insutype, clr_type FROM {} WHERE hospital = %s AND line_date BETWEEN %s AND %s"
        ).format(sql.Identifier(schema_name(code), "settlement_lines"))
        found.update((r["insutype"], r["clr_type"]) for r in curs.execute(query, (hospital, first, last)))
    return found


def _periods(curs: Any, apps: Sequence[RegionApplication], hospital: str) -> list[PeriodCheck]:
    """The last totals reconciliation of each period of the hospital (in any region), each line's
    centre figures as recorded and as they are now."""
    regions = [app.region for app in apps]
    last: dict[tuple[str, str], Any] = {}
    for app in apps:
        for r in app.reconciliations():
            if r.kind == "totals" and r.hospital == hospital:
                seen = last.get((r.begin, r.end))
                if seen is None or r.modified_on > seen.modified_on:
                    last[(r.begin, r.end)] = r
    checks = []
    for (begin, end), r in sorted(last.items()):
        b, e = dt.date.fromisoformat(begin), dt.date.fromisoformat(end)
        lines = tuple(
            LineCheck(c["insutype"], c["clr_type"], c["figures"], center_totals(
                curs, regions, hospital, c["insutype"], c["clr_type"], b, e, with_refunds=c["with_refunds"]))
            for c in r.result.get("center", [])
        )  # fmt: skip
        if not lines:  # recorded before the centre's figures were kept: it cannot be checked
            lines = (LineCheck("?", "?", None, {}),)
        checks.append(PeriodCheck(b, e, r.result["stmt_rslt"], lines))
    return checks


def month_reader(
    app: RegionApplication, others: Sequence[RegionApplication], up_to_date: Callable[[Any], Any] = catch_up
) -> Callable[[str, str], MonthRead]:
    """`(hospital, month) -> MonthRead` for clearing in `app`'s region; `others` are every
    region (reconciliations compare the centre's lines of all of them)."""

    def read(hospital: str, month: str) -> MonthRead:
        first, last = month_bounds(month)
        for each in others:
            up_to_date(each)
        with reading(app) as (curs, schema):
            figures = figures_of_month(curs, schema, hospital, first, last)
            keys = _keys_present(curs, [a.region for a in others], hospital, first, last)
            refusal = unreconciled(first, last, keys, _periods(curs, others, hospital))
        return MonthRead(figures, refusal)

    return read


def first_line_date(app: RegionApplication, hospital: str) -> dt.date | None:
    """The date of the hospital's first settlement line in the region (None: it has none)."""
    with reading(app) as (curs, schema):
        row = curs.execute(
            sql.SQL("SELECT min(line_date) AS first FROM {} WHERE hospital = %s").format(
                sql.Identifier(schema, "settlement_lines")
            ),
            (hospital,),
        ).fetchone()
    return row["first"] if row else None
