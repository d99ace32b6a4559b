"""The follower that carries 异地就医 between regions, exactly once (app.relay):

1. `RemoteCare.Owed` and `.Withdrawn` in the insured region -> the region of treatment records
   the remote settlement version, or its reversal, on its hospital's account;
2. `RegionClearings.Cleared` decided in one region -> the other region records its mirror.
"""

from __future__ import annotations

from typing import Any, Protocol

import attrs
from eventsourcing.persistence import Notification, Tracking

from app import failpoints
from app.relay import Directory, RelayStep, Step, follow_everywhere, pending_everywhere
from app.relay import Region as Followed
from core import region_clearing, remote_care


class Region(Followed, Protocol):
    def receive_remote_care(self, insured_in: str, events: Any, *, tracking: Tracking) -> list[str]: ...
    def mirror_region_clearings(self, decided: Any, *, tracking: Tracking) -> list[str]: ...


@attrs.define
class RemoteReport:
    settlements: list[str] = attrs.field(factory=list)  # "<setl_id> v<version>" recorded now
    clearings: list[str] = attrs.field(factory=list)  # clearing names mirrored now


def relay_remote_care(directory: Directory) -> RemoteReport:
    """Carry every remote settlement version and reversal to its region of treatment, and every
    clearing to the other region of its pair."""
    return RemoteReport(follow_everywhere(directory, SETTLEMENTS), follow_everywhere(directory, CLEARINGS))


def relay_pending(directory: Directory) -> int:
    """How many remote settlement steps and clearings the relay has not carried yet."""
    return pending_everywhere(directory, (SETTLEMENTS, CLEARINGS))


def _treated_in_target(source: Region, target: Region, notifications: list[Notification]) -> list[Step]:
    events = [(n.id, source.mapper.to_domain_event(n)) for n in notifications]
    return [(i, (source.region, e), "") for i, e in events if e.treated_in == target.region]


def _decided_with_target(source: Region, target: Region, notifications: list[Notification]) -> list[Step]:
    events = [(n.id, source.mapper.to_domain_event(n)) for n in notifications]
    return [(i, e, "") for i, e in events if e.other == target.region and e.decided_in == source.region]


def _receive(target: Region, steps: list[Step], tracking: Tracking) -> list[str]:
    insured_in = steps[0][1][0]  # one source region per step
    failpoints.reach("remote.before_receipt")
    return target.receive_remote_care(insured_in, [event for _, (_, event), _ in steps], tracking=tracking)


def _mirror(target: Region, steps: list[Step], tracking: Tracking) -> list[str]:
    return target.mirror_region_clearings([event for _, event, _ in steps], tracking=tracking)


# Carried in this order: a clearing is mirrored after the settlements it clears.
SETTLEMENTS: RelayStep[Region] = RelayStep("remote_care", remote_care.TOPICS, _treated_in_target, _receive)
CLEARINGS: RelayStep[Region] = RelayStep("region_clearings", [region_clearing.TOPIC], _decided_with_target, _mirror)
