"""Following one region's log into another, exactly once: the mechanism under every relay
between regions (transfers, remote settlements, clearings).

Each step is saved in the target region together with the position of the event that caused
it (the target's `notification_tracking` row named after the step and the source region), in
one transaction. A process killed between the two regions' commits therefore left either
nothing or everything in the target; following again resumes after the last recorded position.
Concurrent followers are safe too: the tracking row only moves forward, so one of two acting on
the same event fails, rereads the position and moves on.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any, Generic, Protocol, TypeVar

import attrs
from eventsourcing.persistence import IntegrityError, Notification, Tracking

from app.ports import RegionLog
from core.errors import YibaoError

page_size = 200
attempts_max = 8


class RelayConflict(YibaoError):
    reason = "concurrency_conflict"


class Region(Protocol):
    region: str
    region_log: RegionLog
    mapper: Any

    def tracked_position(self, name: str) -> int: ...
    def unit_of_work(self) -> Any: ...


R = TypeVar("R", bound=Region)


class Directory(Protocol):
    def region_codes(self) -> list[str]: ...
    def region(self, code: str) -> Any: ...


Step = tuple[int, Any, str]  # (position in the source log, facts, date of the step)


def unordered_pairs(directory: Directory) -> list[tuple[str, str]]:
    """Every pair of two region codes once, the code that sorts first first (it decides 清分)."""
    codes = sorted(directory.region_codes())
    return [(first, second) for i, first in enumerate(codes) for second in codes[i + 1 :]]


def pairs(directory: Directory) -> list[tuple[Any, Any]]:
    """Every ordered pair of two regions (source, target)."""
    codes = directory.region_codes()
    return [(directory.region(s), directory.region(t)) for s in codes for t in codes if s != t]


@attrs.frozen
class RelayStep(Generic[R]):
    """One kind of step a relay carries: the source's events of `topics`, the steps of them that
    concern the target (`select`), and what the target records for them (`act`). `name` names the
    target's tracking row (with the source region)."""

    name: str
    topics: Sequence[str]
    select: Callable[[R, R, list[Notification]], list[Step]]
    act: Callable[[R, list[Step], Tracking], list[str]]


def follow_everywhere(directory: Directory, step: RelayStep[Any]) -> list[str]:
    """`follow` one step from every region into every other."""
    return [done for source, target in pairs(directory) for done in follow(source, target, step)]


def pending_everywhere(directory: Directory, steps: Sequence[RelayStep[Any]]) -> int:
    """How many of these steps, between every two regions, the relay has not carried yet."""
    return sum(unfollowed(source, target, step) for step in steps for source, target in pairs(directory))


def follow(source: R, target: R, step: RelayStep[R]) -> list[str]:
    """Act in `target` on the source's events of one kind, a page per transaction, each saved
    with the position of the last event it acts on."""
    name = f"{step.name}:{source.region}"
    done: list[str] = []
    position = target.tracked_position(name)
    while True:
        notifications = source.region_log.select_step_notifications(step.topics, position, page_size)
        steps = step.select(source, target, notifications)
        for _ in range(attempts_max):
            steps = [s for s in steps if s[0] > position]
            if not steps:
                break
            try:
                done += step.act(target, steps, Tracking(name, steps[-1][0]))
                break
            except IntegrityError:
                # Another writer got there first: a relay that recorded some of these steps
                # (the position moved past them), or a save that touched the same aggregates.
                position = target.tracked_position(name)
        else:
            raise RelayConflict(f"relay {name} -> {target.region}: gave up after {attempts_max} conflicts")
        if len(notifications) < page_size:
            return done
        if not steps:
            _passed(target, Tracking(name, notifications[-1].id))
        position = notifications[-1].id


def _passed(target: Region, tracking: Tracking) -> None:
    """Record a whole page of the source's events as followed when none was for `target`, so the
    next relay does not read it again (ids are in commit order: none can appear before it later).
    Another relay that got there first recorded as much or more."""
    with contextlib.suppress(IntegrityError):
        target.region_log.insert_tracking(tracking)


def unfollowed(source: R, target: R, step: RelayStep[R]) -> int:
    """How many of the source's events of one kind `target` has not acted on yet (read only)."""
    position = target.tracked_position(f"{step.name}:{source.region}")
    count = 0
    while True:
        notifications = source.region_log.select_step_notifications(step.topics, position, page_size)
        count += len(step.select(source, target, notifications))
        if len(notifications) < page_size:
            return count
        position = notifications[-1].id
