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
from typing import Any, Protocol, TypeVar

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


def pairs(directory: Directory) -> list[tuple[Any, Any]]:
    """Every ordered pair of two regions (source, target)."""
    codes = directory.region_codes()
    return [(directory.region(s), directory.region(t)) for s in codes for t in codes if s != t]


def follow(
    source: R,
    target: R,
    *,
    step: str,
    topics: Sequence[str],
    select: Callable[[R, R, list[Notification]], list[Step]],
    act: Callable[[R, list[Step], Tracking], list[str]],
) -> list[str]:
    """Act in `target` on the source's events of one kind, a page per transaction, each saved
    with the position of the last event it acts on."""
    name = f"{step}:{source.region}"
    done: list[str] = []
    position = target.tracked_position(name)
    while True:
        notifications = source.region_log.select_step_notifications(topics, position, page_size)
        steps = select(source, target, notifications)
        for _ in range(attempts_max):
            steps = [s for s in steps if s[0] > position]
            if not steps:
                break
            try:
                done += act(target, steps, Tracking(name, steps[-1][0]))
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


def unfollowed(
    source: R, target: R, *, step: str, topics: Sequence[str], select: Callable[[R, R, list[Notification]], list[Step]]
) -> int:
    """How many of the source's events of one kind `target` has not acted on yet (read only)."""
    position = target.tracked_position(f"{step}:{source.region}")
    count = 0
    while True:
        notifications = source.region_log.select_step_notifications(topics, position, page_size)
        count += len(select(source, target, notifications))
        if len(notifications) < page_size:
            return count
        position = notifications[-1].id
