"""The port through which the service layer reads and writes a region's log in bulk.

The library's recorder interface reads and writes one aggregate at a time; settling a batch needs
more (every aggregate of a batch in one read, a batch's events with their snapshots and tracking
in one write, the log followed by topic). `store.recorder.RegionRecorder` implements it on
PostgreSQL; `RegionBase.region_log` is the recorder seen through it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Notification, StoredEvent, Tracking

from core.funds import BankDraw
from core.institution import InstitutionRegistry


class RegionLog(ABC):
    @abstractmethod
    def select_events_of(self, ids: Sequence[UUID], after: dict[UUID, int]) -> dict[UUID, list[StoredEvent]]:
        """The events of every aggregate in `ids` after the version in `after` (all without one),
        starting from its latest snapshot when that is newer, in one read."""

    @abstractmethod
    def insert_events(
        self,
        stored_events: Sequence[StoredEvent],
        *,
        tracking: Tracking | None = None,
        snapshots: Sequence[StoredEvent] = (),
        bank_draws: Sequence[BankDraw] = (),
    ) -> Sequence[int] | None:
        """Write events (and the snapshots and tracking record that go with them) in one
        transaction; their positions, in commit order. `bank_draws`: what the save takes out of
        funds' bank accounts, checked under the region's write lock first (core.funds)."""

    @abstractmethod
    def check_bank_draws(self, draws: Sequence[BankDraw]) -> None:
        """The same balance check without saving (a dry run): as of now, not under the lock."""

    @abstractmethod
    def insert_tracking(self, tracking: Tracking) -> None:
        """Record how far a follower has acted on another log, alone."""

    @abstractmethod
    def max_tracking_id(self, application_name: str) -> int | None:
        """The last position of `application_name`'s log recorded as acted on here."""

    @abstractmethod
    def max_notification_id(self) -> int | None:
        """The position of the newest event."""

    @abstractmethod
    def select_originators_of(self, topics: Sequence[str]) -> list[UUID]:
        """Every aggregate with an event of one of `topics`."""

    @abstractmethod
    def select_step_notifications(self, topics: Sequence[str], after: int, limit: int) -> list[Notification]:
        """The next events of any of `topics` after a position, in log order, at most `limit`."""

    @abstractmethod
    def select_positions(self, keys: Sequence[tuple[UUID, int]]) -> dict[tuple[UUID, int], int]:
        """The position of each stored event named by (aggregate id, version); one not stored is
        not in the answer."""

    @abstractmethod
    def select_states(self, after: int, stop: int, topics: list[str], limit: int) -> list[tuple[int, str, bytes]]:
        """(position, topic, state) of the events of `topics` in (after, stop], at most `limit`."""


class Neighbours(ABC):
    """The other regions a region settles with (异地就医): the 定点 registry of a region of
    treatment (就医地目录) that a claim of a member treated there is checked against."""

    @abstractmethod
    def registry_of(self, region: str) -> InstitutionRegistry | None:
        """The region's registry (None: nothing registered); raises UnknownRegion."""


class AggregateCache(ABC):
    """Aggregates a process keeps between its units of work, to bring up to date instead of
    replaying their history. The service layer keeps none (`KEEP_NOTHING`); the bulk pipeline,
    which reads the same members batch after batch, plugs in a bounded one (`bulk.kept`)."""

    @abstractmethod
    def known(self) -> dict[int, Any] | None:
        """The aggregates kept, by their id's integer (`UUID.int`), for a unit of work to read
        through (never copied)."""

    @abstractmethod
    def keep(self, loaded: Sequence[Any]) -> None:
        """Keep what a saved unit of work read and wrote."""

    @abstractmethod
    def forget(self, ids: Sequence[UUID]) -> None:
        """Drop these: their kept state is older than what was just saved."""

    @abstractmethod
    def clear(self) -> None:
        """Drop everything: a failed save may have left changes on the kept aggregates."""


class _KeepNothing(AggregateCache):
    def known(self) -> dict[int, Any] | None:
        return None

    def keep(self, loaded: Sequence[Any]) -> None:
        pass

    def forget(self, ids: Sequence[UUID]) -> None:
        pass

    def clear(self) -> None:
        pass


KEEP_NOTHING: AggregateCache = _KeepNothing()
