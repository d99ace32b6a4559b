"""The follower that carries relationship transfers between regions, exactly once.

Two steps cross regions, each driven from one region's event log and recorded in the other's:

1. `Transfer.Released` in the releasing region -> the receiving region records the arrival;
2. `TransferIn.Received` in the receiving region -> the releasing region records completion.

Each step is saved in the target region together with the position of the event that caused
it (the target's `notification_tracking` row named after the step and the source region), in
one transaction. A process killed between the two regions' commits therefore left either
nothing or everything in the target; running the relay again resumes after the last recorded
position, and the arrival's id (derived from the transfer id) refuses a second arrival anyway.
Concurrent relays are safe too: the tracking row only moves forward, so one of two relays
acting on the same event fails, rereads the position and moves on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import attrs
from eventsourcing.persistence import IntegrityError, Notification, Tracking

from app import failpoints
from app.ports import RegionLog
from core.codec import topic_of
from core.errors import YibaoError
from core.transfer import Transfer, TransferIn

page_size = 200
attempts_max = 8


class RelayConflict(YibaoError):
    reason = "concurrency_conflict"


class Region(Protocol):
    region: str
    recorder: Any
    region_log: RegionLog
    mapper: Any
    repository: Any

    def tracked_position(self, name: str) -> int: ...
    def unit_of_work(self) -> Any: ...
    def receive_transfers(self, arrivals: list[tuple[Any, str]], *, tracking: Tracking) -> list[str]: ...
    def complete_transfers(self, completions: list[tuple[str, str]], *, tracking: Tracking) -> list[str]: ...


class Directory(Protocol):
    def region_codes(self) -> list[str]: ...
    def region(self, code: str) -> Any: ...


@attrs.define
class RelayReport:
    received: list[str] = attrs.field(factory=list)  # transfer ids whose arrival was recorded now
    completed: list[str] = attrs.field(factory=list)  # transfer ids whose completion was recorded now


def relay(directory: Directory) -> RelayReport:
    """Carry every released transfer to its receiving region and every arrival back to its
    releasing region, until nothing is left to carry."""
    report = RelayReport()
    codes = directory.region_codes()
    pairs = [(s, t) for s in codes for t in codes if s != t]
    for source, target in pairs:
        report.received += _follow(
            directory.region(source), directory.region(target), step="transfer_arrivals", topic=Transfer.Released,
            select=_arrivals, act=_receive,
        )  # fmt: skip
    for source, target in pairs:
        report.completed += _follow(
            directory.region(source), directory.region(target), step="transfer_completions",
            topic=TransferIn.Received, select=_acknowledgements, act=_complete,
        )  # fmt: skip
    return report


Step = tuple[int, Any, str]  # (position in the source log, transfer facts, date of the step)


def _arrivals(source: Region, target: Region, notifications: list[Notification]) -> list[Step]:
    """The released transfers bound for `target` among these notifications."""
    uow = source.unit_of_work()
    uow.preload(n.originator_id for n in notifications)
    steps = []
    for n in notifications:
        transfer = uow.get(n.originator_id, Transfer)
        assert transfer is not None
        if transfer.facts.to_region == target.region:
            steps.append((n.id, transfer.facts, source.mapper.to_domain_event(n).on_date))
    return steps


def _acknowledgements(source: Region, target: Region, notifications: list[Notification]) -> list[Step]:
    """The arrivals of transfers released by `target` among these notifications."""
    arrivals = [(n.id, source.mapper.to_domain_event(n)) for n in notifications]
    return [(i, a.facts, a.on_date) for i, a in arrivals if a.facts.from_region == target.region]


def _receive(target: Region, steps: list[Step], tracking: Tracking) -> list[str]:
    failpoints.reach("relay.before_arrival")
    recorded = target.receive_transfers([(facts, on_date) for _, facts, on_date in steps], tracking=tracking)
    failpoints.reach("relay.after_arrival")
    return recorded


def _complete(target: Region, steps: list[Step], tracking: Tracking) -> list[str]:
    return target.complete_transfers([(facts.transfer_id, on_date) for _, facts, on_date in steps], tracking=tracking)


def _follow(
    source: Region,
    target: Region,
    *,
    step: str,
    topic: type,
    select: Callable[[Region, Region, list[Notification]], list[Step]],
    act: Callable[[Region, list[Step], Tracking], list[str]],
) -> list[str]:
    """Act in `target` on the source's events of one kind, a page per transaction, each saved
    with the position of the last event it acts on."""
    name = f"{step}:{source.region}"
    done: list[str] = []
    position = target.tracked_position(name)
    while True:
        notifications = source.region_log.select_step_notifications(topic_of(topic), position, page_size)
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
        position = notifications[-1].id
