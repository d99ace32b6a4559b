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

from core.codec import aggregate_topic
from core.errors import YibaoError
from core.events import Aggregate, Created, Event
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

    def net_by_fund(self) -> dict[str, int]:
        """fund -> what this region pays the other for it, net (negative: receives)."""
        funds = sorted(set(self.owed_to) | set(self.owed_by))
        net = {fund: self.owed_to.get(fund, 0) - self.owed_by.get(fund, 0) for fund in funds}
        return {fund: amount for fund, amount in net.items() if amount}


def check_agree(first: str, second: str, first_dues: Dues, second_dues: Dues) -> None:
    """Refuse a clearing the two regions' books do not agree on to the fen: per fund, what one
    owes the other net must be what the other is owed net. (Per fund net, not per account: a
    transferred account balance is owed on the releasing region's due_to_regions and claimed on
    the receiving region's same account, as a debit.)"""
    mine, theirs = first_dues.net_by_fund(), second_dues.net_by_fund()
    for fund in sorted(set(mine) | set(theirs)):
        if mine.get(fund, 0) != -theirs.get(fund, 0):
            raise RegionsDisagree(
                f"fund {fund}: {first} owes {second} {format_yuan(mine.get(fund, 0))} net by its books, {second} "
                f"is owed {format_yuan(-theirs.get(fund, 0))} net by its own: relay pending, or books changed"
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
        # The other region's dues, as the decision read them: what its mirror clears.
        their_owed_to: dict[str, int] | None = None
        their_owed_by: dict[str, int] | None = None

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
        self, clearing: str, *, decided_in: str, month: str, through: str, dues: Dues, on_date: str, operator: str,
        theirs: Dues | None = None,
    ) -> bool:  # fmt: skip
        """Record a clearing of `dues` (its mirror when `decided_in` is the other region; a
        decision records `theirs`, the other region's dues, for it) once; False when it is
        recorded already."""
        if clearing in self.cleared:
            return False
        self.trigger_event(
            self.Cleared, region=self.region, other=self.other, clearing=clearing, decided_in=decided_in, month=month,
            through=through, owed_to=dues.owed_to, owed_by=dues.owed_by, on_date=on_date, operator=operator,
            postings=region_clearing_postings(other=self.other, owed_to=dues.owed_to, owed_by=dues.owed_by),
            their_owed_to=theirs.owed_to if theirs else None, their_owed_by=theirs.owed_by if theirs else None,
        )  # fmt: skip
        return True

    def recorded_postings(self) -> list[Posting]:
        event = self.pending_events[-1]
        assert isinstance(event, self.Cleared), event
        return list(event.postings)


TOPIC = "RegionClearings.Cleared"
