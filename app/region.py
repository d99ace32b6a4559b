"""RegionApplication: the use cases of one pooling region, as an eventsourcing application.

It is independent of the database: `store.app` gives it a PostgreSQL recorder over the region's
own schema. Each CLI command calls one method here. Batch methods load every aggregate they
need in bulk, decide in memory, and save all changes in one transaction; a concurrent writer
makes the save fail on a version constraint and the batch is recomputed (bounded retries).
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import random
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from functools import lru_cache
from typing import Any, TypeVar
from uuid import UUID

import attrs
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError, Mapper, StoredEvent, Tracking

from app.ports import RegionLog
from app.transfer_cases import TransferCases
from app.unit_of_work import UnitOfWork
from core import settle, snapshot
from core.account import IndividualAccount
from core.approval import ApprovalRefused, ApprovalRequest, RequestStatus
from core.codec import EventMapper, topic_of
from core.contribution import ContributionReceived
from core.errors import StaleRead, YibaoError
from core.funds import (
    BankDraw,
    EntryFacts,
    FundEntry,
    FundEntryRejected,
    bank_moves,
    entry_postings,
    serious_illness_financing,
)
from core.hospital import (
    FinanceRejected,
    HospitalAccount,
    OwedAt,
    deduction_operation,
    fine_operation,
    payment_operation,
    recovery_operation,
)
from core.ids import (
    account_id,
    approval_id,
    contribution_id,
    fund_entry_id,
    hospital_id,
    member_id,
    member_year_id,
    policy_book_id,
    settlement_id,
)
from core.ledger import BENEFIT_EXPENSE, Posting, contribution_postings
from core.lookback import CATEGORY as LOOKBACK_CATEGORY
from core.lookback import late_recognition, lookback_for, lookback_window
from core.member import FamilyStatement, Member, no_record_on, not_an_employee
from core.member_year import MemberYear
from core.money import format_yuan
from core.policy import Policy, parse_policy
from core.policy_book import PolicyBook
from core.reconciliation import Reconciliation
from core.records import Claim, Contribution, MemberRecord, insured_elsewhere
from core.settlement import Settlement, SettlementFacts
from core.snapshot import MemberYearSnapshot
from core.tiers import YearToDate

log = logging.getLogger(__name__)
T = TypeVar("T")
retry_count_max = 8
policy_years_back_max = 10  # how far back the controls in force are looked for
# A retry waits a random time up to a bound that doubles from the first retry's to the last's
# (full jitter), so writers that collided do not collide again in step: at most 1.13 s in all.
retry_backoff_ms_min = 10
retry_backoff_ms_max = 500
MEMBER_FILE_OPERATOR = "member-file"  # the operator of bindings stated by an imported member file


class SettlementNotFound(YibaoError):
    reason = "unknown_settlement"


class ConcurrencyConflict(YibaoError):
    reason = "concurrency_conflict"


class InconsistentRecords(YibaoError):
    """Reads that disagree however often they are repeated (a member-year transferred out while
    the member's record says insured here): the data, not a concurrent writer."""

    reason = "inconsistent_records"


@attrs.frozen
class Outcome:
    """What happened to one input record: settled/duplicate/recorded/unchanged/rejected."""

    status: str
    facts: SettlementFacts | None = None
    reason: str | None = None
    detail: str | None = None
    extra: dict[str, Any] = attrs.field(factory=dict)

    @classmethod
    def rejected(cls, reason: str, detail: str | None = None) -> Outcome:
        return cls("rejected", reason=reason, detail=detail)


def _outcome(decision: settle.Refusal | settle.Answered) -> Outcome:
    if isinstance(decision, settle.Refusal):
        return Outcome.rejected(decision.reason, decision.detail)
    return Outcome(decision.status, facts=decision.facts)


class SaveInFlight:
    """A batch whose outcomes were computed and whose save runs on the region's writer thread
    (`RegionApplication.settle_claims_behind`). `finish()` waits for the commit; a save that
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


@attrs.frozen
class HospitalPayment:
    payment_id: str
    hospital: str
    owed: dict[str, int]  # fund -> fen


@attrs.frozen
class FinanceResult:
    status: str  # recorded | duplicate | dry_run
    postings: list[Posting]


def _back_off(attempt: int) -> None:
    """Wait before the attempt after `attempt` (none after the last)."""
    if attempt < retry_count_max:
        bound_ms = min(retry_backoff_ms_max, retry_backoff_ms_min << (attempt - 1))
        time.sleep(random.uniform(0, bound_ms) / 1000)


@lru_cache(maxsize=64)
def _parse_policy_cached(text: str) -> Policy:
    return parse_policy(text.encode("utf-8"))


class RegionApplication(TransferCases, Application):
    name = "yibao"

    def __init__(self, region: str, env: Any = None) -> None:
        self.region = region
        self._saved = {}
        self._in_flight: SaveInFlight | None = None  # the batch whose save the writer thread runs
        self._writer: ThreadPoolExecutor | None = None
        super().__init__(env)

    def construct_mapper(self) -> Mapper[Any]:
        return EventMapper()

    # --- infrastructure helpers ----------------------------------------------------------

    @property
    def region_log(self) -> RegionLog:
        """The region's recorder through the service layer's port for bulk reads and writes."""
        recorder = self.recorder
        if not isinstance(recorder, RegionLog):
            raise TypeError(f"{type(recorder).__name__} does not implement app.ports.RegionLog")
        return recorder

    def unit_of_work(self, *, reuse_saved: bool = False, drain: bool = True) -> UnitOfWork:
        """A unit of work on the committed state (a save still in flight is waited for first,
        unless `drain` is False: the next batch's computation on top of it, or a read of members,
        which settling never changes)."""
        if drain:
            self._drain()
        known = self._saved if reuse_saved else None
        return UnitOfWork(self.region_log.select_events_of, self.mapper.to_domain_event, known)

    # Aggregates the settlement path read or wrote, kept between batches (bounded).
    # The most recently used are kept. Measured with `claims settle` of 200,000 claims: members
    # with ten claims a year (the demo) settle a third faster with 40,000 kept than with none;
    # members with five are not helped by any size (their next claim comes after the cache has
    # turned over), and each 10,000 kept cost about 25 MB.
    saved_cache_max = 40_000
    _saved: dict[UUID, Any]

    def save_aggregates(
        self, aggregates: Sequence[Any], tracking: Tracking | None = None, bank_draws: Sequence[BankDraw] = ()
    ) -> None:
        """Save in one transaction; the library's `save()` does the same, plus per-object
        protocol checks that cost more than the write itself at batch sizes. With `tracking`,
        the position of the upstream event this save acts on is recorded in the same transaction.
        `bank_draws` are checked against the funds' bank balances in that transaction."""
        stored, snapshots = self._stored_changes(aggregates)
        if stored:
            extra = {"bank_draws": bank_draws} if bank_draws else {}
            self.region_log.insert_events(stored, tracking=tracking, snapshots=snapshots, **extra)
        elif tracking is not None:
            self.region_log.insert_tracking(tracking)

    def _stored_changes(self, aggregates: Sequence[Any]) -> tuple[list[StoredEvent], list[StoredEvent]]:
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

    def _keep(self, uow: UnitOfWork) -> None:
        """Keep the long-lived aggregates a batch read and wrote (members, member-years, accounts,
        policies): the next batch fast-forwards each past its version instead of replaying its
        history. Settlements are one per claim and seldom read again."""
        saved = self._saved
        used = 0
        for aggregate in uow.loaded():
            if not isinstance(aggregate, Settlement):
                key = aggregate.id
                saved.pop(key, None)  # to the end: dict order is least recently used first
                saved[key] = aggregate
                used += 1
        excess = len(saved) - self.saved_cache_max
        if excess > 0:
            # Never this batch's own: with its save still in flight (settle_claims_behind) the
            # next batch must find them here, not read them from before that save.
            evict = min(excess + self.saved_cache_max // 4, len(saved) - used)
            for key in list(itertools.islice(saved, evict)):
                del saved[key]

    def _drain(self) -> None:
        """Wait for the save in flight, if any (and settle its batch again if it lost)."""
        in_flight, self._in_flight = self._in_flight, None
        if in_flight is not None:
            in_flight.finish()

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

    def _in_transaction(
        self, work: Callable[[UnitOfWork], T], *, dry_run: bool = False, reuse_saved: bool = False
    ) -> T:
        """Run `work` on a fresh unit of work and save what it changed, retrying on conflict.
        With `dry_run` nothing is saved: the caller sees what would have been recorded.
        With `reuse_saved`, aggregates this process saved before are not read again."""
        stale: list[str] = []  # why each attempt's reads disagreed
        for attempt in range(1, retry_count_max + 1):
            uow = self.unit_of_work(reuse_saved=reuse_saved and attempt == 1)
            try:
                result = work(uow)
            except StaleRead as exc:
                log.info("region %s: inconsistent reads, retrying (attempt %d)", self.region, attempt)
                self._saved.clear()
                stale.append(str(exc))
                _back_off(attempt)
                continue
            except BaseException:
                self._saved.clear()  # reused aggregates may hold half-applied changes
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
                self._saved.clear()
                _back_off(attempt)
                continue
            except BaseException:
                self._saved.clear()  # kept aggregates may hold the changes that were not saved
                raise
            for aggregate in changed:
                self._saved.pop(aggregate.id, None)
            if reuse_saved:
                self._keep(uow)
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

    # --- policies -------------------------------------------------------------------------

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

    # --- members --------------------------------------------------------------------------

    def import_members(self, records: Sequence[MemberRecord], *, bind: bool = True) -> list[Outcome]:
        """Record members and changes; look back for newly recognised illness_poverty members.
        The records' `family_of` are bound once all of them are recorded (SPEC 3.1: the employee
        may come anywhere among them), each outcome's `binding` saying how; `bulk.batch` passes
        `bind=False` and binds after the last batch of a file (`bind_from_member_file`)."""

        def work(uow: UnitOfWork) -> list[Outcome]:
            uow.preload(member_id(r.psn_no) for r in records)
            outcomes = [self._import_member(uow, record) for record in records]
            if not bind:
                return outcomes
            held = [
                (i, FamilyStatement(r.psn_no, r.valid_from, r.family_of, o.status == "recorded"))
                for i, (r, o) in enumerate(zip(records, outcomes, strict=True))
                if r.family_of is not None and o.status in ("recorded", "unchanged")
            ]
            for (i, _), binding in zip(held, self._bind_statements(uow, [s for _, s in held]), strict=True):
                if binding is not None:
                    outcomes[i] = attrs.evolve(outcomes[i], extra={**outcomes[i].extra, "binding": binding})
            return outcomes

        return self._in_transaction(work, reuse_saved=True)

    def _import_member(self, uow: UnitOfWork, record: MemberRecord) -> Outcome:
        if record.insuplc_admdvs != self.region:
            raise AssertionError("member routed to the wrong region")
        member = uow.get(member_id(record.psn_no), Member)
        if member is None:
            member = uow.add(Member(psn_no=record.psn_no))
        before = member.record_at(record.valid_from)
        if before is not None and before.insuplc_admdvs != self.region:
            # Checked again here, in the import's transaction: a transfer out that
            # committed after the file's check (bulk.batch.insured_regions) is seen.
            refusal = insured_elsewhere(record.psn_no, before.insuplc_admdvs, record.valid_from)
            return Outcome.rejected(refusal.reason, str(refusal))
        if not member.add_record(record):
            return Outcome("unchanged")
        if member.records[-1] == record and record.family_of is None:
            when = record.valid_from.isoformat()  # the latest record names no employee: unbound now
            member.unbind_family(
                on_date=when, operator=MEMBER_FILE_OPERATOR, reason=f"member file record valid from {when}"
            )
        lookback: list[dict[str, Any]] = []
        if record.assist_category == "illness_poverty" and (
            before is None or before.assist_category != "illness_poverty"
        ):
            lookback = self._look_back(uow, member, record)
        return Outcome("recorded", extra={"lookback": lookback} if lookback else {})

    def bind_from_member_file(self, statements: Sequence[FamilyStatement]) -> list[dict[str, Any] | None]:
        """Bind the `family_of` of member-file lines recorded before (by `import_members` with
        `bind=False`), once every line of the file is: the employee named may come anywhere in it.
        Per line, its `binding` (see `_bind_statements`)."""
        return self._in_transaction(lambda uow: self._bind_statements(uow, statements), reuse_saved=True)

    def _bind_statements(self, uow: UnitOfWork, statements: Sequence[FamilyStatement]) -> list[dict[str, Any] | None]:
        """Per line, `{"family_of", "status", ...}` with status `bound` or `unchanged` (the
        member's latest record: its binding made, or already so), `refused` with `reason` and
        `detail` (and `ended`: the employee of a binding it ended, the file naming another),
        `superseded` (a later record, or `family bind` since, decides the binding); or None: a
        line recorded before whose binding needs nothing."""
        uow.preload(member_id(s.psn_no) for s in statements)
        uow.preload(member_id(s.family_of) for s in statements)
        return [self._bind_statement(uow, s) for s in statements]

    def _bind_statement(self, uow: UnitOfWork, statement: FamilyStatement) -> dict[str, Any] | None:
        member = uow.get(member_id(statement.psn_no), Member)
        assert member is not None, "a member-file line is bound after it is recorded"
        employee = statement.family_of
        record = member.record_from(statement.valid_from)
        if record is None or record.family_of != employee:
            replaced = "a later line for the same valid_from replaced this record"
            return {"family_of": employee, "status": "superseded", "detail": replaced} if statement.recorded else None
        states = record == member.records[-1] and member.binding_pending
        if not states and not statement.recorded:
            return None  # recorded before: its binding was made then, or another record or `family bind` decides
        themself = employee == statement.psn_no
        refusal = "a member cannot be bound to themself" if themself else not_an_employee(
            employee, uow.get(member_id(employee), Member), self.region, record.valid_from
        )
        when = record.valid_from.isoformat()
        why = f"member file record valid from {when}"
        if refusal is None and not states:
            later = "a later record of the member, or `family bind`, decides the binding"
            return {"family_of": employee, "status": "superseded", "detail": later}
        if refusal is None:
            bound = member.bind_family(employee, on_date=when, operator=MEMBER_FILE_OPERATOR, reason=why)
            return {"family_of": employee, "status": "bound" if bound else "unchanged"}
        reason = "bad_family_of" if themself else "not_an_employee"
        refused = {"family_of": employee, "status": "refused", "reason": reason, "detail": refusal}
        if not states:
            return refused
        ended = member.family_employee  # the file names another employee: the old account stops paying
        member.unbind_family(on_date=when, operator=MEMBER_FILE_OPERATOR, reason=f"{why}: {refusal}")
        return {**refused, "ended": ended} if ended else refused

    def _look_back(self, uow: UnitOfWork, member: Member, record: MemberRecord) -> list[dict[str, Any]]:
        """Assistance on every settlement dated from six months before the recognition for as long
        as it is in force (until the member's next record, if any), that was settled under an
        earlier record: the months before it, and claims after it settled before it was imported."""
        start, _ = lookback_window(record.valid_from)
        until = next((r.valid_from for r in member.records if r.valid_from > record.valid_from), None)
        last_year = until.year if until is not None else max(record.valid_from.year, dt.date.today().year) + 1
        years = range(start.year, last_year + 1)
        uow.preload(member_year_id(record.psn_no, year) for year in years)
        granted = []
        for year in years:
            member_year = uow.get(member_year_id(record.psn_no, year), MemberYear)
            if year <= record.valid_from.year:  # a claim of these years settled meanwhile conflicts with this
                if member_year is None:
                    member_year = uow.add(MemberYear(psn_no=record.psn_no, year=year))
                member_year.note_recognition(record.valid_from.isoformat())
            policy = self._policy(uow, year)
            if member_year is None or policy is None:
                continue
            in_window = sorted(
                (applied.setl_time, setl_id)
                for setl_id, applied in member_year.applied.items()
                if start.isoformat() <= applied.setl_time and (until is None or applied.setl_time < until.isoformat())
            )
            uow.preload(settlement_id(setl_id) for _, setl_id in in_window)
            for _, setl_id in in_window:
                settlement = uow.get(settlement_id(setl_id), Settlement)
                assert settlement is not None and not settlement.reversed
                if settlement.current.assist_category == LOOKBACK_CATEGORY:
                    continue  # settled as illness_poverty already: its assistance was paid then
                paid = self._grant_look_back(member_year, settlement, policy, record)
                if paid:
                    granted.append({"setl_id": setl_id, "year": year, "maf_pay": format_yuan(paid)})
        return granted

    @staticmethod
    def _grant_look_back(
        member_year: MemberYear, settlement: Settlement, policy: Policy, recognition: MemberRecord
    ) -> int:
        """The look-back assistance a settlement is still due for `recognition`, recorded on it and
        on its member-year within the year's limits; what was granted (fen). A version gets one
        look-back: a recognition ended and given again does not pay it twice."""
        if settlement.current.lookback_maf:
            return 0
        grant = lookback_for(settlement.current, policy, member_year.ytd)
        if grant is None:
            return 0
        member_year.look_back(settlement.setl_id, grant.delta)
        settlement.add_lookback_assistance(grant.maf_pay, recognition.valid_from.isoformat(), grant.breakdown)
        return grant.maf_pay

    # --- contributions --------------------------------------------------------------------

    def import_contributions(self, contributions: Sequence[Contribution]) -> list[Outcome]:
        def work(uow: UnitOfWork) -> list[Outcome]:
            uow.preload(contribution_id(c.contrib_id) for c in contributions)
            uow.preload(member_id(c.psn_no) for c in contributions)
            uow.preload(account_id(c.psn_no) for c in contributions if c.acct_amount)
            outcomes = []
            for c in contributions:
                existing = uow.get(contribution_id(c.contrib_id), ContributionReceived)
                if existing is not None:
                    same = existing.content_hash == c.content_hash
                    outcomes.append(Outcome("duplicate") if same else Outcome.rejected("exists_with_different_content"))
                    continue
                member = uow.get(member_id(c.psn_no), Member)
                record = member.record_at(c.paid_date) if member else None
                if record is None:
                    outcomes.append(Outcome.rejected(*no_record_on(member, c.paid_date)))
                    continue
                if record.insuplc_admdvs != self.region:
                    outcomes.append(
                        Outcome.rejected("member_transferred_out", f"insured in {record.insuplc_admdvs} on that date")
                    )
                    continue
                if c.acct_amount and record.insutype != "310":
                    outcomes.append(Outcome.rejected("no_individual_account", "only employees have an account"))
                    continue
                assert member is not None
                member.add_contribution_years([c.paid_date.year], f"contribution:{c.contrib_id}")
                postings = contribution_postings(
                    fund=c.fund, psn_no=c.psn_no, amount=c.amount, acct_amount=c.acct_amount, source=c.source
                )
                uow.add(ContributionReceived(contribution=c.to_dict(), content_hash=c.content_hash, postings=postings))
                if c.acct_amount:
                    account = uow.get(account_id(c.psn_no), IndividualAccount)
                    if account is None:
                        account = uow.add(IndividualAccount(psn_no=c.psn_no))
                    account.credit(f"contribution:{c.contrib_id}", "contribution", c.acct_amount)
                outcomes.append(Outcome("recorded"))
            return outcomes

        return self._in_transaction(work, reuse_saved=True)

    # --- settlement -----------------------------------------------------------------------

    def settle_claims(self, claims: Sequence[Claim], *, origins: Sequence[str] | None = None) -> list[Outcome]:
        """Settle claims in order (SPEC 4), all in one transaction.

        `origins` name where each claim came from ("<file sha256>:<line>"), recorded with the
        settlement: the same file run again after a crash answers `settled` for the lines its
        interrupted run settled, so its results are identical to an uninterrupted run's.
        """
        return self._settle_now(claims, origins)

    def _settle_now(self, claims: Sequence[Claim], origins: Sequence[str] | None) -> list[Outcome]:
        """Settle a batch in one transaction; if it keeps losing to concurrent writers (other runs
        settling the same members or accounts), settle it claim by claim: a claim's transaction
        holds a few aggregates, where the batch's holds hundreds, so it gets through."""

        def settle(part: Sequence[Claim], part_origins: Sequence[str] | None) -> list[Outcome]:
            return self._in_transaction(
                lambda uow: self._settle_all(uow, part, operator=None, reason=None, origins=part_origins),
                reuse_saved=True,
            )

        try:
            return settle(claims, origins)
        except ConcurrencyConflict:
            if len(claims) == 1:
                raise
            log.info("region %s: a batch of %d kept conflicting; settling it claim by claim", self.region, len(claims))
        outcomes = []
        for i, claim in enumerate(claims):
            outcomes += settle([claim], [origins[i]] if origins else None)
        return outcomes

    def settle_claims_behind(self, claims: Sequence[Claim], *, origins: Sequence[str] | None = None) -> SaveInFlight:
        """`settle_claims` with the commit left to the region's writer thread, so that the caller
        can compute its next batch while PostgreSQL writes this one. The batch is computed on
        this process's latest state, including the previous batch if its save is still in
        flight; that save is then waited for, and if it lost to another writer both batches are
        settled again from fresh reads. The outcomes are committed only once `outcomes()` has
        returned them."""

        def work(uow: UnitOfWork) -> list[Outcome]:
            return self._settle_all(uow, claims, operator=None, reason=None, origins=origins)

        previous, self._in_flight = self._in_flight, None
        outcomes: list[Outcome] | None = None
        uow = self.unit_of_work(reuse_saved=True, drain=False)
        try:
            outcomes = work(uow)
        except StaleRead:
            pass  # settled again below, with the usual retries
        except BaseException:
            self._saved.clear()
            if previous is not None:
                previous.finish()
            raise
        if previous is not None and not previous.finish():
            outcomes = None  # computed on changes that were never committed
        if outcomes is None:
            self._saved.clear()
            return SaveInFlight.done(self._settle_now(claims, origins))
        changed = uow.changed()
        if not changed:
            return SaveInFlight.done(outcomes)
        stored, snapshots = self._stored_changes(changed)
        self._keep(uow)
        if self._writer is None:
            self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"yibao-writer-{self.region}")
        future = self._writer.submit(self.region_log.insert_events, stored, snapshots=snapshots)
        self._in_flight = SaveInFlight(future, outcomes, lambda: self._settle_again(claims, origins), self._saved.clear)
        return self._in_flight

    def _settle_again(self, claims: Sequence[Claim], origins: Sequence[str] | None) -> list[Outcome]:
        log.info("region %s: a batch saved behind lost to a concurrent write; settling it again", self.region)
        self._saved.clear()
        return self._settle_now(claims, origins)

    def close(self) -> None:
        try:
            self._drain()
        finally:
            if self._writer is not None:
                self._writer.shutdown()
                self._writer = None
            super().close()

    def correct_claims(
        self,
        claims: Sequence[Claim],
        *,
        operator: str,
        reason: str,
        on_date: dt.date | None = None,
        origins: Sequence[str] | None = None,
    ) -> list[Outcome]:
        """Correction = reversal of the current version + a new version, same setl_id, both
        posted on `on_date` (default today). A claim whose current version is the correction
        made from the same origin (file hash and line) is answered as then, not corrected again:
        running a correction file twice corrects once."""
        when = (on_date or dt.date.today()).isoformat()
        return self._in_transaction(
            lambda uow: self._settle_all(uow, claims, operator=operator, reason=reason, on_date=when, origins=origins)
        )

    def reverse(
        self, setl_id: str, *, operator: str, reason: str, on_date: dt.date | None = None
    ) -> SettlementFacts | ApprovalRequest:
        """Reverse a settlement, or, when its fund payments are above the policy's
        `[controls] approval_above`, record the request for a second person to approve."""

        def work(uow: UnitOfWork) -> SettlementFacts | ApprovalRequest:
            settlement = self._settlement(uow, setl_id)
            day = (on_date or dt.date.today()).isoformat()
            amount = settlement.current.amounts["fund_pay_sumamt"]
            if not settlement.reversed and self._needs_approval(uow, settlement.current.year, amount):
                return self._request(uow, "reverse", settlement, amount, operator, reason, {"on_date": day})
            self._reverse(uow, settlement, operator, reason, day)
            return settlement.current

        return self._in_transaction(work)

    # --- four eyes (复核) -------------------------------------------------------------------

    def _settlement(self, uow: UnitOfWork, setl_id: str) -> Settlement:
        settlement = uow.get(settlement_id(setl_id), Settlement)
        if settlement is None:
            raise SettlementNotFound(f"no settlement {setl_id} in region {self.region}")
        return settlement

    def _needs_approval(self, uow: UnitOfWork, year: int, amount: int) -> bool:
        policy = self._policy(uow, year)
        above = policy.controls.approval_above if policy is not None else None
        return above is not None and amount > above

    def _request(
        self, uow: UnitOfWork, kind: str, settlement: Settlement, amount: int, maker: str, reason: str,
        details: dict[str, Any],
    ) -> ApprovalRequest:  # fmt: skip
        """The pending request for this action on this version, recorded once (a rejected one
        leaves room for a new attempt)."""
        base = f"{kind}-{settlement.setl_id}-v{settlement.current.version}"
        for attempt in itertools.count(1):
            request_id = base if attempt == 1 else f"{base}-{attempt}"
            existing = uow.get(approval_id(request_id), ApprovalRequest)
            if existing is None:
                return uow.add(ApprovalRequest(
                    request_id=request_id, kind=kind, subject=settlement.setl_id,
                    subject_version=settlement.current.version, amount=amount, maker=maker, reason=reason,
                    details=details,
                ))  # fmt: skip
            if existing.status != RequestStatus.REJECTED:
                return existing
        raise AssertionError("unreachable")

    def approval_request(self, request_id: str) -> ApprovalRequest | None:
        return self.unit_of_work().get(approval_id(request_id), ApprovalRequest)

    def approval_requests(self) -> list[ApprovalRequest]:
        uow = self.unit_of_work()
        ids = self.region_log.select_originators_of([topic_of(ApprovalRequest.Requested)])
        uow.preload(ids)
        found = (uow.get(i, ApprovalRequest) for i in ids)
        return sorted((r for r in found if r is not None), key=lambda r: r.request_id)

    # --- reconciliation with hospitals (对账) ---------------------------------------------------

    def record_reconciliation(self, *, operator: str, on_date: dt.date, **key_and_result: Any) -> bool:
        """Record a file's reconciliation once (True when something was recorded): the same file
        again records nothing unless its answer changed."""

        def work(uow: UnitOfWork) -> bool:
            key = {k: key_and_result[k] for k in ("kind", "file_sha256", "hospital", "begin", "end")}
            found = uow.get(Reconciliation.create_id(**key), Reconciliation)
            if found is not None:
                return found.recheck(operator, on_date.isoformat(), key_and_result["result"])
            uow.add(Reconciliation(**key_and_result, operator=operator, on_date=on_date.isoformat()))
            return True

        return self._in_transaction(work)

    def reconciliations(self) -> list[Reconciliation]:
        uow = self.unit_of_work()
        ids = self.region_log.select_originators_of([topic_of(Reconciliation.Recorded)])
        uow.preload(ids)
        return [r for r in (uow.get(i, Reconciliation) for i in ids) if r is not None]

    def decide_request(
        self, request_id: str, *, checker: str, approve: bool, reason: str = "", on_date: dt.date | None = None
    ) -> tuple[ApprovalRequest, SettlementFacts | None]:
        """Approve (the action takes effect in the same transaction, by its maker, approved by the
        checker) or reject a pending request; the maker can never decide their own."""

        def work(uow: UnitOfWork) -> tuple[ApprovalRequest, SettlementFacts | None]:
            request = uow.get(approval_id(request_id), ApprovalRequest)
            if request is None:
                detail = f"no approval request {request_id} in region {self.region}"
                raise ApprovalRefused(detail, reason="unknown_request")
            day = (on_date or dt.date.today()).isoformat()
            if not approve:
                request.reject(checker, reason, day)
                return request, None
            request.approve(checker, day)
            settlement = self._settlement(uow, request.subject)
            if settlement.current.version != request.subject_version or settlement.reversed:
                raise ApprovalRefused(
                    f"settlement {request.subject} changed since request {request_id} was made: ask again",
                    reason="request_stale",
                )
            return request, self._carry_out(uow, request, checker)

        return self._in_transaction(work)

    def _carry_out(self, uow: UnitOfWork, request: ApprovalRequest, checker: str) -> SettlementFacts:
        """The action of an approved request, by its maker, approved by `checker`."""
        details, maker = request.details, request.maker
        settlement = self._settlement(uow, request.subject)
        if request.kind == "reverse":
            self._reverse(uow, settlement, maker, request.reason, details["on_date"], approved_by=checker)
            return settlement.current
        claim = Claim.from_dict(details["claim"])
        self._preload_for_claims(uow, [claim], correcting=True)
        outcome = self._settle_one(
            uow, claim, operator=maker, reason=request.reason, on_date=details["on_date"], origin=details["origin"],
            approved_by=checker,
        )  # fmt: skip
        if outcome.facts is None:
            raise ApprovalRefused(f"the correction cannot be made: {outcome.reason}: {outcome.detail}",
                                  reason=outcome.reason or "rejected")  # fmt: skip
        return outcome.facts

    def _preload_for_claims(self, uow: UnitOfWork, claims: Sequence[Claim], *, correcting: bool) -> None:
        """Read every aggregate the batch needs in one query: settlements, policies, members,
        member-years and accounts (one claim per transaction is then one read). A second query
        reads what only the members name (a bound family employee and their account) and, for
        corrections, the member-years of the settlements being corrected."""
        uow.preload(
            [settlement_id(c.setl_id) for c in claims]
            + [policy_book_id(self.region, y) for y in {c.year for c in claims}]
            + [member_id(c.psn_no) for c in claims]
            + [member_year_id(c.psn_no, c.year) for c in claims]
            + [account_id(c.psn_no) for c in claims]
        )
        family = set()
        for c in claims:
            member = uow.get(member_id(c.psn_no), Member)
            if member is not None and member.family_employee:
                family.add(member.family_employee)
        corrected_years = []
        if correcting:
            for c in claims:
                existing = uow.get(settlement_id(c.setl_id), Settlement)
                if existing is not None:
                    corrected_years.append(member_year_id(existing.current.psn_no, existing.current.year))
        uow.preload([account_id(p) for p in family] + [member_id(p) for p in family] + corrected_years)

    def _settle_all(
        self,
        uow: UnitOfWork,
        claims: Sequence[Claim],
        *,
        operator: str | None,
        reason: str | None,
        on_date: str | None = None,
        origins: Sequence[str] | None = None,
    ) -> list[Outcome]:
        self._preload_for_claims(uow, claims, correcting=operator is not None)
        return [
            self._settle_one(
                uow, c, operator=operator, reason=reason, on_date=on_date, origin=origins[i] if origins else None
            )
            for i, c in enumerate(claims)
        ]

    def _settle_one(
        self,
        uow: UnitOfWork,
        claim: Claim,
        *,
        operator: str | None,
        reason: str | None,
        on_date: str | None,
        origin: str | None = None,
        approved_by: str | None = None,
    ) -> Outcome:
        """Load what the decision needs, let `core.settle` decide, record what it decided."""
        correcting = operator is not None
        settlement = uow.get(settlement_id(claim.setl_id), Settlement)
        screened = settle.screen(claim, settlement, correcting=correcting, origin=origin)
        if screened is not None:
            return _outcome(screened)
        member = uow.get(member_id(claim.psn_no), Member)
        record = settle.record_in_force(claim, member, self.region)
        if isinstance(record, settle.Refusal):
            return _outcome(record)
        policy = self._policy(uow, claim.year)
        if policy is None:
            detail = f"no policy for region {self.region} year {claim.year}"
            return _outcome(settle.Refusal(settle.Rejection.NO_POLICY, detail))
        if correcting and settlement is not None and not settlement.reversed:  # the version in force goes first
            held = self._correction_reversed(uow, settlement, claim, operator or "", reason or "", on_date or "",
                                             origin, approved_by)  # fmt: skip
            if held is not None:
                return held
        member_year = uow.get(member_year_id(claim.psn_no, claim.year), MemberYear)
        if member_year is None:
            member_year = uow.add(MemberYear(psn_no=claim.psn_no, year=claim.year))
        own, family = self._accounts(uow, claim, record, member)
        decided = settle.decide(
            claim, region=self.region, record=record, policy=policy, ytd=member_year.ytd,
            accounts=settle.Accounts(
                own.psn_no if own else None, own.balance if own else 0,
                family.psn_no if family else None, family.balance if family else 0,
            ),
            version=settlement.current.version + 1 if settlement is not None else 1,
            operator=operator, reason=reason, on_date=on_date, origin=origin, approved_by=approved_by,
        )  # fmt: skip
        recorded = self._record_settlement(uow, settlement, member_year, decided, own, family)
        recognition = late_recognition(member.records if member else [], record, claim.setl_time)
        if recognition is not None:
            self._grant_look_back(member_year, recorded, policy, recognition)
        return Outcome(settle.Status.SETTLED, facts=decided.facts)

    def _correction_reversed(
        self, uow: UnitOfWork, settlement: Settlement, claim: Claim, operator: str, reason: str, on_date: str,
        origin: str | None, approved_by: str | None,
    ) -> Outcome | None:  # fmt: skip
        """Reverse the version a correction replaces; or, above the approval threshold and not yet
        approved, hold the correction as a request (its outcome); or refuse it by name."""
        amount = settlement.current.amounts["fund_pay_sumamt"]
        if approved_by is None and self._needs_approval(uow, settlement.current.year, amount):
            details = {"claim": claim.to_dict(), "origin": origin, "on_date": on_date}
            request = self._request(uow, "correct", settlement, amount, operator, reason, details)
            return Outcome("pending_approval", extra={"request": request})
        try:
            self._reverse(uow, settlement, operator, reason, on_date, approved_by=approved_by)
        except FinanceRejected as exc:
            return Outcome.rejected(exc.reason, str(exc))
        return None

    def _record_settlement(
        self,
        uow: UnitOfWork,
        settlement: Settlement | None,
        member_year: MemberYear,
        decided: settle.Decided,
        own: IndividualAccount | None,
        family: IndividualAccount | None,
    ) -> Settlement:
        facts, split = decided.facts, decided.split
        if settlement is None:
            settlement = uow.add(Settlement(facts=facts))
        else:
            settlement.resettle(facts)
        member_year.apply_claim(facts.setl_id, facts.version, facts.claim["setl_time"][:10], decided.computation.delta)
        ref = f"settlement:{facts.setl_id}:v{facts.version}"
        if split.acct_pay:
            assert own is not None
            own.debit(ref, "settlement", split.acct_pay)
        if split.acct_mulaid_pay:
            assert family is not None
            family.debit(ref, "family_mutual_aid", split.acct_mulaid_pay)
        return settlement

    def _accounts(
        self, uow: UnitOfWork, claim: Claim, record: MemberRecord, member: Member | None
    ) -> tuple[IndividualAccount | None, IndividualAccount | None]:
        """The member's own account (employees) and the bound employee's (家庭共济), while that
        employee is insured as an employee in this region."""
        own = None
        if record.insutype == "310":
            own = uow.get(account_id(claim.psn_no), IndividualAccount)
            if own is None:
                own = uow.add(IndividualAccount(psn_no=claim.psn_no))
        family = None
        if member is not None and member.family_employee:
            employee = uow.get(member_id(member.family_employee), Member)
            if settle.family_account_holder(employee, claim.setl_time, self.region):
                family = uow.get(account_id(member.family_employee), IndividualAccount)
        return own, family

    def _reverse(
        self,
        uow: UnitOfWork,
        settlement: Settlement,
        operator: str,
        reason: str,
        on_date: str,
        approved_by: str | None = None,
    ) -> None:
        facts = settlement.current
        if settlement.reversed:
            settlement.reverse(operator, reason, on_date)  # raises already_reversed
        hospital = self._hospital(uow, facts.claim["fixmedins_code"])
        if hospital.deductions_on(facts.setl_id):
            # Undoing the settlement would undo the audited amounts a second time.
            raise FinanceRejected(
                f"settlement {facts.setl_id} has audit deductions; it cannot be reversed or corrected",
                reason="settlement_has_deductions",
            )
        member_year = uow.get(member_year_id(facts.psn_no, facts.year), MemberYear)
        assert member_year is not None
        member_year.reverse_claim(facts.setl_id, facts.version)
        refund = facts.amounts["acct_pay"] + facts.amounts["acct_mulaid_pay"]
        if refund:
            assert facts.account_psn is not None
            account = uow.get(account_id(facts.account_psn), IndividualAccount)
            assert account is not None
            account.credit(f"reversal:{facts.setl_id}:v{facts.version}", "settlement_reversal", refund)
        # What a payment already gave the hospital for this version, it now owes back. Recorded
        # on the hospital's account even when nothing was paid: a payment summed before this
        # reversal then loses its save to it, and is summed again without the version.
        paid = hospital.paid_for(facts.postings, facts.posted_on, *self._paid_evidence(hospital, settlement))
        settlement.reverse(operator, reason, on_date, paid_funds=frozenset(paid), approved_by=approved_by)
        hospital.owe_back(facts.setl_id, facts.version, paid, on_date)

    def _paid_evidence(self, hospital: HospitalAccount, settlement: Settlement) -> tuple[int | None, dict[int, int]]:
        """What HospitalAccount.is_paid needs about a settlement's current version: the journal
        position of its event (None: not stored yet), and the own positions of the account's
        payments recorded without one. Read only when a payment covers the version's date."""
        posted_on = settlement.current.posted_on
        if all(mark.through < posted_on for marks in hospital.payments.values() for mark in marks):
            return None, {}
        version = (settlement.id, settlement.version_event)
        legacy = hospital.unpositioned(posted_on)
        found = self.region_log.select_positions([version, *((hospital.id, v) for v in legacy)])
        return found.get(version), {v: found[(hospital.id, v)] for v in legacy}

    # --- finance operations (拨付, 拒付/核减, 追回, 罚款, 总额预算) ------------------------------

    def _hospital(self, uow: UnitOfWork, code: str) -> HospitalAccount:
        hospital = uow.get(hospital_id(code), HospitalAccount)
        return hospital if hospital is not None else uow.add(HospitalAccount(fixmedins_code=code))

    def _operation(
        self,
        hospital_code: str,
        operation_id: str,
        operation: tuple[Any, ...],
        act: Callable[[HospitalAccount, UnitOfWork], None],
        dry_run: bool,
    ) -> FinanceResult:
        """One finance operation on a hospital, once: an id used before is `duplicate` if it
        did the same `operation` (HospitalAccount.operations), refused if it did another."""

        def work(uow: UnitOfWork) -> FinanceResult:
            hospital = self._hospital(uow, hospital_code)
            if hospital.has(operation_id):
                hospital.check_same(operation_id, operation)
                return FinanceResult("duplicate", [])
            act(hospital, uow)
            event = hospital.pending_events[-1]
            return FinanceResult("dry_run" if dry_run else "recorded", list(event.postings))  # type: ignore[attr-defined]

        return self._in_transaction(work, dry_run=dry_run)

    def pay_hospitals(
        self, hospitals: Sequence[str] | None, *, payment_id: str, read_owed: Callable[[], OwedAt],
        through: dt.date, paid_on: dt.date, operator: str, dry_run: bool = False,
    ) -> list[tuple[HospitalPayment, FinanceResult]]:  # fmt: skip
        """Pay the named hospitals, or (None) every hospital owed something, what each fund owes
        them up to `through` (拨付), all in one transaction. `read_owed` sums the journal and says
        at which position; each payment records it (HospitalAccount.is_paid). With several
        hospitals each payment id is `payment_id-<hospital>`; an id already used pays nothing again."""

        def work(uow: UnitOfWork) -> list[tuple[HospitalPayment, FinanceResult]]:
            at = read_owed()
            codes = list(hospitals) if hospitals is not None else sorted(at.owed)
            several = hospitals is None or len(codes) > 1
            uow.preload(hospital_id(code) for code in codes)
            accounts = [self._hospital(uow, code) for code in codes]
            self._check_summed_after(accounts, at.position)
            results = []
            for code, hospital in zip(codes, accounts, strict=True):
                named = f"{payment_id}-{code}" if several else payment_id
                payment = HospitalPayment(named, code, at.owed.get(code, {}))
                if hospital.has(payment.payment_id):
                    hospital.check_same(payment.payment_id, payment_operation(through.isoformat()))
                    results.append((payment, FinanceResult("duplicate", [])))
                    continue
                hospital.pay(
                    payment.payment_id, through.isoformat(), paid_on.isoformat(), payment.owed, operator, at.position
                )
                postings = list(hospital.pending_events[-1].postings)  # type: ignore[attr-defined]
                results.append((payment, FinanceResult("dry_run" if dry_run else "recorded", postings)))
            self._draw_from_banks(uow, [p for _, r in results for p in r.postings], paid_on, rules_of=through.year)
            return results

        return self._in_transaction(work, dry_run=dry_run)

    def _check_summed_after(self, accounts: Sequence[HospitalAccount], position: int) -> None:
        """A payment's sum must include everything its hospitals' accounts hold: a reversal or a
        deduction recorded after `position` (read before the accounts were) would be paid over.
        Then the sum is read again (StaleRead). One recorded after the accounts were read makes
        the payment's save fail on their version instead."""
        stored = [a for a in accounts if not a.pending_events]
        found = self.region_log.select_positions([(a.id, a.version) for a in stored])
        for account in stored:
            latest = found[(account.id, account.version)]
            if latest > position:
                raise StaleRead(
                    f"hospital account {account.fixmedins_code} changed at journal position {latest}, "
                    f"after the amounts owed were summed at {position}"
                )

    def _rules_in_force(self, uow: UnitOfWork, year: int) -> Policy | None:
        """The policy of `year`, or of the latest year before it that has one (a payment early
        in a year may come before that year's policy is loaded): the controls then in force."""
        years = range(year, year - policy_years_back_max, -1)
        uow.preload(policy_book_id(self.region, y) for y in years)
        return next((p for p in (self._policy(uow, y) for y in years) if p is not None), None)

    def _draw_from_banks(
        self, uow: UnitOfWork, postings: Sequence[Posting], on_date: dt.date, *, rules_of: int | None = None
    ) -> None:
        """What these postings take out of funds' bank accounts must be there on `on_date` and
        after (core.funds.check_bank_draw), except for funds the policy of year `rules_of` (a
        payment's: the year it pays for; else the date's) lets overdraw. Checked when the unit of
        work is saved, in its transaction, under the write lock."""
        moves = bank_moves(postings)
        if not moves:
            return
        policy = self._rules_in_force(uow, rules_of or on_date.year)
        allowed = policy.controls.overdraft_allowed if policy is not None else frozenset()
        draws = {fund: -moved for fund, moved in moves.items() if moved < 0 and fund not in allowed}
        uow.bank_draws.append(BankDraw(on_date.isoformat(), draws, moves))

    def deduct(
        self, deduction_id: str, *, setl_id: str, fund: str, kind: str, amount: int, on_date: dt.date,
        operator: str, reason: str, dry_run: bool = False,
    ) -> FinanceResult:  # fmt: skip
        """Refuse (拒付) or reduce (核减) what `fund` pays on a settlement, never more than it paid."""
        found = self.settlement(setl_id)
        if found is None:
            raise SettlementNotFound(f"no settlement {setl_id} in region {self.region}")
        code = found.current.claim["fixmedins_code"]

        def act(hospital: HospitalAccount, uow: UnitOfWork) -> None:
            # Read again in the transaction: a reversal or correction since is then seen (it
            # records on this hospital's account too, so a save that missed it fails).
            settlement = uow.get(settlement_id(setl_id), Settlement)
            assert settlement is not None
            if settlement.reversed:
                raise FinanceRejected(f"settlement {setl_id} is reversed", reason="settlement_reversed")
            facts = settlement.current
            if facts.claim["fixmedins_code"] != code:
                raise StaleRead(f"settlement {setl_id} was corrected to hospital {facts.claim['fixmedins_code']}")
            fund_paid = sum(p.amount for p in facts.postings if p.fund == fund and p.account == BENEFIT_EXPENSE)
            settled_at, own_positions = self._paid_evidence(hospital, settlement)
            hospital.deduct(
                deduction_id, setl_id=setl_id, fund=fund, kind=kind, amount=amount, fund_paid=fund_paid,
                settled_on=facts.posted_on, settled_at=settled_at, own_positions=own_positions,
                on_date=on_date.isoformat(), operator=operator, reason=reason,
            )  # fmt: skip

        return self._operation(code, deduction_id, deduction_operation(setl_id, fund, kind, amount), act, dry_run)

    def recover(
        self, recovery_id: str, *, hospital: str, fund: str, amount: int, on_date: dt.date, operator: str,
        dry_run: bool = False,
    ) -> FinanceResult:  # fmt: skip
        when = on_date.isoformat()
        return self._operation(
            hospital, recovery_id, recovery_operation(fund, amount),
            lambda h, _: h.recover(recovery_id, fund=fund, amount=amount, on_date=when, operator=operator),
            dry_run,
        )  # fmt: skip

    def fine(
        self, fine_id: str, *, hospital: str, fund: str, amount: int, on_date: dt.date, operator: str, reason: str,
        dry_run: bool = False,
    ) -> FinanceResult:  # fmt: skip
        when = on_date.isoformat()
        return self._operation(
            hospital, fine_id, fine_operation(fund, amount),
            lambda h, _: h.fine(fine_id, fund=fund, amount=amount, on_date=when, operator=operator, reason=reason),
            dry_run,
        )  # fmt: skip

    def set_budget(self, *, hospital: str, year: int, amount: int, operator: str) -> bool:
        def work(uow: UnitOfWork) -> bool:
            account = self._hospital(uow, hospital)
            account.set_budget(year, amount, operator)
            return bool(account.pending_events)

        return self._in_transaction(work)

    # --- fund entries (基金收支: transfers between funds, interest, opening balances) ------------

    def record_fund_entries(self, entries: Sequence[EntryFacts], *, dry_run: bool = False) -> list[FinanceResult]:
        """Record each entry once, all in one transaction: an id used before is `duplicate` if it
        recorded the same entry, refused if another. What a transfer takes out of a fund's bank
        account must be there (`_draw_from_banks`)."""

        def work(uow: UnitOfWork) -> list[FinanceResult]:
            uow.preload(fund_entry_id(e.entry_id) for e in entries)
            results = []
            for facts in entries:
                existing = uow.get(fund_entry_id(facts.entry_id), FundEntry)
                if existing is not None:
                    existing.check_same(facts)
                    results.append(FinanceResult("duplicate", []))
                    continue
                postings = entry_postings(facts)
                uow.add(FundEntry(entry=facts.to_dict(), postings=postings))
                self._draw_from_banks(uow, postings, dt.date.fromisoformat(facts.on_date))
                results.append(FinanceResult("dry_run" if dry_run else "recorded", postings))
            return results

        return self._in_transaction(work, dry_run=dry_run)

    def finance_serious_illness(
        self, year: int, *, operator: str, on_date: dt.date | None = None, dry_run: bool = False
    ) -> list[tuple[EntryFacts, FinanceResult]]:
        """The year's serious-illness financing (大病保险筹资划转): per scheme, the policy's
        per-capita amount times the members insured here that year, from the pooling fund to the
        serious-illness fund, dated `on_date` (default 1 January). Its id comes from the region,
        year and scheme: run again, it is `duplicate`; with another count of members, refused."""
        book = self.policy_book(year)
        if book is None or not book.versions:
            raise FundEntryRejected(f"no policy for region {self.region} year {year}", reason="no_policy")
        per_capita = _parse_policy_cached(book.current[1]).serious_illness_per_capita
        if not per_capita:
            raise FundEntryRejected(
                f"the {year} policy of region {self.region} has no [financing] serious_illness_per_capita",
                reason="no_serious_illness_financing",
            )
        entries = serious_illness_financing(
            self.region, year, per_capita, self.members_insured(year), on_date=on_date or dt.date(year, 1, 1),
            operator=operator,
        )  # fmt: skip
        return list(zip(entries, self.record_fund_entries(entries, dry_run=dry_run), strict=True))

    members_page_max = 5_000  # members read per query when counting the insured

    def members_insured(self, year: int) -> dict[str, int]:
        """insutype -> how many members were insured here under that scheme at some time in `year`."""
        ids = self.region_log.select_originators_of([topic_of(Member.Registered)])
        counts: dict[str, int] = {}
        for start in range(0, len(ids), self.members_page_max):
            page = ids[start : start + self.members_page_max]
            uow = self.unit_of_work(drain=False)
            uow.preload(page)
            for aggregate_id in page:
                member = uow.get(aggregate_id, Member)
                assert member is not None
                for insutype in member.schemes_during(self.region, year):
                    counts[insutype] = counts.get(insutype, 0) + 1
        return counts

    def hospital_account(self, code: str) -> HospitalAccount | None:
        try:
            return self.repository.get(hospital_id(code))
        except AggregateNotFoundError:
            return None

    # --- reading --------------------------------------------------------------------------

    def member_year(self, psn_no: str, year: int) -> MemberYear | None:
        """From its latest snapshot and the events after it (core.snapshot)."""
        return self.unit_of_work().get(member_year_id(psn_no, year), MemberYear)

    def member(self, psn_no: str) -> Member | None:
        try:
            return self.repository.get(member_id(psn_no))
        except AggregateNotFoundError:
            return None

    def settlement(self, setl_id: str) -> Settlement | None:
        try:
            return self.repository.get(settlement_id(setl_id))
        except AggregateNotFoundError:
            return None

    def account_balance(self, psn_no: str) -> int:
        try:
            account: IndividualAccount = self.repository.get(account_id(psn_no))
        except AggregateNotFoundError:
            return 0
        return account.balance

    def members_at(self, psn_nos: Sequence[str], dates: Sequence[dt.date]) -> list[MemberRecord | None]:
        """The record in force for each (psn_no, date) pair, from one bulk read (members read
        before are only brought up to date: routing asks for the same members batch after batch)."""
        uow = self.unit_of_work(reuse_saved=True, drain=False)  # settling never changes members
        uow.preload(member_id(p) for p in psn_nos)
        out = []
        for psn_no, date in zip(psn_nos, dates, strict=True):
            member = uow.get(member_id(psn_no), Member)
            out.append(member.record_at(date) if member else None)
        return out

    def member_histories(self, psn_nos: Sequence[str]) -> list[list[MemberRecord]]:
        """Each member's records in this region (sorted by valid_from; empty when unknown), from
        one bulk read."""
        uow = self.unit_of_work(reuse_saved=True, drain=False)
        uow.preload(member_id(p) for p in psn_nos)
        members = (uow.get(member_id(p), Member) for p in psn_nos)
        return [list(member.records) if member else [] for member in members]

    def family_accounts(self) -> dict[str, str]:
        """Every member whose claims the account of another (a bound employee, 家庭共济) pays
        for: psn_no -> the employee's psn_no, as of now."""
        ids = self.region_log.select_originators_of([topic_of(Member.FamilyBound), topic_of(Member.FamilyUnbound)])
        uow = self.unit_of_work(drain=False)
        uow.preload(ids)
        bound = {}
        for aggregate_id in ids:
            member = uow.get(aggregate_id, Member)
            if member is not None and member.family_employee:
                bound[member.psn_no] = member.family_employee
        return bound

    def usage(self, psn_no: str, year: int) -> YearToDate:
        member_year = self.member_year(psn_no, year)
        return member_year.ytd if member_year else YearToDate()
