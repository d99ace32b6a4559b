"""The follower that carries relationship transfers between regions, exactly once.

Two steps cross regions, each driven from one region's event log and recorded in the other's:

1. `Transfer.Released` in the releasing region -> the receiving region records the arrival;
2. `TransferIn.Received` in the receiving region -> the releasing region records completion.

Each step is saved with the position of the event that caused it (app.relay), and the
arrival's id (derived from the transfer id) refuses a second arrival anyway.
"""

from __future__ import annotations

from typing import Any, Protocol

import attrs
from eventsourcing.persistence import Notification, Tracking

from app import failpoints
from app.relay import Directory, RelayConflict, RelayStep, Step, follow_everywhere, pending_everywhere
from app.relay import Region as Followed
from core.codec import topic_of
from core.transfer import Transfer, TransferIn

__all__ = ["RelayConflict", "RelayReport", "relay"]


class Region(Followed, Protocol):
    def receive_transfers(self, arrivals: list[tuple[Any, str]], *, tracking: Tracking) -> list[str]: ...
    def complete_transfers(self, completions: list[tuple[str, str]], *, tracking: Tracking) -> list[str]: ...


@attrs.define
class RelayReport:
    received: list[str] = attrs.field(factory=list)  # transfer ids whose arrival was recorded now
    completed: list[str] = attrs.field(factory=list)  # transfer ids whose completion was recorded now


def relay(directory: Directory) -> RelayReport:
    """Carry every released transfer to its receiving region and every arrival back to its
    releasing region, until nothing is left to carry."""
    return RelayReport(follow_everywhere(directory, ARRIVALS), follow_everywhere(directory, COMPLETIONS))


def relay_pending(directory: Directory) -> int:
    """How many arrivals and completions the relay has not carried yet."""
    return pending_everywhere(directory, (ARRIVALS, COMPLETIONS))


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


# Carried in this order: a completion follows the arrival it acknowledges.
ARRIVALS: RelayStep[Region] = RelayStep("transfer_arrivals", [topic_of(Transfer.Released)], _arrivals, _receive)
COMPLETIONS: RelayStep[Region] = RelayStep(
    "transfer_completions", [topic_of(TransferIn.Received)], _acknowledgements, _complete
)
