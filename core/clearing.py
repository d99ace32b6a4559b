"""Clearing (清算, national 3203): what a hospital's month comes to, recorded once it reconciled.

A month's figures come from its settlement lines, reversal lines included and netted:
`psntime` counts a settlement 1 and a reversal -1 (a reversed claim nets to 0, a corrected one
to 1: its reversal and new version), `fund_appy_sum` is what each fund pays (national fund
codes, HMB and CHARITY yibao's own), `cash_payamt` what is left to the person after the funds
and the account. A month is cleared only when every totals reconciliation (3201) of the hospital
whose period lies in the month last agreed (stmt_rslt "0") and the centre's figures are still
those it agreed on; else the refusal names the cause. Money is fen.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from core.codec import aggregate_topic
from core.errors import YibaoError
from core.events import Aggregate, Created, Event
from core.ids import clearing_id

NO_RECONCILIATION = "no_reconciliation"
DIFFERENCES = "differences"
CHANGED_SINCE = "changed_since"


class ClearingRefused(YibaoError):
    reason = "not_reconciled"


def month_bounds(month: str) -> tuple[dt.date, dt.date]:
    """The first and last day of `YYYY-MM`."""
    try:
        year, number = (int(part) for part in month.split("-"))
        first = dt.date(year, number, 1)
    except ValueError:
        raise YibaoError(f"month {month!r}: expected YYYY-MM", reason="bad_month") from None
    if len(month) != 7:
        raise YibaoError(f"month {month!r}: expected YYYY-MM", reason="bad_month")
    return first, first.replace(day=calendar.monthrange(year, number)[1])


def month_figures(
    settled: int, reversed_: int, medfee_sumamt: int, acct_pay: int, funds: Mapping[str, int]
) -> dict[str, Any]:
    """3203's figures from the month's summed lines: `settled` and `reversed_` count the lines of
    each flag, the amounts are the lines' sums (reversals negative), `funds` each fund's payments."""
    paid = {fund: amount for fund, amount in sorted(funds.items()) if amount}
    return {
        "psntime": settled - reversed_,
        "medfee_sumamt": medfee_sumamt,
        "fund_appy_sum": paid,
        "acct_pay": acct_pay,
        "cash_payamt": medfee_sumamt - sum(paid.values()) - acct_pay,
    }


EMPTY_MONTH = month_figures(0, 0, 0, 0, {})


def months_between(start: dt.date | None, month: str) -> list[str]:
    """The months `YYYY-MM` from the one of `start` to `month`, both included (just `month` when
    `start` is None or after it)."""
    out: list[str] = []
    if start is not None:
        year, number = start.year, start.month
        while f"{year:04d}-{number:02d}" < month:
            out.append(f"{year:04d}-{number:02d}")
            year, number = (year + 1, 1) if number == 12 else (year, number + 1)
    return [*out, month]


@attrs.frozen
class LineCheck:
    """One totals line a reconciliation agreed on: its key, the centre's figures then and now."""

    insutype: str
    clr_type: str
    recorded: Mapping[str, int] | None  # None: recorded before the centre's figures were kept
    now: Mapping[str, int]


@attrs.frozen
class PeriodCheck:
    """The last reconciliation of one period (begin, end) of the hospital."""

    begin: dt.date
    end: dt.date
    stmt_rslt: str
    lines: tuple[LineCheck, ...]


def unreconciled(
    first: dt.date, last: dt.date, keys_present: Iterable[tuple[str, str]], periods: Iterable[PeriodCheck]
) -> tuple[str, str] | None:
    """Why the month [first, last] cannot be cleared (cause, detail), or None. Every (insutype,
    clr_type) with lines in the month must be covered, every day of the month, by reconciled
    periods inside it; each of those last agreed, on the figures the centre still has."""
    inside = sorted((p for p in periods if first <= p.begin and p.end <= last), key=lambda p: (p.begin, p.end))
    for p in inside:
        if p.stmt_rslt != "0":
            return DIFFERENCES, f"the reconciliation of {p.begin}..{p.end} found differences (stmt_rslt 1)"
    for p in inside:
        for line in p.lines:
            if line.recorded is None or dict(line.recorded) != dict(line.now):
                return CHANGED_SINCE, (
                    f"the centre's figures of {p.begin}..{p.end} ({line.insutype}/{line.clr_type}) changed since "
                    "they were reconciled: reconcile again"
                )
    for key in sorted(keys_present):
        days = [(p.begin, p.end) for p in inside if any((ln.insutype, ln.clr_type) == key for ln in p.lines)]
        gap = _first_gap(first, last, days)
        if gap is not None:
            return NO_RECONCILIATION, f"no reconciled totals of {key[0]}/{key[1]} cover {gap}"
    return None


def _first_gap(first: dt.date, last: dt.date, periods: list[tuple[dt.date, dt.date]]) -> dt.date | None:
    """The first day of [first, last] no period covers, or None."""
    day = first
    for begin, end in sorted(periods):
        if begin > day:
            return day
        day = max(day, end + dt.timedelta(days=1))
    return day if day <= last else None


@aggregate_topic("Clearing")
class Clearing(Aggregate):
    """A hospital's month cleared in a region: its figures, who cleared it, on what grounds."""

    class Cleared(Created):
        region: str
        hospital: str
        month: str
        figures: dict[str, Any]
        operator: str
        on_date: str
        override_reason: str = ""  # cleared without reconciling, approved by `approved_by`
        approved_by: str = ""
        request_id: str = ""

    class Recleared(Event):
        figures: dict[str, Any]
        operator: str
        on_date: str
        override_reason: str = ""
        approved_by: str = ""
        request_id: str = ""

        def apply(self, aggregate: Any) -> None:
            aggregate.figures = self.figures
            aggregate.operator, aggregate.approved_by = self.operator, self.approved_by
            aggregate.clearings += 1

    @staticmethod
    def create_id(region: str, hospital: str, month: str, **_: Any) -> Any:
        return clearing_id(region, hospital, month)

    def __init__(
        self, region: str, hospital: str, month: str, figures: dict[str, Any], operator: str, on_date: str,
        override_reason: str = "", approved_by: str = "", request_id: str = "",
    ) -> None:  # fmt: skip
        self.region, self.hospital, self.month = region, hospital, month
        self.figures, self.operator, self.approved_by = figures, operator, approved_by
        self.clearings = 1

    def reclear(self, figures: dict[str, Any], operator: str, on_date: str, **approval: str) -> bool:
        """Record the month's new figures; False (nothing recorded) when they are the same."""
        if figures == self.figures:
            return False
        self.trigger_event(self.Recleared, figures=figures, operator=operator, on_date=on_date, **approval)
        return True
