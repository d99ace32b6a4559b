"""The read model of one region: general journal, current settlements, member-year usage.

`RegionReadModel` is an eventsourcing `Projection`: it turns each domain event into view rows.
`ReadModelView` is its PostgreSQL materialised view, a `PostgresTrackingRecorder` that writes a
page of rows and the tracking position of the page's last event in one transaction, so a
projection killed at any moment resumes exactly where its last commit left it.
`catch_up` follows the region's notification log page by page, decoding each stored event lean
(`projections.event_rows`: only the fields the handlers read) rather than through the library's
mapper; the handlers take either kind of event.

`rebuild` is a full run: from the first event, with member usage summed in memory across pages
(written with the last page: one row per member-year instead of an upsert per member-year and
page) and three secondary indexes dropped (the two by person, and the journal's by reference;
built once after the last page: a sort costs less than their inserts, row by row; migrations
0007 and 0009 say why those three).
A full run holds a session advisory lock and a row in `read_model_full_runs` (migration 0007)
from its first page to its last; a catch-up that finds that row waits for the lock, and if the
run died (the row outlived its lock) carries it on from its position: member usage is emptied and
summed again in memory from the member-year events up to there, then the pages go on as in the
run. Every catch-up ends by building any dropped index that is missing, so whatever is killed
where, the next catch-up ends with every index and the rows of an uninterrupted run. A page is
written only if the tracked position is still the one it follows (another runner's rows are
never doubled), and, outside a full run, under a shared advisory lock that a full run's
exclusive one keeps out.
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache, singledispatchmethod
from typing import Any, ClassVar

import msgspec
from eventsourcing.persistence import IntegrityError, Tracking
from eventsourcing.postgres import PostgresTrackingRecorder
from eventsourcing.projection import Projection
from msgspec.structs import astuple
from psycopg import sql

from app import failpoints
from app.region import RegionApplication
from core.codec import class_of, topic_of
from core.contribution import ContributionReceived
from core.errors import YibaoError, first_line
from core.funds import FundEntry
from core.hospital import HospitalAccount
from core.ledger import Posting, check_balanced
from core.maternity import MaternityAllowance
from core.member_payment import MemberPayables
from core.member_year import MemberYear
from core.region_clearing import RegionClearings
from core.settlement import ROW_AMOUNT_FIELDS, Settlement, SettlementFacts, clr_type
from core.tiers import YearToDate
from core.transfer import COMPLETED, PENDING_REVIEW, REJECTED, RELEASED, Transfer, TransferFacts, TransferIn
from projections import event_rows
from projections.event_rows import CHECKED_DECODERS, DECODERS
from store.recorder import advisory_key, datastore_of

USAGE_COLUMNS = tuple(
    name for name in YearToDate().to_dict() if name not in ("basic_deductible_used", "maternity_paid")
)
SETTLEMENT_COLUMNS = (
    "setl_id", "version", "status", "psn_no", "year", "setl_time", "hospital", "insutype", "assist_category",
    *ROW_AMOUNT_FIELDS, "lookback_maf",
)  # fmt: skip
_row_amounts = operator.itemgetter(*ROW_AMOUNT_FIELDS)
TRANSFER_COLUMNS = (
    "transfer_id", "direction", "psn_no", "from_region", "to_region", "transfer_date", "balance",
    "contribution_years", "status", "requested_on", "position",
)  # fmt: skip
LINE_COLUMNS = (
    "notification_id", "setl_id", "version", "refd_setl_flag", "mdtrt_id", "psn_no", "hospital", "insutype",
    "clr_type", "line_date", "medfee_sumamt", "fund_pay_sumamt", "acct_pay",
)  # fmt: skip
VIEW_TABLES = ("journal", "settlements", "member_usage", "transfers", "settlement_lines")
page_events_max = 20_000
usage_held_max = 500_000  # member-years a full run keeps in memory before it merges them into the table


class InvalidEvent(YibaoError):
    """An event the read model cannot build rows from: it does not decode, or an amount is not fen.
    (Not a dataclass: a dataclass without fields would take no message.)"""

    reason = "invalid_event"


@dataclass
class Page:
    """Rows of the events processed since the last commit."""

    journal: list[tuple[Any, ...]] = field(default_factory=list)
    settlements: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    settled: set[str] = field(default_factory=set)  # settlements first settled in this page: rows not yet written
    usage: dict[tuple[str, int], list[int]] = field(default_factory=dict)  # USAGE_COLUMNS, summed
    reversed: set[str] = field(default_factory=set)  # settlements reversed whose row is not in this page
    lookback: dict[str, int] = field(default_factory=dict)  # look-back assistance on rows not in this page
    transfers: dict[tuple[str, str, str], tuple[Any, ...]] = field(default_factory=dict)  # see _transfer_row
    transfer_status: dict[str, tuple[str, int]] = field(default_factory=dict)  # out rows not in this page
    lines: dict[tuple[str, int, str], tuple[Any, ...]] = field(default_factory=dict)  # settlement_lines rows
    line_reversals: list[tuple[int, str, str, int]] = field(default_factory=list)  # of versions not in this page
    start: int = 0  # the position the page follows: its write fails unless the tracked position is still this
    full_run: bool = False  # a page of a full run (which holds the run's lock: no shared lock here)
    usage_is_new: bool = False  # no row of `usage` is in the table yet: copied straight in, not merged
    ends_full_run: bool = False  # the last page of a full run: its usage is complete, the run's row goes


class ReadModelInconsistent(YibaoError):
    reason = "read_model_inconsistent"


class Overtaken(IntegrityError):
    """The tracked position is no longer where the page starts: another runner wrote these events."""


def full_run_key(schema: str) -> int:
    """The session advisory lock a full run of a region's read model holds."""
    return advisory_key(f"{schema}.read_model")


class ReadModelView(PostgresTrackingRecorder):
    """The view tables of a region plus its tracking row, written together."""

    def __init__(self, datastore: Any) -> None:
        super().__init__(datastore, tracking_table_name="notification_tracking")
        schema = datastore.schema
        self._copy_journal = sql.SQL(
            "COPY {} (notification_id, leg, posted_on, kind, ref, fund, account, party, amount) FROM STDIN"
        ).format(sql.Identifier(schema, "journal"))
        self._prepare_settlements(schema)
        self._prepare_usage(schema)
        self._prepare_transfers(schema)
        self._prepare_lines(schema)
        self._tracked = sql.SQL("SELECT notification_id FROM {} WHERE application_name = %s FOR UPDATE").format(
            sql.Identifier(schema, "notification_tracking")
        )
        self._full_runs = sql.Identifier(schema, "read_model_full_runs")
        self._schema = schema
        self._key = full_run_key(schema)

    def _prepare_settlements(self, schema: str) -> None:
        # Pages are copied into temporary tables and merged with one statement each: far
        # faster than a statement per row.
        settlements = sql.Identifier(schema, "settlements")
        usage = sql.Identifier(schema, "member_usage")
        self._temp_tables = sql.SQL(
            "CREATE TEMP TABLE IF NOT EXISTS settlements_page (LIKE {} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS;"
            "CREATE TEMP TABLE IF NOT EXISTS usage_page (LIKE {} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        ).format(settlements, usage)
        settlement_columns = sql.SQL(", ").join(map(sql.Identifier, SETTLEMENT_COLUMNS))
        self._copy_settlements = sql.SQL("COPY settlements_page ({}) FROM STDIN").format(settlement_columns)
        self._copy_new_settlements = sql.SQL("COPY {} ({}) FROM STDIN").format(settlements, settlement_columns)
        self._merge_settlements = sql.SQL(
            "INSERT INTO {} SELECT * FROM settlements_page ON CONFLICT (setl_id) DO UPDATE SET ({}) = ({})"
        ).format(
            settlements,
            sql.SQL(", ").join(map(sql.Identifier, SETTLEMENT_COLUMNS[1:])),
            sql.SQL(", ").join(sql.SQL("EXCLUDED.{}").format(sql.Identifier(c)) for c in SETTLEMENT_COLUMNS[1:]),
        )
        self._mark_reversed = sql.SQL("UPDATE {} SET status = 'reversed' WHERE setl_id = ANY(%s)").format(
            sql.Identifier(schema, "settlements")
        )
        self._add_lookback = sql.SQL("UPDATE {} SET lookback_maf = lookback_maf + %s WHERE setl_id = %s").format(
            sql.Identifier(schema, "settlements")
        )

    def _prepare_usage(self, schema: str) -> None:
        usage = sql.Identifier(schema, "member_usage")
        self._copy_usage = sql.SQL("COPY usage_page (psn_no, year, {}) FROM STDIN").format(
            sql.SQL(", ").join(map(sql.Identifier, USAGE_COLUMNS))
        )
        self._merge_usage = sql.SQL(
            "INSERT INTO {table} SELECT * FROM usage_page ON CONFLICT (psn_no, year) DO UPDATE SET {sets}"
        ).format(
            table=usage,
            sets=sql.SQL(", ").join(
                sql.SQL("{c} = {t}.{c} + EXCLUDED.{c}").format(c=sql.Identifier(c), t=sql.Identifier("member_usage"))
                for c in USAGE_COLUMNS
            ),
        )
        self._copy_new_usage = sql.SQL("COPY {} (psn_no, year, {}) FROM STDIN").format(
            usage, sql.SQL(", ").join(map(sql.Identifier, USAGE_COLUMNS))
        )

    def _prepare_transfers(self, schema: str) -> None:
        transfers = sql.Identifier(schema, "transfers")
        self._upsert_transfer = sql.SQL(
            "INSERT INTO {} ({}) VALUES ({}) ON CONFLICT (transfer_id, direction, from_region) DO UPDATE "
            "SET status = EXCLUDED.status, position = EXCLUDED.position"
        ).format(
            transfers,
            sql.SQL(", ").join(map(sql.Identifier, TRANSFER_COLUMNS)),
            sql.SQL(", ").join(sql.Placeholder() * len(TRANSFER_COLUMNS)),
        )
        self._update_transfer = sql.SQL(
            "UPDATE {} SET status = %s, position = %s WHERE transfer_id = %s AND direction = 'out'"
        ).format(transfers)

    def _prepare_lines(self, schema: str) -> None:
        lines = sql.Identifier(schema, "settlement_lines")
        self._copy_lines = sql.SQL("COPY {} ({}) FROM STDIN").format(
            lines, sql.SQL(", ").join(map(sql.Identifier, LINE_COLUMNS))
        )
        # A reversal line is its version's line negated, dated at the reversal.
        self._reverse_line = sql.SQL(
            "INSERT INTO {t} SELECT %s, setl_id, version, '1', mdtrt_id, psn_no, hospital, insutype, clr_type, %s,"
            " -medfee_sumamt, -fund_pay_sumamt, -acct_pay FROM {t}"
            " WHERE setl_id = %s AND version = %s AND refd_setl_flag = '0'"
        ).format(t=lines)

    def write(self, page: Page, tracking: Tracking) -> None:
        with self.datastore.transaction(commit=True) as curs:
            if not page.full_run:  # waits while a full run holds its lock (it is about to reset the rows)
                curs.execute("SELECT pg_advisory_xact_lock_shared(%s)", (self._key,))
            # The tracking row is locked until commit: of two runners writing pages after the same
            # position, the second finds it moved and writes nothing (its rows would be doubled).
            tracked = curs.execute(self._tracked, (tracking.application_name,)).fetchone()
            if (tracked["notification_id"] if tracked else 0) != page.start:
                raise Overtaken(f"{tracking.application_name}: the read model is no longer at {page.start}")
            if page.journal:
                with curs.copy(self._copy_journal) as copy:
                    for row in page.journal:
                        copy.write_row(row)
            if page.lines:
                with curs.copy(self._copy_lines) as copy:
                    for row in page.lines.values():
                        copy.write_row(row)
            if page.line_reversals:
                curs.executemany(self._reverse_line, page.line_reversals)
            if page.reversed:
                curs.execute(self._mark_reversed, (list(page.reversed),))
            if page.lookback:
                curs.executemany(self._add_lookback, [(amount, setl_id) for setl_id, amount in page.lookback.items()])
            # A settlement first settled in this page has no row yet: its row is copied straight
            # in. Only rows of settlements from earlier pages (corrected here) need the merge.
            new = [row for setl_id, row in page.settlements.items() if setl_id in page.settled]
            if new:
                with curs.copy(self._copy_new_settlements) as copy:
                    for row in new:
                        copy.write_row(row)
            merged = [row for setl_id, row in page.settlements.items() if setl_id not in page.settled]
            if merged or (page.usage and not page.usage_is_new):
                curs.execute(self._temp_tables)
            if merged:
                with curs.copy(self._copy_settlements) as copy:
                    for row in merged:
                        copy.write_row(row)
                curs.execute(self._merge_settlements)
            if page.usage and page.usage_is_new:
                with curs.copy(self._copy_new_usage) as copy:
                    for (psn_no, year), sums in page.usage.items():
                        copy.write_row((psn_no, year, *sums))
            elif page.usage:
                with curs.copy(self._copy_usage) as copy:
                    for (psn_no, year), sums in page.usage.items():
                        copy.write_row((psn_no, year, *sums))
                curs.execute(self._merge_usage)
            if page.transfers:
                curs.executemany(self._upsert_transfer, list(page.transfers.values()))
            if page.transfer_status:
                curs.executemany(
                    self._update_transfer, [(st, pos, tid) for tid, (st, pos) in page.transfer_status.items()]
                )
            if page.ends_full_run:
                curs.execute(sql.SQL("DELETE FROM {} WHERE application_name = %s").format(self._full_runs),
                             (tracking.application_name,))  # fmt: skip
            self._insert_tracking(curs, tracking)

    def reset(self) -> None:
        """Empty the view and forget the position (rebuild starts from the first event)."""
        with self.datastore.transaction(commit=True) as curs:
            self._reset(curs)

    def _reset(self, curs: Any) -> None:
        for table in VIEW_TABLES:
            curs.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier(self._schema, table)))
        curs.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(self._schema, "notification_tracking")))

    @contextmanager
    def full_run_lock(self) -> Iterator[None]:
        """Hold the region's full-run lock (waiting for a full run of another process to end).
        A process that dies lets go of it with its connection."""
        with self.datastore.get_connection() as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", (self._key,))
            if not conn.autocommit:
                conn.commit()  # not idle in a transaction for the whole run
            try:
                yield
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (self._key,))
                if not conn.autocommit:
                    conn.commit()

    def full_run_pending(self, application_name: str) -> bool:
        """A full run started and has not written its last page (it runs, or it died)."""
        with self.datastore.transaction(commit=False) as curs:
            query = sql.SQL("SELECT 1 FROM {} WHERE application_name = %s").format(self._full_runs)
            return curs.execute(query, (application_name,)).fetchone() is not None

    def begin_full_run(self, application_name: str) -> None:
        """Empty the view, forget the position, drop the indexes `read_model_dropped_indexes()` lists
        (0007 and 0009; rows of a table since 0010), record the run: one transaction (taken with
        the full-run lock held)."""
        with self.datastore.transaction(commit=True) as curs:
            self._reset(curs)
            curs.execute(sql.SQL("SELECT {}.drop_read_model_indexes()").format(sql.Identifier(self._schema)))
            insert = sql.SQL("INSERT INTO {} (application_name) VALUES (%s) ON CONFLICT DO NOTHING")
            curs.execute(insert.format(self._full_runs), (application_name,))

    def forget_usage(self) -> None:
        """Empty member usage (a full run carried on sums it again from the first event)."""
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier(self._schema, "member_usage")))

    def ensure_indexes(self) -> int:
        """Build the secondary indexes that are missing (none, unless a full run dropped them);
        left to the full run while one is recorded. Returns how many were built."""
        with self.datastore.transaction(commit=True) as curs:
            query = sql.SQL(
                "SELECT CASE WHEN EXISTS (SELECT FROM {}) THEN 0 ELSE {}.ensure_read_model_indexes() END AS built"
            ).format(self._full_runs, sql.Identifier(self._schema))
            row = curs.execute(query).fetchone()
            assert row is not None
            return row["built"]


class RegionReadModel(Projection[ReadModelView]):
    """Rows from events. A handler reads only attributes that the lean structs of
    `projections.event_rows` share with the domain events, so it takes either."""

    name = "read_model"

    def __init__(self, view: ReadModelView) -> None:
        super().__init__(view)
        self.page = Page()

    def _journal(self, tracking: Tracking, posted_on: str, kind: str, ref: str, postings: list[Posting]) -> None:
        check_balanced(postings)  # checked when built, and again before it is written
        for leg, p in enumerate(postings):
            self.page.journal.append(
                (tracking.notification_id, leg, posted_on, kind, ref, p.fund, p.account, p.party, p.amount)
            )

    def _settlement_row(self, facts: SettlementFacts, status: str) -> None:
        # The domain event's claim and amounts are dicts; the lean event's are structs of just
        # the fields of the row, amounts in its column order (projections.event_rows).
        a: Any = facts.amounts
        claim: Any = facts.claim
        if type(a) is dict:
            amounts: tuple[int, ...] = _row_amounts(a)
        else:
            amounts = astuple(a)
        if type(claim) is dict:
            setl_time, hospital = claim["setl_time"][:10], claim["fixmedins_code"]
        else:
            setl_time, hospital = claim.setl_time[:10], claim.fixmedins_code
        self.page.settlements[facts.setl_id] = (
            facts.setl_id, facts.version, status, facts.psn_no, facts.year, setl_time, hospital, facts.insutype,
            facts.assist_category, *amounts, facts.lookback_maf,
        )  # fmt: skip

    def _settlement_line(self, facts: SettlementFacts, tracking: Tracking) -> None:
        a: Any = facts.amounts
        claim: Any = facts.claim
        if type(claim) is dict:
            claim = event_rows.Claim(
                setl_time=claim["setl_time"],
                fixmedins_code=claim["fixmedins_code"],
                med_type=claim["med_type"],
                mdtrt_id=claim.get("mdtrt_id"),
                payee=claim.get("payee"),
            )
        if claim.payee is not None:
            return  # 零星报销: settled with the member; no line of the hospital's to reconcile
        if type(a) is dict:
            a = event_rows.Amounts(**{name: a[name] for name in ROW_AMOUNT_FIELDS})
        self.page.lines[(facts.setl_id, facts.version, "0")] = (
            tracking.notification_id, facts.setl_id, facts.version, "0", claim.mdtrt_id, facts.psn_no,
            claim.fixmedins_code, facts.insutype, clr_type(claim.med_type), claim.setl_time[:10], a.medfee_sumamt,
            # fund_pay_sumamt: what the funds paid (the maternity fund too), not HMB or charity
            a.medfee_sumamt - a.psn_part_amt - a.hmb_pay - a.charity_pay, a.acct_pay + a.acct_mulaid_pay,
        )  # fmt: skip

    def _reversal_line(self, setl_id: str, version: int, on_date: str, tracking: Tracking) -> None:
        row = self.page.lines.get((setl_id, version, "0"))
        if row is None:
            self.page.line_reversals.append((tracking.notification_id, on_date, setl_id, version))
            return
        self.page.lines[(setl_id, version, "1")] = (
            tracking.notification_id, *row[1:3], "1", *row[4:9], on_date, -row[10], -row[11], -row[12],
        )  # fmt: skip

    def _usage(self, psn_no: str, year: int, delta: Any, sign: int = 1) -> None:
        # Plain sums of ints: this runs for most events of the log, and YearToDate objects per
        # event cost more than everything else the projection does with them. A lean delta
        # (event_rows.Usage) was checked to be fen when decoded; a dict is checked here.
        if type(delta) is dict:
            checked = []
            for name in USAGE_COLUMNS:
                value = delta.get(name, 0)
                if type(value) is not int:
                    raise InvalidEvent(f"member-year {psn_no}/{year}: {name} is not an amount in fen: {value!r}")
                checked.append(value)
            values: list[int] | tuple[int, ...] = checked
        else:
            values = astuple(delta)
        sums = self.page.usage.get((psn_no, year))
        if sums is None:
            self.page.usage[(psn_no, year)] = [v * sign for v in values] if sign != 1 else list(values)
        else:
            for i, value in enumerate(values):
                sums[i] += sign * value

    _handlers: ClassVar[dict[type, Callable[..., None]]] = {}

    def handle(self, event: Any, tracking: Tracking) -> None:
        """`process_event` without singledispatchmethod's new wrapper on every call (measured:
        a tenth of a rebuild): the handler is looked up once per event class."""
        cls = type(event)
        handler = self._handlers.get(cls)
        if handler is None:
            handler = self._handlers[cls] = RegionReadModel.__dict__["process_event"].dispatcher.dispatch(cls)
        handler(self, event, tracking)

    @singledispatchmethod
    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        """Events that build no rows (members, accounts, policies) only move the position."""

    @process_event.register
    def _(self, event: Settlement.Settled, tracking: Tracking) -> None:
        self._journal(tracking, event.facts.posted_on, "settlement", event.facts.setl_id, event.facts.postings)
        self._settlement_row(event.facts, "settled")
        self._settlement_line(event.facts, tracking)
        self.page.settled.add(event.facts.setl_id)

    @process_event.register
    def _(self, event: Settlement.Resettled, tracking: Tracking) -> None:
        self._journal(tracking, event.facts.posted_on, "correction", event.facts.setl_id, event.facts.postings)
        self._settlement_row(event.facts, "settled")
        self._settlement_line(event.facts, tracking)
        self.page.reversed.discard(event.facts.setl_id)

    @process_event.register
    def _(self, event: Settlement.Reversed, tracking: Tracking) -> None:
        self._journal(tracking, event.on_date, "reversal", event.setl_id, event.postings)
        self._reversal_line(event.setl_id, event.setl_version, event.on_date, tracking)
        row = self.page.settlements.get(event.setl_id)
        if row is not None:
            self.page.settlements[event.setl_id] = (row[0], row[1], "reversed", *row[3:])
        else:
            self.page.reversed.add(event.setl_id)

    @process_event.register
    def _(self, event: Settlement.AssistanceLookedBack, tracking: Tracking) -> None:
        self._journal(tracking, event.recognised_on, "lookback", event.setl_id, event.postings)
        row = self.page.settlements.get(event.setl_id)
        if row is not None:
            self.page.settlements[event.setl_id] = (*row[:-1], row[-1] + event.amount)
        else:
            self.page.lookback[event.setl_id] = self.page.lookback.get(event.setl_id, 0) + event.amount

    @process_event.register
    def _(self, event: ContributionReceived.Received, tracking: Tracking) -> None:
        c = event.contribution
        self._journal(tracking, c["paid_date"], "contribution", c["contrib_id"], event.postings)

    @process_event.register
    def _(self, event: FundEntry.Recorded, tracking: Tracking) -> None:
        e = event.entry
        self._journal(tracking, e["on_date"], e["kind"], e["entry_id"], event.postings)

    @process_event.register
    def _(self, event: HospitalAccount.Paid, tracking: Tracking) -> None:
        self._journal(tracking, event.paid_on, "hospital_payment", event.payment_id, event.postings)

    @process_event.register
    def _(self, event: MaternityAllowance.Granted, tracking: Tracking) -> None:
        f = event.facts
        self._journal(tracking, f["on_date"], "maternity_allowance", f["allowance_id"], event.postings)

    @process_event.register
    def _(self, event: HospitalAccount.BudgetSettled, tracking: Tracking) -> None:
        self._journal(tracking, event.on_date, "budget_settlement", f"budget-{event.year}", event.postings)

    @process_event.register
    def _(self, event: MaternityAllowance.Reversed, tracking: Tracking) -> None:
        self._journal(tracking, event.on_date, "maternity_allowance_reversal", event.allowance_id, event.postings)

    @process_event.register
    def _(self, event: MemberPayables.Paid, tracking: Tracking) -> None:
        self._journal(tracking, event.paid_on, "member_payment", event.payment_id, event.postings)

    @process_event.register
    def _(self, event: HospitalAccount.Deducted, tracking: Tracking) -> None:
        self._journal(tracking, event.on_date, f"deduction_{event.kind}", event.setl_id, event.postings)

    @process_event.register
    def _(self, event: HospitalAccount.Recovered, tracking: Tracking) -> None:
        self._journal(tracking, event.on_date, "recovery", event.recovery_id, event.postings)

    @process_event.register
    def _(self, event: HospitalAccount.Fined, tracking: Tracking) -> None:
        self._journal(tracking, event.on_date, "fine", event.fine_id, event.postings)

    @process_event.register
    def _(self, event: HospitalAccount.RemoteSettled, tracking: Tracking) -> None:
        ref = f"{event.insured_in}:{event.setl_id}"
        self._journal(tracking, event.posted_on, "remote_settlement", ref, event.postings)

    @process_event.register
    def _(self, event: HospitalAccount.RemoteReversed, tracking: Tracking) -> None:
        self._journal(tracking, event.on_date, "remote_reversal", f"{event.insured_in}:{event.setl_id}", event.postings)

    @process_event.register
    def _(self, event: RegionClearings.Cleared, tracking: Tracking) -> None:
        self._journal(tracking, event.on_date, "region_clearing", event.clearing, event.postings)

    def _transfer_row(self, facts: TransferFacts, direction: str, status: str, tracking: Tracking) -> None:
        # Arrivals are keyed with their releasing region too: two regions may use one transfer id.
        key = (facts.transfer_id, direction, facts.from_region if direction == "in" else "")
        self.page.transfers[key] = (
            facts.transfer_id, direction, facts.psn_no, facts.from_region, facts.to_region,
            dt.date.fromisoformat(facts.transfer_date), facts.balance, len(facts.contribution_years), status,
            dt.date.fromisoformat(facts.requested_on), tracking.notification_id,
        )  # fmt: skip

    def _transfer_status(self, transfer_id: str, status: str, tracking: Tracking) -> None:
        row = self.page.transfers.get((transfer_id, "out", ""))
        if row is not None:
            self.page.transfers[(transfer_id, "out", "")] = (*row[:8], status, row[9], tracking.notification_id)
        else:
            self.page.transfer_status[transfer_id] = (status, tracking.notification_id)

    @process_event.register
    def _(self, event: Transfer.Started, tracking: Tracking) -> None:
        # Posted when the account was debited (the request), not on the transfer date, which may
        # lie ahead or behind: the arrival and completion follow it, never precede it.
        self._journal(tracking, event.facts.requested_on, "transfer_out", event.facts.transfer_id, event.postings)
        self._transfer_row(event.facts, "out", PENDING_REVIEW, tracking)

    @process_event.register
    def _(self, event: Transfer.Released, tracking: Tracking) -> None:
        self._transfer_status(event.transfer_id, RELEASED, tracking)

    @process_event.register
    def _(self, event: Transfer.Rejected, tracking: Tracking) -> None:
        self._journal(tracking, event.on_date, "transfer_rejected", event.transfer_id, event.postings)
        self._transfer_status(event.transfer_id, REJECTED, tracking)

    @process_event.register
    def _(self, event: Transfer.Completed, tracking: Tracking) -> None:
        self._journal(tracking, event.on_date, "transfer_completed", event.transfer_id, event.postings)
        self._transfer_status(event.transfer_id, COMPLETED, tracking)

    @process_event.register
    def _(self, event: TransferIn.Received, tracking: Tracking) -> None:
        self._journal(tracking, event.on_date, "transfer_in", event.facts.transfer_id, event.postings)
        self._transfer_row(event.facts, "in", "received", tracking)

    @process_event.register
    def _(self, event: MemberYear.ClaimApplied, tracking: Tracking) -> None:
        self._usage(event.psn_no, event.year, event.delta)

    @process_event.register
    def _(self, event: MemberYear.AssistanceLookedBack, tracking: Tracking) -> None:
        self._usage(event.psn_no, event.year, event.delta)

    @process_event.register
    def _(self, event: MemberYear.ClaimReversed, tracking: Tracking) -> None:
        self._usage(event.psn_no, event.year, event.delta, -1)


@dataclass(frozen=True)
class Progress:
    position: int  # last notification id processed
    head: int  # last notification id in the log

    @property
    def behind(self) -> int:
        return self.head - self.position


@contextmanager
def reading(app: RegionApplication) -> Iterator[tuple[Any, str]]:
    """A read-only cursor on the region's read model and the schema it lives in; callers pass
    both to the query functions of projections/ (commands never touch the datastore)."""
    datastore = datastore_of(app)
    with datastore.transaction(commit=False) as curs:
        yield curs, datastore.schema


def read_model_topics() -> list[str]:
    """The stable topics of the events the read model has a handler for."""
    handled = RegionReadModel.__dict__["process_event"].dispatcher.registry
    return sorted(topic_of(cls) for cls in handled if cls is not object)


Handler = Callable[[RegionReadModel, Any, Tracking], None]


@cache
def _lean_handlers() -> dict[str, tuple[msgspec.json.Decoder[Any], Handler]]:
    """The lean decoder and the handler of each topic the read model builds rows from."""
    dispatch = RegionReadModel.__dict__["process_event"].dispatcher.dispatch
    topics = read_model_topics()
    missing = sorted(set(topics) - DECODERS.keys())
    if missing:
        raise AssertionError(f"no lean struct in projections/event_rows.py for {missing}")
    # The lean structs whose values are taken in field order must list the columns in order.
    if event_rows.Usage.__struct_fields__ != USAGE_COLUMNS:
        raise AssertionError("projections/event_rows.py: Usage's fields are not USAGE_COLUMNS")
    if event_rows.Amounts.__struct_fields__ != ROW_AMOUNT_FIELDS:
        raise AssertionError("projections/event_rows.py: Amounts' fields are not the settlement amount columns")
    return {topic: (DECODERS[topic], dispatch(class_of(topic))) for topic in topics}


class _At:
    """The position of the event being handled: the only thing a handler reads of its `Tracking`
    (it copies `notification_id` into rows, never keeps the object), so one serves a whole page."""

    __slots__ = ("notification_id",)

    def __init__(self) -> None:
        self.notification_id = 0


def project(projection: RegionReadModel, name: str, rows: list[tuple[int, str, bytes]]) -> None:
    """Add the rows of these stored events, (position, topic, state), to the projection's page."""
    handlers = _lean_handlers()
    at: Any = _At()  # stands for the Tracking a handler is given
    notification_id, topic = 0, ""
    try:
        for notification_id, topic, state in rows:
            decoder, handler = handlers[topic]
            at.notification_id = notification_id
            try:
                event = decoder.decode(state)
            except msgspec.ValidationError:
                if topic not in CHECKED_DECODERS:
                    raise
                event = CHECKED_DECODERS[topic].decode(state)  # its handler says which field is not fen
            handler(projection, event, at)
    except msgspec.DecodeError as exc:  # ValidationError too: a field missing or of another type
        raise InvalidEvent(f"event at position {notification_id} ({topic}) does not decode: {exc}") from exc


def open_view(app: RegionApplication) -> ReadModelView:
    return ReadModelView(datastore_of(app))


def progress(app: RegionApplication, view: ReadModelView) -> Progress:
    return Progress(view.max_tracking_id(app.name) or 0, app.region_log.max_notification_id() or 0)


def catch_up(
    app: RegionApplication,
    view: ReadModelView | None = None,
    *,
    on_page: Callable[[Progress], None] | None = None,
    page_size: int = page_events_max,
) -> Progress:
    """Process every event after the tracked position, a page per transaction, then build any
    secondary index that is missing. A full run (see `rebuild`) that did not finish is carried on
    from its position, its member usage summed again; while one runs, this waits for its end."""
    view = view or open_view(app)
    if view.full_run_pending(app.name):
        with view.full_run_lock():
            if view.full_run_pending(app.name):  # its runner is gone: carry the run on
                view.forget_usage()  # some of it may have been merged (more than usage_held_max)
                usage = usage_until(app, view.max_tracking_id(app.name) or 0)
                progress = _run(app, view, on_page=on_page, page_size=page_size, full=True, usage=usage)
            else:  # it ended while this waited
                progress = _run(app, view, on_page=on_page, page_size=page_size, full=False)
    else:
        progress = _run(app, view, on_page=on_page, page_size=page_size, full=False)
    view.ensure_indexes()
    return progress


def rebuild(
    app: RegionApplication, *, on_page: Callable[[Progress], None] | None = None, page_size: int = page_events_max
) -> Progress:
    """Build the read model again from the first event, as a full run: see the module's doc."""
    view = open_view(app)
    with view.full_run_lock():
        progress = _full_run(app, view, on_page=on_page, page_size=page_size)
    view.ensure_indexes()
    return progress


def _full_run(
    app: RegionApplication, view: ReadModelView, *, on_page: Callable[[Progress], None] | None, page_size: int
) -> Progress:
    view.begin_full_run(app.name)
    return _run(app, view, on_page=on_page, page_size=page_size, full=True)


def _run(
    app: RegionApplication,
    view: ReadModelView,
    *,
    on_page: Callable[[Progress], None] | None,
    page_size: int,
    full: bool,
    usage: dict[tuple[str, int], list[int]] | None = None,
) -> Progress:
    """The pages from the tracked position to the head.

    While PostgreSQL writes one page (in a writer thread: psycopg lets go of the GIL while it
    waits), the next page is decoded here and the one after it read (in a reader thread). A
    page's write is awaited, and its failpoint and `on_page` are run, before the next page is
    handed to the writer: whenever either runs, or an error is raised, what is committed is what
    a loop of one page at a time had committed.

    In a full run (`full`), member usage is summed across pages and written with the last one
    (merged a part at a time if more than `usage_held_max` member-years are held), starting from
    `usage`, the sums of the events before the tracked position when a run is carried on."""
    return _PageRun(app, view, on_page=on_page, page_size=page_size, full=full, usage=usage).run()


class _PageRun:
    """One run of `_run`: its position, the page being written and the page being read."""

    def __init__(
        self,
        app: RegionApplication,
        view: ReadModelView,
        *,
        on_page: Callable[[Progress], None] | None,
        page_size: int,
        full: bool,
        usage: dict[tuple[str, int], list[int]] | None,
    ) -> None:
        self.app, self.view, self.on_page, self.page_size, self.full = app, view, on_page, page_size, full
        self.projection = RegionReadModel(view)
        self.position = view.max_tracking_id(app.name) or 0  # the end of the last page built
        self.head = app.region_log.max_notification_id() or 0
        self.topics = read_model_topics()
        self.usage = {} if usage is None else usage  # a full run's sums of the pages built so far
        self.usage_merged = False  # some of a full run's sums are already in the table
        if full:
            self.projection.page.usage = self.usage  # summed into across pages

    def run(self) -> Progress:
        with (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="read-model-writer") as writer,
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="read-model-reader") as reader,
        ):
            writing: tuple[Future[None], int, int] | None = None  # the page being written, its end and start
            # The next page's rows are read (PostgreSQL's part of it, in the reader thread) while
            # this one is decoded: the page after `after`.
            self.reading: tuple[Future[list[tuple[int, str, bytes]]], int] | None = None
            while self.position < self.head or writing is not None:
                page, end = None, self.position
                if self.position < self.head:
                    try:
                        end = self._build_page(reader)
                    except BaseException:
                        if writing is not None:
                            self._written(*writing)
                        raise
                    page = self._take_page()
                if writing is not None:
                    done, writing = self._written(*writing), None
                    if not done:
                        # Continue from where the other runner got to (the page just built followed
                        # the one not written, and is dropped).
                        self.position = self.view.max_tracking_id(self.app.name) or 0
                        continue
                if page is not None:
                    write = writer.submit(self.view.write, page, Tracking(self.app.name, end))
                    writing = (write, end, page.start)
                    self.position = end
        if self.full and self.head == 0:  # no page to end the run with
            self.view.write(Page(full_run=True, ends_full_run=True), Tracking(self.app.name, 0))
        return Progress(self.position, self.head)

    def _read(self, after: int) -> list[tuple[int, str, bytes]]:
        # Only the events that build rows are read and decoded (about half of the log); the
        # position still moves over the others.
        return self.app.region_log.select_states(after, self.head, self.topics, self.page_size)

    def _build_page(self, reader: ThreadPoolExecutor) -> int:
        """Decode the page after `position` into the projection (its rows read ahead); its end."""
        position = self.position
        if self.reading is None or self.reading[1] != position:
            self.reading = (reader.submit(self._read, position), position)
        rows = self.reading[0].result()
        end = rows[-1][0] if len(rows) == self.page_size else self.head
        self.reading = (reader.submit(self._read, end), end) if end < self.head else None
        project(self.projection, self.app.name, rows)
        self._page_end = end
        return end

    def _take_page(self) -> Page:
        """The page just built, marked for a full run; the projection starts a new one."""
        page, self.projection.page = self.projection.page, Page()
        page.start = self.position
        if self.full:
            page.full_run = True
            if self._page_end == self.head:
                page.usage_is_new, page.ends_full_run = not self.usage_merged, True
            elif len(self.usage) > usage_held_max:
                page.usage_is_new, self.usage_merged, self.usage = not self.usage_merged, True, {}
            else:
                page.usage = {}  # still held
            self.projection.page.usage = self.usage
        return page

    def _written(self, write: Future[None], end: int, start: int) -> bool:
        """Wait for a page's write; False if another runner had recorded these events first."""
        app, view = self.app, self.view
        try:
            write.result()
        except IntegrityError as exc:
            if self.full:
                raise  # nobody else writes during a full run: its sums would be wrong
            if isinstance(exc, Overtaken) or (view.max_tracking_id(app.name) or 0) > start:
                return False  # the tracking row only moves forward: nothing was written here
            # Nobody moved the position: the rows clash with rows already there (a tracked
            # position set back, an event inserted by hand). Retrying would clash forever.
            raise ReadModelInconsistent(
                f"the page after position {start} clashes with rows already written ({first_line(exc)}); "
                "the events or the read model were changed outside yibao (`yibao projections rebuild` builds "
                "the read model again from the events)"
            ) from exc
        failpoints.reach("projection.after_page")
        if self.on_page is not None:
            self.on_page(Progress(end, self.head))
        return True


def usage_until(app: RegionApplication, position: int) -> dict[tuple[str, int], list[int]]:
    """Member usage summed in memory from the member-year events up to `position`, a page at a time."""
    topics = [topic for topic in read_model_topics() if event_rows.LEAN_TYPES[topic] is event_rows.MemberYearDelta]
    projection = RegionReadModel(view=None)  # type: ignore[arg-type]  # rows in memory only
    after = 0
    while after < position:
        rows = app.region_log.select_states(after, position, topics, page_events_max)
        project(projection, app.name, rows)
        if len(rows) < page_events_max:
            break
        after = rows[-1][0]
    return projection.page.usage
