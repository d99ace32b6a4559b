"""RegionBase: the region's log, units of work and policies, under every use case."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any, TypeVar

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError, Mapper, StoredEvent, Tracking

from app.outcomes import (
    ConcurrencyConflict,
    InconsistentRecords,
)
from app.ports import KEEP_NOTHING, AggregateCache, Neighbours, RegionLog
from app.unit_of_work import UnitOfWork
from core import snapshot
from core.codec import EventMapper
from core.errors import StaleRead
from core.funds import (
    BankDraw,
)
from core.hospital import (
    HospitalAccount,
)
from core.ids import (
    hospital_id,
    member_payables_id,
    policy_book_id,
)
from core.member_payment import MemberPayables
from core.policy import Policy, parse_policy
from core.policy_book import PolicyBook
from core.snapshot import MemberYearSnapshot

log = logging.getLogger(__name__)
T = TypeVar("T")
retry_count_max = 8
policy_years_back_max = 10  # how far back the controls in force are looked for
# A retry waits a random time up to a bound that doubles from the first retry's to the last's
# (full jitter), so writers that collided do not collide again in step: at most 1.13 s in all.
retry_backoff_ms_min = 10
retry_backoff_ms_max = 500


def _back_off(attempt: int) -> None:
    """Wait before the attempt after `attempt` (none after the last)."""
    if attempt < retry_count_max:
        bound_ms = min(retry_backoff_ms_max, retry_backoff_ms_min << (attempt - 1))
        time.sleep(random.uniform(0, bound_ms) / 1000)


@lru_cache(maxsize=64)
def _parse_policy_cached(text: str) -> Policy:
    return parse_policy(text.encode("utf-8"))


class RegionBase(Application):
    """A region's log, its units of work and their save with retries, and its policies: what
    every use case of the region builds on."""

    name = "yibao"

    def __init__(self, region: str, env: Any = None) -> None:
        self.region = region
        self.kept: AggregateCache = KEEP_NOTHING
        self.neighbours: Neighbours | None = None  # set by the store that opened the region
        super().__init__(env)

    def construct_mapper(self) -> Mapper[Any]:
        return EventMapper()

    @property
    def region_log(self) -> RegionLog:
        """The region's recorder through the service layer's port for bulk reads and writes."""
        recorder = self.recorder
        if not isinstance(recorder, RegionLog):
            raise TypeError(f"{type(recorder).__name__} does not implement app.ports.RegionLog")
        return recorder

    def unit_of_work(self, *, reuse_kept: bool = False) -> UnitOfWork:
        """A unit of work on the committed state; with `reuse_kept`, on the aggregates `kept`
        holds, brought up to date (the bulk pipeline keeps them between batches)."""
        known = self.kept.known() if reuse_kept else None
        return UnitOfWork(self.region_log.select_events_of, self.mapper.to_domain_event, known)

    def save_aggregates(
        self, aggregates: Sequence[Any], tracking: Tracking | None = None, bank_draws: Sequence[BankDraw] = ()
    ) -> None:
        """Save in one transaction; the library's `save()` does the same, plus per-object
        protocol checks that cost more than the write itself at batch sizes. With `tracking`,
        the position of the upstream event this save acts on is recorded in the same transaction.
        `bank_draws` are checked against the funds' bank balances in that transaction."""
        stored, snapshots = self.stored_changes(aggregates)
        if stored:
            extra = {"bank_draws": bank_draws} if bank_draws else {}
            self.region_log.insert_events(stored, tracking=tracking, snapshots=snapshots, **extra)
        elif tracking is not None:
            self.region_log.insert_tracking(tracking)

    def stored_changes(self, aggregates: Sequence[Any]) -> tuple[list[StoredEvent], list[StoredEvent]]:
        """The pending events of `aggregates`, encoded (they are taken off the aggregates), and
        the snapshots those events make due. The recorder gets them directly: the library's
        `events.put` also builds a Recording per event, for in-process followers (none here)."""
        snapshots = [
            self.mapper.to_stored_event(MemberYearSnapshot.of(a))
            for a in aggregates
            if snapshot.due(a, len(a.pending_events))
        ]
        events = [event for aggregate in aggregates for event in aggregate.collect_events()]
        return list(map(self.mapper.to_stored_event, events)), snapshots

    def tracked_position(self, name: str) -> int:
        """How far the process `name` has acted on another region's log, as recorded here."""
        return self.region_log.max_tracking_id(name) or 0

    def _tracked(self, work: Callable[[UnitOfWork], T], tracking: Tracking) -> T:
        """Run `work` once and save its changes with `tracking`. A conflict (another writer, or
        another follower that recorded this position first) raises IntegrityError for the
        follower to resolve against the position it then reads."""
        uow = self.unit_of_work()
        result = work(uow)
        self.save_aggregates(uow.changed(), tracking)
        return result

    def _in_transaction(self, work: Callable[[UnitOfWork], T], *, dry_run: bool = False, reuse_kept: bool = False) -> T:
        """Run `work` on a fresh unit of work and save what it changed, retrying on conflict.
        With `dry_run` nothing is saved: the caller sees what would have been recorded.
        With `reuse_kept`, the aggregates `kept` holds are not read again."""
        stale: list[str] = []  # why each attempt's reads disagreed
        for attempt in range(1, retry_count_max + 1):
            uow = self.unit_of_work(reuse_kept=reuse_kept and attempt == 1)
            try:
                result = work(uow)
            except StaleRead as exc:
                log.info("region %s: inconsistent reads, retrying (attempt %d)", self.region, attempt)
                self.kept.clear()
                stale.append(str(exc))
                _back_off(attempt)
                continue
            except BaseException:
                self.kept.clear()  # reused aggregates may hold half-applied changes
                raise
            changed = uow.changed()
            checked = uow.bank_draws if any(draw.amounts for draw in uow.bank_draws) else ()
            if not changed or dry_run:
                if changed and checked:
                    self.region_log.check_bank_draws(checked)
                return result
            try:
                self.save_aggregates(changed, bank_draws=checked)
            except (IntegrityError, StaleRead):
                log.info("region %s: concurrent write, retrying batch (attempt %d)", self.region, attempt)
                self.kept.clear()
                _back_off(attempt)
                continue
            except BaseException:
                self.kept.clear()  # kept aggregates may hold the changes that were not saved
                raise
            self.kept.forget([aggregate.id for aggregate in changed])
            if reuse_kept:
                self.kept.keep(uow.loaded())
            return result
        if len(stale) == retry_count_max and len(set(stale)) == 1:
            # Fresh reads disagreed the same way every time: not a race but the records themselves.
            raise InconsistentRecords(
                f"region {self.region}: {stale[0]}, on every one of {retry_count_max} fresh reads: "
                "the records themselves disagree, not a concurrent writer"
            )
        raise ConcurrencyConflict(
            f"region {self.region}: gave up after {retry_count_max} conflicting concurrent writes"
        )

    def record_policy(self, year: int, content_hash: str, toml_text: str) -> bool:
        """Record a policy version for this region and year; False if it is already current."""

        def work(uow: UnitOfWork) -> bool:
            book = uow.get(policy_book_id(self.region, year), PolicyBook)
            if book is None:
                book = uow.add(PolicyBook(region=self.region, year=year))
            return book.load(content_hash, toml_text)

        return self._in_transaction(work)

    def policy_book(self, year: int) -> PolicyBook | None:
        try:
            return self.repository.get(policy_book_id(self.region, year))
        except AggregateNotFoundError:
            return None

    def _policy(self, uow: UnitOfWork, year: int) -> Policy | None:
        book = uow.get(policy_book_id(self.region, year), PolicyBook)
        if book is None or not book.versions:
            return None
        return _parse_policy_cached(book.current[1])

    def _rules_in_force(self, uow: UnitOfWork, year: int) -> Policy | None:
        """The policy of `year`, or of the latest year before it that has one (a payment early
        in a year may come before that year's policy is loaded): the controls then in force."""
        years = range(year, year - policy_years_back_max, -1)
        uow.preload(policy_book_id(self.region, y) for y in years)
        return next((p for p in (self._policy(uow, y) for y in years) if p is not None), None)

    def _hospital(self, uow: UnitOfWork, code: str) -> HospitalAccount:
        hospital = uow.get(hospital_id(code), HospitalAccount)
        return hospital if hospital is not None else uow.add(HospitalAccount(fixmedins_code=code))

    def _member_payables(self, uow: UnitOfWork) -> MemberPayables:
        payables = uow.get(member_payables_id(self.region), MemberPayables)
        return payables if payables is not None else uow.add(MemberPayables(region=self.region))
