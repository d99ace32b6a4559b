"""What a region's books say it owes each other region and is owed by it (异地就医, transferred
account balances), not yet cleared (清分): the read for app.clearing_between_regions, and the
cross-check of `verify`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from psycopg import sql

from app.region import RegionApplication
from app.relay import Directory, unordered_pairs
from app.remote_relay import relay_pending
from app.transfer_relay import relay_pending as transfers_pending
from core.ledger import DUE_FROM_REGIONS, DUE_TO_REGIONS
from core.region_clearing import Dues, RegionsDisagree, check_agree
from projections.read_model import catch_up, reading
from projections.verify import Findings

# The entries on the inter-region accounts that 清分 clears: 异地就医's, and the transferred account
# balances (转移接续: the releasing region owes them from completion, the receiving region claims
# them from arrival, both dated the arrival's day).
DUE_KINDS = (
    "settlement", "correction", "reversal", "remote_settlement", "remote_reversal", "transfer_in",
    "transfer_completed",
)  # fmt: skip
CLEARING_KIND = "region_clearing"

_DUES = sql.SQL(
    "SELECT fund, account, sum(amount) AS amount FROM {} WHERE party = %s AND account IN (%s, %s) "
    "AND (kind = %s OR (kind = ANY(%s) AND posted_on <= %s)) GROUP BY fund, account"
)
_CLEARINGS = sql.SQL("SELECT count(DISTINCT ref) AS n FROM {} WHERE kind = %s AND party = %s")


def dues_with(curs: Any, schema: str, other: str, through: dt.date | None = None) -> Dues:
    """Per fund, what this region owes `other` (credit balance of due_to_regions) and is owed
    by it (debit balance of due_from_regions) for claims posted up to `through` (None: all),
    net of every clearing between them whatever its date."""
    journal = sql.Identifier(schema, "journal")
    last = through or dt.date.max
    params = (other, DUE_TO_REGIONS, DUE_FROM_REGIONS, CLEARING_KIND, list(DUE_KINDS), last)
    owed_to: dict[str, int] = {}
    owed_by: dict[str, int] = {}
    for row in curs.execute(_DUES.format(journal), params).fetchall():
        amount = int(row["amount"])
        if row["account"] == DUE_TO_REGIONS:
            owed_to[row["fund"]] = -amount
        else:
            owed_by[row["fund"]] = amount
    counted = curs.execute(_CLEARINGS.format(journal), (CLEARING_KIND, other)).fetchone()
    return Dues(_kept(owed_to), _kept(owed_by), clearings=int(counted["n"]))


def _kept(amounts: dict[str, int]) -> dict[str, int]:
    return {fund: amount for fund, amount in sorted(amounts.items()) if amount}


def verify_region_dues(directory: Directory) -> Findings:
    """Each region's dues with every other must mirror the other's to the fen, per fund (what one
    owes net is what the other is owed), once the relays have carried everything; else it says
    how many steps wait."""
    findings = Findings("remote_care")
    pending = relay_pending(directory) + transfers_pending(directory)
    pairs = unordered_pairs(directory)
    if not pending:
        for first, second in pairs:
            mine, theirs = (_all_dues(directory.region(x), y) for x, y in ((first, second), (second, first)))
            try:
                check_agree(first, second, mine, theirs)
            except RegionsDisagree as exc:
                findings.fail(str(exc))
    findings.checked["region pairs"] = len(pairs)
    findings.checked["steps waiting for the relay"] = pending
    return findings


def _all_dues(app: RegionApplication, other: str) -> Dues:
    catch_up(app)
    with reading(app) as (curs, schema):
        return dues_with(curs, schema, other)


def dues_reader(up_to_date: Callable[[RegionApplication], Any] = catch_up) -> Callable[[Any, str, dt.date], Dues]:
    """app.clearing_between_regions' `read_dues`: the region's read model brought up to date, then
    `dues_with`."""

    def read(app: RegionApplication, other: str, through: dt.date) -> Dues:
        up_to_date(app)
        with reading(app) as (curs, schema):
            return dues_with(curs, schema, other, through)

    return read
