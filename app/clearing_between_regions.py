"""清分: the monthly clearing between every two regions of what each owes the other for its
members treated there (异地就医) and for the account balances of members transferred there
(转移接续), decided from both regions' books after the relays have carried everything across
(app.remote_relay, app.transfer_relay), exactly once (core.region_clearing)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import attrs

from app import failpoints
from app.relay import Directory, unordered_pairs
from app.remote_relay import relay_remote_care
from app.transfer_relay import relay
from core.clearing import month_bounds
from core.errors import YibaoError
from core.region_clearing import Dues, check_agree

ReadDues = Callable[[Any, str, dt.date], Dues]  # (region application, other region, through) -> its books' dues


@attrs.frozen
class PairCleared:
    first: str
    second: str
    dues: Dues  # as the first region's books hold them before the clearing
    clearing: str | None  # its name; None: nothing was left to clear, or refused
    refused: YibaoError | None = None  # why nothing was recorded for this pair


def clear_between_regions(
    directory: Directory, month: str, *, read_dues: ReadDues, on_date: dt.date, operator: str
) -> list[PairCleared]:
    """For every pair of regions (the first by code decides), clear what is owed both ways for
    claims posted up to the month's end (or the latest day cleared before) and not cleared yet.
    Both regions' books must agree to the fen (`regions_disagree` otherwise); the decision is then
    mirrored in the other region."""
    _, month_end = month_bounds(month)
    relay(directory)  # transfers: an arrival's completion too
    relay_remote_care(directory)
    done = []
    for first, second in unordered_pairs(directory):
        try:
            done.append(_clear_pair(directory.region(first), directory.region(second), month, month_end,
                                    read_dues, on_date, operator))  # fmt: skip
        except YibaoError as exc:  # this pair only: the others are cleared
            done.append(PairCleared(first, second, Dues({}, {}), None, refused=exc))
        failpoints.reach("clearing.between_regions")
    relay_remote_care(directory)
    return done


def _clear_pair(
    deciding: Any, other: Any, month: str, month_end: dt.date, read_dues: ReadDues, on_date: dt.date, operator: str
) -> PairCleared:  # fmt: skip
    """Decide the pair's clearing in its first region, once both books agree and the other
    region's bank can pay its part."""

    def agreed(through: dt.date) -> tuple[Dues, Dues]:
        mine, theirs = read_dues(deciding, other.region, through), read_dues(other, deciding.region, through)
        check_agree(deciding.region, other.region, mine, theirs)
        other.check_clearing_draws(deciding.region, theirs, on_date)
        return mine, theirs

    name, dues = deciding.decide_region_clearing(
        other.region, month, month_end, agreed, on_date=on_date, operator=operator
    )
    return PairCleared(deciding.region, other.region, dues, name)
