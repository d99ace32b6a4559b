"""Transfer reports from a region's read model: its transfers, counts per month, balances in transit.

A region's `transfers` rows are its members' transfers out (with their status as the releasing
region sees it) and the arrivals of members transferred in. In-transit (fund 310200) holds the
balances of transfers out that the receiving region has not yet recorded; `due_to_regions` holds
what this region owes other regions (credit) or is owed by them (debit) for completed transfers,
until the funds' clearing.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from psycopg import sql

from core.ledger import DUE_TO_REGIONS, IN_TRANSIT, INDIVIDUAL_ACCOUNT_FUND
from core.money import format_yuan

_COLUMNS = (
    "transfer_id", "direction", "psn_no", "from_region", "to_region", "transfer_date", "balance",
    "contribution_years", "status", "requested_on",
)  # fmt: skip


def transfers(
    curs: Any, schema: str, *, direction: str | None = None, status: str | None = None
) -> list[dict[str, Any]]:
    """The region's transfer rows, oldest first, amounts in yuan strings."""
    conditions = [sql.SQL("TRUE")]
    params: list[Any] = []
    if direction:
        conditions.append(sql.SQL("direction = %s"))
        params.append(direction)
    if status:
        conditions.append(sql.SQL("status = %s"))
        params.append(status)
    curs.execute(
        sql.SQL("SELECT {} FROM {} WHERE {} ORDER BY transfer_date, transfer_id, direction").format(
            sql.SQL(", ").join(map(sql.Identifier, _COLUMNS)),
            sql.Identifier(schema, "transfers"),
            sql.SQL(" AND ").join(conditions),
        ),
        params,
    )
    return [
        {
            **row,
            "transfer_date": row["transfer_date"].isoformat(),
            "requested_on": row["requested_on"].isoformat(),
            "balance": format_yuan(row["balance"]),
        }
        for row in curs.fetchall()
    ]


def monthly(curs: Any, schema: str, year: int) -> list[dict[str, Any]]:
    """Transfers out (not rejected) and in, per month of the transfer date: count and balance."""
    curs.execute(
        sql.SQL(
            "SELECT to_char(transfer_date, 'YYYY-MM') AS month, "
            "count(*) FILTER (WHERE direction = 'out') AS out_count, "
            "coalesce(sum(balance) FILTER (WHERE direction = 'out'), 0) AS out_balance, "
            "count(*) FILTER (WHERE direction = 'in') AS in_count, "
            "coalesce(sum(balance) FILTER (WHERE direction = 'in'), 0) AS in_balance "
            "FROM {} WHERE status <> 'rejected' AND transfer_date BETWEEN %s AND %s GROUP BY 1 ORDER BY 1"
        ).format(sql.Identifier(schema, "transfers")),
        (dt.date(year, 1, 1), dt.date(year, 12, 31)),
    )
    return [
        {
            "month": row["month"],
            "out": row["out_count"],
            "out_balance": format_yuan(int(row["out_balance"])),
            "in": row["in_count"],
            "in_balance": format_yuan(int(row["in_balance"])),
        }
        for row in curs.fetchall()
    ]


def balances_in_transit(curs: Any, schema: str, as_of: dt.date) -> dict[str, Any]:
    """In-transit and inter-region balances of the individual-account fund as of a date."""
    curs.execute(
        sql.SQL(
            "SELECT account, party, sum(amount) AS total FROM {} "
            "WHERE fund = %s AND account IN (%s, %s) AND posted_on <= %s GROUP BY account, party"
        ).format(sql.Identifier(schema, "journal")),
        (INDIVIDUAL_ACCOUNT_FUND, IN_TRANSIT, DUE_TO_REGIONS, as_of),
    )
    in_transit: dict[str, int] = {}
    due: dict[str, int] = {}
    for row in curs.fetchall():
        total = -int(row["total"])  # liabilities: credit balances shown positive
        if total:
            (in_transit if row["account"] == IN_TRANSIT else due)[row["party"]] = total
    return {
        "as_of": as_of.isoformat(),
        "in_transit": format_yuan(sum(in_transit.values())),
        "in_transit_by_transfer": {k: format_yuan(v) for k, v in sorted(in_transit.items())},
        "due_to_regions": {k: format_yuan(v) for k, v in sorted(due.items())},
    }
