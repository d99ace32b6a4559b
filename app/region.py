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
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from functools import lru_cache
from typing import Any, TypeVar
from uuid import UUID

import attrs
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError, Mapper, StoredEvent, Tracking

from app.transfer_cases import TransferCases
from app.unit_of_work import UnitOfWork
from core import snapshot
from core.account import IndividualAccount
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
    deduction_operation,
    fine_operation,
    payment_operation,
    recovery_operation,
)
from core.ids import (
    account_id,
    contribution_id,
    fund_entry_id,
    hospital_id,
    member_id,
    member_year_id,
    policy_book_id,
    settlement_id,
)
from core.ledger import BENEFIT_EXPENSE, Posting, contribution_postings, settlement_postings
from core.lookback import lookback_for, lookback_window
from core.member import Member
from core.member_year import MemberYear
from core.money import format_yuan
from core.policy import Policy, parse_policy
from core.policy_book import PolicyBook
from core.records import Claim, Contribution, MemberRecord, content_hash_of, insured_elsewhere
from core.settlement import Settlement, SettlementFacts
from core.snapshot import MemberYearSnapshot
from core.tiers import ClaimAmounts, MemberTerms, YearToDate, compute_settlement, split_personal

log = logging.getLogger(__name__)
T = TypeVar("T")
retry_count_max = 8
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

    def _select_events_of(self, ids: list[UUID], after: dict[UUID, int]) -> dict[UUID, list[StoredEvent]]:
        bulk = getattr(self.recorder, "select_events_of", None)
        if bulk is not None:
            return bulk(ids, after)
        return {i: list(self.recorder.select_events(i, gt=after.get(i))) for i in ids}

    def unit_of_work(self, *, reuse_saved: bool = False, drain: bool = True) -> UnitOfWork:
        """A unit of work on the committed state (a save still in flight is waited for first,
        unless `drain` is False: the next batch's computation on top of it, or a read of members,
        which settling never changes)."""
        if drain:
            self._drain()
        known = self._saved if reuse_saved else None
        return UnitOfWork(self._select_events_of, self.mapper.to_domain_event, known)

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
            self.recorder.insert_events(stored, tracking=tracking, snapshots=snapshots, **extra)
        elif tracking is not None:
            self.recorder.insert_tracking(tracking)  # type: ignore[attr-defined]

    def _stored_changes(self, aggregates: Sequence[Any]) -> tuple[list[StoredEvent], list[StoredEvent]]:
        """The pending events of `aggregates`, encoded (they are taken off the aggregates), and
        the snapshots those events make due. The recorder gets them directly: the library's
        `events.put` also builds a Recording per event, for in-process followers (none here)."""
        snapshots = [
            self.mapper.to_stored_event(MemberYearSnapshot.of(a))  # type: ignore[arg-type]
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
        return self.recorder.max_tracking_id(name) or 0  # type: ignore[attr-defined]

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
                continue
            except BaseException:
                self._saved.clear()  # reused aggregates may hold half-applied changes
                raise
            changed = uow.changed()
            checked = uow.bank_draws if any(draw.amounts for draw in uow.bank_draws) else ()
            if not changed or dry_run:
                if changed and checked:
                    self.recorder.check_bank_draws(checked)  # type: ignore[attr-defined]
                return result
            try:
                self.save_aggregates(changed, bank_draws=checked)
            except (IntegrityError, StaleRead):
                log.info("region %s: concurrent write, retrying batch (attempt %d)", self.region, attempt)
                self._saved.clear()
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

    def import_members(self, records: Sequence[MemberRecord]) -> list[Outcome]:
        """Record members and changes; look back for newly recognised illness_poverty members."""

        def work(uow: UnitOfWork) -> list[Outcome]:
            uow.preload(member_id(r.psn_no) for r in records)
            outcomes = []
            for record in records:
                if record.insuplc_admdvs != self.region:
                    raise AssertionError("member routed to the wrong region")
                refused = self._family_of_refused(uow, record)
                if refused is not None:
                    outcomes.append(refused)
                    continue
                member = uow.get(member_id(record.psn_no), Member)
                if member is None:
                    member = uow.add(Member(psn_no=record.psn_no))
                before = member.record_at(record.valid_from)
                if before is not None and before.insuplc_admdvs != self.region:
                    # Checked again here, in the import's transaction: a transfer out that
                    # committed after the file's check (bulk.batch.insured_regions) is seen.
                    refusal = insured_elsewhere(record.psn_no, before.insuplc_admdvs, record.valid_from)
                    outcomes.append(Outcome.rejected(refusal.reason, str(refusal)))
                    continue
                if not member.add_record(record):
                    outcomes.append(Outcome("unchanged"))
                    continue
                if member.records[-1] == record:
                    self._bind_from_member_file(member, record)
                lookback: list[dict[str, Any]] = []
                if record.assist_category == "illness_poverty" and (
                    before is None or before.assist_category != "illness_poverty"
                ):
                    lookback = self._look_back(uow, record)
                outcomes.append(Outcome("recorded", extra={"lookback": lookback} if lookback else {}))
            return outcomes

        return self._in_transaction(work, reuse_saved=True)

    def _family_of_refused(self, uow: UnitOfWork, record: MemberRecord) -> Outcome | None:
        """A record's `family_of` must name an employee (SPEC 3.1) insured here on its date, known
        before it (earlier in the file will do): as `family bind` checks."""
        employee = record.family_of
        if employee is None:
            return None
        if employee == record.psn_no:
            return Outcome.rejected("bad_family_of", "a member cannot be bound to themself")
        holder = uow.get(member_id(employee), Member)
        held = holder.record_at(record.valid_from) if holder else None
        if held is None or held.insutype != "310" or held.insuplc_admdvs != self.region:
            when = record.valid_from.isoformat()
            why = f"{employee} is not an employee insured in {self.region} on {when}"
            return Outcome.rejected("not_an_employee", why)
        return None

    @staticmethod
    def _bind_from_member_file(member: Member, record: MemberRecord) -> None:
        """A member file's latest record states the family binding (SPEC 3.1 `family_of`)."""
        when = record.valid_from.isoformat()
        why = f"member file record valid from {when}"
        if record.family_of:
            member.bind_family(record.family_of, on_date=when, operator=MEMBER_FILE_OPERATOR, reason=why)
        else:
            member.unbind_family(on_date=when, operator=MEMBER_FILE_OPERATOR, reason=why)

    def _look_back(self, uow: UnitOfWork, record: MemberRecord) -> list[dict[str, Any]]:
        start, end = lookback_window(record.valid_from)
        granted = []
        for year in sorted({start.year, end.year}):
            member_year = uow.get(member_year_id(record.psn_no, year), MemberYear)
            policy = self._policy(uow, year)
            if member_year is None or policy is None:
                continue
            in_window = sorted(
                (applied.setl_time, setl_id)
                for setl_id, applied in member_year.applied.items()
                if start.isoformat() <= applied.setl_time < end.isoformat()
            )
            uow.preload(settlement_id(setl_id) for _, setl_id in in_window)
            for _, setl_id in in_window:
                settlement = uow.get(settlement_id(setl_id), Settlement)
                assert settlement is not None and not settlement.reversed
                grant = lookback_for(settlement.current, policy, member_year.ytd)
                if grant is None:
                    continue
                member_year.look_back(setl_id, grant.delta)
                settlement.add_lookback_assistance(grant.maf_pay, record.valid_from.isoformat(), grant.breakdown)
                granted.append({"setl_id": setl_id, "year": year, "maf_pay": format_yuan(grant.maf_pay)})
        return granted

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
                    outcomes.append(Outcome.rejected("unknown_member"))
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
        return self._in_transaction(
            lambda uow: self._settle_all(uow, claims, operator=None, reason=None, origins=origins), reuse_saved=True
        )

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
            return SaveInFlight.done(self._in_transaction(work, reuse_saved=True))
        changed = uow.changed()
        if not changed:
            return SaveInFlight.done(outcomes)
        stored, snapshots = self._stored_changes(changed)
        self._keep(uow)
        if self._writer is None:
            self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"yibao-writer-{self.region}")
        future = self._writer.submit(self.recorder.insert_events, stored, snapshots=snapshots)
        self._in_flight = SaveInFlight(future, outcomes, lambda: self._settle_again(work), self._saved.clear)
        return self._in_flight

    def _settle_again(self, work: Callable[[UnitOfWork], list[Outcome]]) -> list[Outcome]:
        log.info("region %s: a batch saved behind lost to a concurrent write; settling it again", self.region)
        self._saved.clear()
        return self._in_transaction(work, reuse_saved=True)

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

    def reverse(self, setl_id: str, *, operator: str, reason: str, on_date: dt.date | None = None) -> SettlementFacts:
        def work(uow: UnitOfWork) -> SettlementFacts:
            settlement = uow.get(settlement_id(setl_id), Settlement)
            if settlement is None:
                raise SettlementNotFound(f"no settlement {setl_id} in region {self.region}")
            self._reverse(uow, settlement, operator, reason, (on_date or dt.date.today()).isoformat())
            return settlement.current

        return self._in_transaction(work)

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
    ) -> Outcome:
        correcting = operator is not None
        settlement = uow.get(settlement_id(claim.setl_id), Settlement)
        if settlement is not None and not correcting:
            if settlement.current.content_hash != claim.content_hash:
                return Outcome.rejected("exists_with_different_content")
            if settlement.reversed:
                return Outcome.rejected("settlement_reversed", "settle a reversed claim again with `claims correct`")
            if origin is not None and settlement.current.origin == origin and settlement.current.version == 1:
                return Outcome("settled", facts=settlement.current)  # this very line, settled before a crash
            return Outcome("duplicate", facts=settlement.current)
        if correcting:
            if settlement is None:
                return Outcome.rejected("unknown_settlement", "a correction needs an existing setl_id")
            if settlement.current.psn_no != claim.psn_no:
                return Outcome.rejected(
                    "correction_changes_member", "a correction cannot move a claim to another member"
                )
            made = settlement.corrected_from.get(origin) if origin is not None else None
            if made is not None and not settlement.reversed:
                return Outcome("settled", facts=made)  # this very line, corrected before

        member = uow.get(member_id(claim.psn_no), Member)
        record = member.record_at(claim.setl_time) if member else None
        if record is None:
            return Outcome.rejected("unknown_member")
        if record.insuplc_admdvs != self.region:
            return Outcome.rejected("member_transferred_out", f"insured in region {record.insuplc_admdvs} on that date")
        policy = self._policy(uow, claim.year)
        if policy is None:
            return Outcome.rejected("no_policy", f"no policy for region {self.region} year {claim.year}")

        if correcting:
            assert settlement is not None
            if not settlement.reversed:
                try:
                    self._reverse(uow, settlement, operator or "", reason or "", on_date or "")
                except FinanceRejected as exc:
                    return Outcome.rejected(exc.reason, str(exc))
        member_year = uow.get(member_year_id(claim.psn_no, claim.year), MemberYear)
        if member_year is None:
            member_year = uow.add(MemberYear(psn_no=claim.psn_no, year=claim.year))

        computation = compute_settlement(
            ClaimAmounts(
                med_type=claim.med_type,
                hosp_lv=claim.hosp_lv,
                medfee_sumamt=claim.medfee_sumamt,
                fulamt_ownpay_amt=claim.fulamt_ownpay_amt,
                overlmt_selfpay=claim.overlmt_selfpay,
                preselfpay_amt=claim.preselfpay_amt,
                inscp_scp_amt=claim.inscp_scp_amt,
            ),
            MemberTerms(
                insutype=record.insutype,
                assist_category=record.assist_category,
                chronic=record.chronic,
                supplementary_enrolled=claim.year in record.supplementary,
            ),
            policy,
            member_year.ytd,
        )
        own_account, family_account = self._accounts(uow, claim, record, member)
        split = split_personal(
            computation.psn_part_amt,
            own_account_balance=own_account.balance if own_account else None,
            family_account_balance=family_account.balance if family_account else None,
            use_acct=claim.use_acct,
        )
        version = settlement.current.version + 1 if settlement is not None else 1
        claim_dict = claim.to_dict()
        content_hash = content_hash_of(claim_dict)
        delta = computation.delta.to_dict()
        paying_account = own_account if split.acct_pay else family_account if split.acct_mulaid_pay else None
        amounts = {
            "medfee_sumamt": claim.medfee_sumamt, "inscp_scp_amt": claim.inscp_scp_amt,
            "act_pay_dedc": computation.act_pay_dedc, "hifp_pay": computation.hifp_pay,
            "hifmi_pay": computation.hifmi_pay, "maf_pay": computation.maf_pay,
            "hmb_pay": computation.hmb_pay, "charity_pay": computation.charity_pay,
            "fund_pay_sumamt": computation.fund_pay_sumamt, "psn_part_amt": computation.psn_part_amt,
            "acct_pay": split.acct_pay, "acct_mulaid_pay": split.acct_mulaid_pay,
            "psn_cash_pay": split.psn_cash_pay,
        }  # fmt: skip
        account_psn = paying_account.psn_no if paying_account else None
        facts = SettlementFacts(
            setl_id=claim.setl_id,
            version=version,
            psn_no=claim.psn_no,
            region=self.region,
            year=claim.year,
            insutype=record.insutype,
            assist_category=record.assist_category,
            claim=claim_dict,
            content_hash=content_hash,
            policy_hash=policy.content_hash,
            amounts=amounts,
            postings=settlement_postings(
                insutype=record.insutype, hospital=claim.fixmedins_code, amounts=amounts, account_psn=account_psn
            ),
            posted_on=on_date or claim.setl_time.isoformat(),
            charity_referral=computation.charity_referral,
            breakdown=computation.breakdown,
            delta=delta,
            left_to_person=dict(computation.left_to_person),
            account_psn=account_psn,
            operator=operator,
            reason=reason,
            origin=origin,
        )
        if settlement is None:
            settlement = uow.add(Settlement(facts=facts))
        else:
            settlement.resettle(facts)
        member_year.apply_claim(claim.setl_id, version, claim.setl_time.isoformat(), computation.delta)
        ref = f"settlement:{claim.setl_id}:v{version}"
        if split.acct_pay:
            assert own_account is not None
            own_account.debit(ref, "settlement", split.acct_pay)
        if split.acct_mulaid_pay:
            assert family_account is not None
            family_account.debit(ref, "family_mutual_aid", split.acct_mulaid_pay)
        return Outcome("settled", facts=facts)

    def _accounts(
        self, uow: UnitOfWork, claim: Claim, record: MemberRecord, member: Member
    ) -> tuple[IndividualAccount | None, IndividualAccount | None]:
        """The member's own account (employees) and the bound employee's (家庭共济), while that
        employee is insured as an employee in this region."""
        own = None
        if record.insutype == "310":
            own = uow.get(account_id(claim.psn_no), IndividualAccount)
            if own is None:
                own = uow.add(IndividualAccount(psn_no=claim.psn_no))
        family = None
        if member.family_employee:
            employee = uow.get(member_id(member.family_employee), Member)
            employee_record = employee.record_at(claim.setl_time) if employee else None
            if (
                employee_record is not None
                and employee_record.insutype == "310"
                and employee_record.insuplc_admdvs == self.region
            ):
                family = uow.get(account_id(member.family_employee), IndividualAccount)
        return own, family

    def _reverse(self, uow: UnitOfWork, settlement: Settlement, operator: str, reason: str, on_date: str) -> None:
        facts = settlement.current
        if settlement.reversed:
            settlement.reverse(operator, reason, on_date)  # raises already_reversed
        hospital = uow.get(hospital_id(facts.claim["fixmedins_code"]), HospitalAccount)
        if hospital is not None and hospital.deductions_on(facts.setl_id):
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
        # What a payment already gave the hospital for this version, it now owes back.
        paid = hospital.paid_for(facts.postings, facts.posted_on, settlement.version_recorded_at) if hospital else {}
        settlement.reverse(operator, reason, on_date, paid_funds=frozenset(paid))
        if paid:
            assert hospital is not None
            hospital.owe_back(facts.setl_id, facts.version, paid, on_date)

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
        self, payments: Sequence[HospitalPayment], *, through: dt.date, paid_on: dt.date, operator: str,
        dry_run: bool = False,
    ) -> list[FinanceResult]:  # fmt: skip
        """Pay hospitals what each fund owes them up to `through` (拨付), all in one transaction.
        `owed` comes from the journal; a payment id already used pays nothing again."""

        def work(uow: UnitOfWork) -> list[FinanceResult]:
            uow.preload(hospital_id(p.hospital) for p in payments)
            results = []
            for p in payments:
                hospital = self._hospital(uow, p.hospital)
                if hospital.has(p.payment_id):
                    hospital.check_same(p.payment_id, payment_operation(through.isoformat()))
                    results.append(FinanceResult("duplicate", []))
                    continue
                hospital.pay(p.payment_id, through.isoformat(), paid_on.isoformat(), p.owed, operator)
                postings = list(hospital.pending_events[-1].postings)  # type: ignore[attr-defined]
                results.append(FinanceResult("dry_run" if dry_run else "recorded", postings))
            self._draw_from_banks(uow, [p for r in results for p in r.postings], paid_on)
            return results

        return self._in_transaction(work, dry_run=dry_run)

    def _draw_from_banks(self, uow: UnitOfWork, postings: Sequence[Posting], on_date: dt.date) -> None:
        """What these postings take out of funds' bank accounts must be there on `on_date` and
        after (core.funds.check_bank_draw), except for funds the year's policy lets overdraw.
        Checked when the unit of work is saved, in its transaction, under the write lock."""
        moves = bank_moves(postings)
        if not moves:
            return
        policy = self._policy(uow, on_date.year)
        allowed = policy.overdraft_allowed if policy is not None else frozenset()
        draws = {fund: -moved for fund, moved in moves.items() if moved < 0 and fund not in allowed}
        uow.bank_draws.append(BankDraw(on_date.isoformat(), draws, moves))

    def deduct(
        self, deduction_id: str, *, setl_id: str, fund: str, kind: str, amount: int, on_date: dt.date,
        operator: str, reason: str, dry_run: bool = False,
    ) -> FinanceResult:  # fmt: skip
        """Refuse (拒付) or reduce (核减) what `fund` pays on a settlement, never more than it paid."""
        settlement = self.settlement(setl_id)
        if settlement is None:
            raise SettlementNotFound(f"no settlement {setl_id} in region {self.region}")
        if settlement.reversed:
            raise FinanceRejected(f"settlement {setl_id} is reversed", reason="settlement_reversed")
        facts = settlement.current
        fund_paid = sum(p.amount for p in facts.postings if p.fund == fund and p.account == BENEFIT_EXPENSE)

        def act(hospital: HospitalAccount, _: UnitOfWork) -> None:
            hospital.deduct(
                deduction_id, setl_id=setl_id, fund=fund, kind=kind, amount=amount, fund_paid=fund_paid,
                settled_on=facts.posted_on, settlement_recorded_at=settlement.version_recorded_at,
                on_date=on_date.isoformat(), operator=operator, reason=reason,
            )  # fmt: skip

        operation = deduction_operation(setl_id, fund, kind, amount)
        return self._operation(facts.claim["fixmedins_code"], deduction_id, operation, act, dry_run)

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
        ids = self.recorder.select_originators_of([topic_of(Member.Registered)])  # type: ignore[attr-defined]
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
        ids = self.recorder.select_originators_of(  # type: ignore[attr-defined]
            [topic_of(Member.FamilyBound), topic_of(Member.FamilyUnbound)]
        )
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
