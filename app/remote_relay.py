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
from app.relay import Directory, Step, follow, pairs, unfollowed
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
    report = RemoteReport()
    for source, target in pairs(directory):
        report.settlements += follow(
            source, target, step="remote_care", topics=remote_care.TOPICS, select=_treated_in_target, act=_receive
        )
    for source, target in pairs(directory):
        report.clearings += follow(
            source, target, step="region_clearings", topics=[region_clearing.TOPIC], select=_decided_with_target,
            act=_mirror,
        )  # fmt: skip
    return report


def relay_pending(directory: Directory) -> int:
    """How many remote settlement steps and clearings the relay has not carried yet."""
    pending = 0
    for source, target in pairs(directory):
        pending += unfollowed(source, target, step="remote_care", topics=remote_care.TOPICS, select=_treated_in_target)
        pending += unfollowed(
            source, target, step="region_clearings", topics=[region_clearing.TOPIC], select=_decided_with_target
        )
    return pending


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
