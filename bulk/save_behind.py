"""Save-behind: a batch's commit runs on a writer thread while the next batch is computed.

Settling a file is computing (Python) and writing (PostgreSQL) in turn; with the save of batch N
in flight while N+1 is computed on top of it, the two overlap. A result is given only once the
save that recorded it has committed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from eventsourcing.persistence import IntegrityError

from app import stages
from app.outcomes import Outcome
from app.region import RegionApplication
from bulk.kept import keep_recent
from core.errors import StaleRead
from core.records import Claim

log = logging.getLogger(__name__)


class SaveInFlight:
    """A batch whose outcomes were computed and whose save runs on the region's writer thread
    (`SettlingBehind.settle`). `finish()` waits for the commit; a save that
    lost to a concurrent writer is settled again (synchronously, from fresh reads). A save that
    failed otherwise makes the application forget the aggregates it keeps (they hold the failed
    changes) and raises its error, then and on every later call: its outcomes are never given."""

    def __init__(
        self,
        future: Future[Any] | None,
        outcomes: list[Outcome],
        settle_again: Callable[[], list[Outcome]],
        forget: Callable[[], None],
    ) -> None:
        self._future = future
        self._outcomes = outcomes
        self._settle_again = settle_again
        self._forget = forget
        self._stood: bool | None = None if future is not None else True
        self._error: BaseException | None = None

    @classmethod
    def done(cls, outcomes: list[Outcome]) -> SaveInFlight:
        return cls(None, outcomes, lambda: outcomes, lambda: None)

    def finish(self) -> bool:
        """Wait for the commit. True if the save stood as computed (a batch computed on top of
        it is valid); False if the batch had to be settled again."""
        if self._error is not None:
            raise self._error
        if self._stood is None:
            assert self._future is not None
            computed, self._outcomes = self._outcomes, []  # given only once committed
            try:
                self._future.result()
                self._stood, self._outcomes = True, computed
            except (IntegrityError, StaleRead):
                self._stood = False
                try:
                    self._outcomes = self._settle_again()
                except BaseException as exc:
                    self._error = exc
                    raise
            except BaseException as exc:
                self._stood, self._error = False, exc
                self._forget()
                raise
        return self._stood

    def outcomes(self) -> list[Outcome]:
        self.finish()
        return self._outcomes


class SettlingBehind:
    """One region's claims settled with their saves behind: at most one save in flight."""

    def __init__(self, app: RegionApplication) -> None:
        self.app = keep_recent(app)
        self._in_flight: SaveInFlight | None = None
        self._writer: ThreadPoolExecutor | None = None

    def settle(self, claims: Sequence[Claim], *, origins: Sequence[str] | None = None) -> SaveInFlight:
        """`app.settle_claims` with the commit left to the writer thread. The batch is computed
        on this process's latest state, including the previous batch if its save is still in
        flight; that save is then waited for, and if it lost to another writer both batches are
        settled again from fresh reads."""
        app = self.app
        previous, self._in_flight = self._in_flight, None
        outcomes: list[Outcome] | None = None
        uow = app.unit_of_work(reuse_kept=True)
        try:
            with stages.stage("settle_all"):
                outcomes = app.settle_all(uow, claims, operator=None, reason=None, origins=origins)
        except StaleRead:
            pass  # settled again below, with the usual retries
        except BaseException:
            app.kept.clear()
            if previous is not None:
                previous.finish()
            raise
        with stages.stage("wait_save"):
            stood = previous.finish() if previous is not None else True
        if not stood:
            outcomes = None  # computed on changes that were never committed
        if outcomes is None:
            app.kept.clear()
            return SaveInFlight.done(app.settle_claims(claims, origins=origins))
        changed = uow.changed()
        if not changed:
            return SaveInFlight.done(outcomes)
        with stages.stage("encode"):
            stored, snapshots = app.stored_changes(changed)
        app.kept.keep(uow.loaded())
        if self._writer is None:
            self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"yibao-writer-{app.region}")
        future = self._writer.submit(app.region_log.insert_events, stored, snapshots=snapshots)
        self._in_flight = SaveInFlight(future, outcomes, lambda: self._settle_again(claims, origins), app.kept.clear)
        return self._in_flight

    def _settle_again(self, claims: Sequence[Claim], origins: Sequence[str] | None) -> list[Outcome]:
        log.info("region %s: a batch saved behind lost to a concurrent write; settling it again", self.app.region)
        self.app.kept.clear()
        return self.app.settle_claims(claims, origins=origins)

    def drain(self) -> None:
        """Wait for the save in flight, if any (and settle its batch again if it lost)."""
        in_flight, self._in_flight = self._in_flight, None
        if in_flight is not None:
            in_flight.finish()

    def close(self) -> None:
        try:
            self.drain()
        finally:
            if self._writer is not None:
                self._writer.shutdown()
                self._writer = None
