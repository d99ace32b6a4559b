"""UnitOfWork: the aggregates one batch reads and changes, loaded in bulk, saved together.

A batch asks for every aggregate it will need up front (`preload`, one query per call when the
recorder can read many streams at once), works in memory, and the application saves every
changed aggregate in one transaction. If another writer got there first, the save fails on the
version constraint and the whole batch is recomputed from fresh state.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.domain import Aggregate
from eventsourcing.persistence import StoredEvent

A = TypeVar("A", bound=Aggregate)
_NOT_READ: Any = object()


class UnitOfWork:
    def __init__(
        self,
        select_events_of: Callable[[list[UUID], dict[UUID, int]], dict[UUID, list[StoredEvent]]],
        to_domain_event: Callable[[StoredEvent], Any],
        known: dict[int, Aggregate] | None = None,
    ) -> None:
        self._select = select_events_of
        self._to_domain_event = to_domain_event
        # `known`: aggregates this process has read or saved before. They are brought up to date
        # when preloaded (only the events past their version are read), and every aggregate a
        # batch changes is saved with a version check, so reusing them is as safe as rereading.
        # Both keyed by the id's integer (`UUID.int`): a UUID's hash is a Python-level __hash__,
        # and a claim looks ids up a few dozen times.
        self._known = known or {}  # read through, never copied (it can hold 100,000s)
        self._aggregates: dict[int, Aggregate | None] = {}
        self._touched: dict[int, Aggregate] = {}  # by id(): aggregates held here, so ids are unique
        # Money these changes take out of funds' bank accounts: checked when they are saved, under
        # the region's write lock (core.funds.check_bank_draws).
        self.bank_draws: list[Any] = []
        # Other regions' registries read for claims of members treated there, once a batch.
        self.registries_elsewhere: dict[str, Any] = {}

    def preload(self, ids: Iterable[UUID]) -> None:
        aggregates, known = self._aggregates, self._known
        missing = [i for key, i in {i.int: i for i in ids}.items() if key not in aggregates]
        if not missing:
            return
        after = {i: known[i.int].version for i in missing if i.int in known}
        found = self._select(missing, after)
        for aggregate_id in missing:
            stored = found.get(aggregate_id)
            cached = known.get(aggregate_id.int)
            if cached is not None:
                for event in map(self._to_domain_event, stored or ()):
                    event.mutate(cached)  # fast-forward what another writer added
                aggregates[aggregate_id.int] = cached
            else:
                aggregates[aggregate_id.int] = self._replay(stored) if stored else None

    def _replay(self, stored: list[StoredEvent]) -> Aggregate:
        aggregate = None
        for event in map(self._to_domain_event, stored):
            aggregate = event.mutate(aggregate)
        assert aggregate is not None
        return aggregate

    def get(self, aggregate_id: UUID, kind: type[A]) -> A | None:
        # Hot path (several calls per claim)
        aggregate = self._aggregates.get(aggregate_id.int, _NOT_READ)
        if aggregate is _NOT_READ:
            self.preload((aggregate_id,))
            aggregate = self._aggregates[aggregate_id.int]
        if aggregate is not None:
            if not isinstance(aggregate, kind):
                raise AssertionError(f"{aggregate_id} is a {type(aggregate).__name__}, not {kind.__name__}")
            self._touched[id(aggregate)] = aggregate
        return aggregate

    def add(self, aggregate: A) -> A:
        if self._aggregates.get(aggregate.id.int) is not None:
            raise AssertionError(f"aggregate {aggregate.id} exists already")
        self._aggregates[aggregate.id.int] = aggregate
        self._touched[id(aggregate)] = aggregate
        return aggregate

    def loaded(self) -> list[Aggregate]:
        """Every aggregate this unit of work holds (read or created)."""
        return [a for a in self._aggregates.values() if a is not None]

    def changed(self) -> list[Aggregate]:
        return [a for a in self._touched.values() if a.pending_events]
