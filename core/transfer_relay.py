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

from core import failpoints
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
    mapper: Any
    repository: Any

    def tracked_position(self, name: str) -> int: ...
    def receive_transfer(self, facts: Any, *, on_date: str, tracking: Tracking) -> bool: ...
    def complete_transfer(self, transfer: str, *, on_date: str, tracking: Tracking) -> bool: ...


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
            act=_receive,
        )  # fmt: skip
    for source, target in pairs:
        report.completed += _follow(
            directory.region(source), directory.region(target), step="transfer_completions",
            topic=TransferIn.Received, act=_complete,
        )  # fmt: skip
    return report


def _receive(source: Region, target: Region, notification: Notification, tracking: Tracking) -> str | None:
    released = source.mapper.to_domain_event(notification)
    transfer: Transfer = source.repository.get(notification.originator_id)
    if transfer.facts.to_region != target.region:
        return None
    failpoints.reach("relay.before_arrival")
    recorded = target.receive_transfer(transfer.facts, on_date=released.on_date, tracking=tracking)
    failpoints.reach("relay.after_arrival")
    return transfer.facts.transfer_id if recorded else None


def _complete(source: Region, target: Region, notification: Notification, tracking: Tracking) -> str | None:
    arrival = source.mapper.to_domain_event(notification)
    if arrival.facts.from_region != target.region:
        return None
    recorded = target.complete_transfer(arrival.facts.transfer_id, on_date=arrival.on_date, tracking=tracking)
    return arrival.facts.transfer_id if recorded else None


def _follow(
    source: Region,
    target: Region,
    *,
    step: str,
    topic: type,
    act: Callable[[Region, Region, Notification, Tracking], str | None],
) -> list[str]:
    name = f"{step}:{source.region}"
    done: list[str] = []
    position = target.tracked_position(name)
    while True:
        notifications = source.recorder.select_step_notifications(topic_of(topic), position, page_size)
        for notification in notifications:
            for _ in range(attempts_max):
                try:
                    acted = act(source, target, notification, Tracking(name, notification.id))
                except IntegrityError:
                    # Another writer got there first: a relay that recorded this step (the
                    # position has moved past it), or a save that touched the same aggregates.
                    if target.tracked_position(name) >= notification.id:
                        break
                    continue
                if acted is not None:
                    done.append(acted)
                break
            else:
                raise RelayConflict(f"relay {name} -> {target.region}: gave up after {attempts_max} conflicts")
            position = notification.id
        if len(notifications) < page_size:
            return done
