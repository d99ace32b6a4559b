"""Snapshots (快照) of member-years: the state at a version, so a load replays only what follows.

A member-year gains an event with every settlement of its year, so a chronic patient's is long
and was replayed whole at every load. Every `interval` versions its state is recorded (the
region's `snapshots` table, written in the same transaction as the events that reached that
version); a load starts from the latest snapshot and applies the events after it. Snapshots are
derived data: `yibao verify` rebuilds each one from the events and names any that differ.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any
from uuid import UUID

from core.codec import event_topic
from core.member_year import AppliedClaim, MemberYear
from core.tiers import YearToDate

interval = 50  # versions between two snapshots of one member-year


def due(aggregate: Any, new_events: int) -> bool:
    """Whether saving `new_events` more events took the aggregate past a snapshot point."""
    if not isinstance(aggregate, MemberYear) or not new_events:
        return False
    return aggregate.version // interval > (aggregate.version - new_events) // interval


@event_topic("MemberYear.Snapshot")
@dataclasses.dataclass(frozen=True)
class MemberYearSnapshot:
    originator_id: UUID
    originator_version: int
    created_on: dt.datetime
    modified_on: dt.datetime
    psn_no: str
    year: int
    ytd: dict[str, Any]
    applied: dict[str, tuple[int, str, dict[str, Any]]]  # setl_id -> (version, setl_time, delta)
    transferred_from: str | None = None

    @classmethod
    def of(cls, member_year: MemberYear) -> MemberYearSnapshot:
        return cls(
            originator_id=member_year.id,
            originator_version=member_year.version,
            created_on=member_year.created_on,
            modified_on=member_year.modified_on,
            psn_no=member_year.psn_no,
            year=member_year.year,
            ytd=member_year.ytd.to_dict(),
            applied={k: (a.version, a.setl_time, a.delta_fen) for k, a in member_year.applied.items()},
            transferred_from=member_year.transferred_from,
        )

    def mutate(self, aggregate: Any) -> MemberYear:
        """The member-year as it was at this version (the first step of a replay)."""
        assert aggregate is None, "a snapshot starts a replay"
        restored = object.__new__(MemberYear)
        restored._id = self.originator_id
        restored._version = self.originator_version
        restored._created_on = self.created_on
        restored._modified_on = self.modified_on
        restored._pending_events = []
        restored.psn_no = self.psn_no
        restored.year = self.year
        restored.ytd = YearToDate.from_dict(self.ytd)
        restored.applied = {
            setl_id: AppliedClaim(version, setl_time, delta)
            for setl_id, (version, setl_time, delta) in self.applied.items()
        }
        restored.transferred_from = self.transferred_from
        return restored


def state_of(member_year: MemberYear) -> tuple[Any, ...]:
    """What a snapshot must reproduce exactly (verify compares these)."""
    return (
        member_year.version, member_year.psn_no, member_year.year, member_year.ytd, member_year.applied,
        member_year.transferred_from,
    )  # fmt: skip
