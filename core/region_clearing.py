"""RegionClearing: the clearing between two regions (清分) of what each owes the other for its
members treated there (异地就医), as each region's books record it.

One region of a pair (the one whose code sorts first) decides a clearing from both regions'
dues, which must agree to the fen; the other records the same clearing from the decision, as a
mirror, through the relay (app.remote_relay). Each clearing has a name, `<first>-<second>-<month>-<n>`,
the same in both regions: a mirror is recorded once, and a decision that finds nothing left to
clear records nothing, so running the clearing again moves no money twice. A later clearing of
the same month (`n` + 1) takes what was settled for it since (`RegionClearings.through`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs
from eventsourcing.domain import Aggregate

from core.codec import aggregate_topic
from core.errors import YibaoError
from core.events import Created, Event
from core.ids import region_clearings_id
from core.ledger import Posting, region_clearing_postings
from core.money import format_yuan


class RegionsDisagree(YibaoError):
    reason = "regions_disagree"


@attrs.frozen
class Dues:
    """What one region's books say it owes another (`owed_to`) and is owed by it (`owed_by`),
    per fund, not yet cleared: fen, either may be negative."""

    owed_to: dict[str, int]
    owed_by: dict[str, int]
    clearings: int = 0  # how many clearings with the other region these figures are net of

    @property
    def net(self) -> int:
        """What this region pays the other (negative: receives)."""
        return sum(self.owed_to.values()) - sum(self.owed_by.values())

    @property
    def empty(self) -> bool:
        return not any(self.owed_to.values()) and not any(self.owed_by.values())

    def mirrored(self) -> Dues:
        return Dues(owed_to=dict(self.owed_by), owed_by=dict(self.owed_to), clearings=self.clearings)


def check_agree(first: str, second: str, first_dues: Dues, second_dues: Dues) -> None:
    """Refuse a clearing the two regions' books do not agree on to the fen."""
    if _nonzero(first_dues.owed_to) != _nonzero(second_dues.owed_by):
        raise RegionsDisagree(_differ(first, second, first_dues.owed_to, second_dues.owed_by))
    if _nonzero(first_dues.owed_by) != _nonzero(second_dues.owed_to):
        raise RegionsDisagree(_differ(second, first, second_dues.owed_to, first_dues.owed_by))


def _nonzero(amounts: dict[str, int]) -> dict[str, int]:
    return {fund: amount for fund, amount in amounts.items() if amount}


def _differ(debtor: str, creditor: str, owed: dict[str, int], expected: dict[str, int]) -> str:
    return (
        f"{debtor} owes {creditor} {format_yuan(sum(owed.values()))} by its books, "
        f"{creditor} is owed {format_yuan(sum(expected.values()))} by its own: relay pending, or books changed"
    )


def clearing_name(first: str, second: str, month: str, n: int) -> str:
    return f"{first}-{second}-{month}-{n}"


@attrs.frozen
class Clearing:
    """One clearing as a region's books hold it."""

    clearing: str
    decided_in: str
    month: str
    through: str
    owed_to: dict[str, int]
    owed_by: dict[str, int]
    on_date: str
    operator: str

    @property
    def dues(self) -> Dues:
        return Dues(self.owed_to, self.owed_by)


@aggregate_topic("RegionClearings")
class RegionClearings(Aggregate):
    """The clearings between this region and one other, in order: every clearing of the pair is
    recorded here, so two decided at once conflict on its version and one is decided again."""

    class Opened(Created):
        region: str
        other: str

    class Cleared(Event):
        region: str
        other: str
        clearing: str
        decided_in: str  # the region that decided it; in the other it is a mirror
        month: str
        through: str  # the dues posted up to this date (the month's last day)
        owed_to: dict[str, int]
        owed_by: dict[str, int]
        on_date: str
        operator: str
        postings: list[Posting]

        def apply(self, aggregate: Any) -> None:
            aggregate.cleared[self.clearing] = Clearing(
                self.clearing, self.decided_in, self.month, self.through, self.owed_to, self.owed_by, self.on_date,
                self.operator,
            )  # fmt: skip

    @staticmethod
    def create_id(region: str, other: str) -> Any:
        return region_clearings_id(region, other)

    def __init__(self, region: str, other: str) -> None:
        self.region, self.other = region, other
        self.cleared: dict[str, Clearing] = {}  # by name, in the order recorded

    def through(self, month_end: dt.date) -> dt.date:
        """What a clearing decided now for a month ending on `month_end` clears up to: that day,
        or the latest day cleared before when later. Each clearing then takes everything posted
        up to its day and not taken by the ones before (their sum is everything posted up to the
        latest day when it was decided), whatever order months are cleared in: a month cleared
        after a later one takes only what was posted for it since."""
        latest = max((c.through for c in self.cleared.values()), default=None)
        return max(month_end, dt.date.fromisoformat(latest)) if latest else month_end

    def next_name(self, month: str) -> str:
        first, second = sorted((self.region, self.other))
        n = 1 + sum(1 for c in self.cleared.values() if c.month == month)
        return clearing_name(first, second, month, n)

    def clear(
        self, clearing: str, *, decided_in: str, month: str, through: str, dues: Dues, on_date: str, operator: str
    ) -> bool:
        """Record a clearing (its mirror when `decided_in` is the other region) once; False when
        it is recorded already."""
        if clearing in self.cleared:
            return False
        self.trigger_event(
            self.Cleared, region=self.region, other=self.other, clearing=clearing, decided_in=decided_in, month=month,
            through=through, owed_to=dues.owed_to, owed_by=dues.owed_by, on_date=on_date, operator=operator,
            postings=region_clearing_postings(other=self.other, owed_to=dues.owed_to, owed_by=dues.owed_by),
        )  # fmt: skip
        return True

    def recorded_postings(self) -> list[Posting]:
        event = self.pending_events[-1]
        assert isinstance(event, self.Cleared), event
        return list(event.postings)


TOPIC = "RegionClearings.Cleared"
