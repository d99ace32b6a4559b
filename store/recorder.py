"""The PostgreSQL recorder of one region's events, on top of the eventsourcing library's.

What it changes in the library's save path, and why:
- no pipeline mode and no single giant parameter: the library's path hangs forever on large saves
  (see shared/MEASURED.md), so events are streamed with COPY (binary) into ids reserved from the
  sequence under the write lock, in one transaction;
- writers serialise on a transaction-level advisory lock instead of `LOCK TABLE ... EXCLUSIVE`
  (which needs UPDATE privilege): the application role only has INSERT and SELECT on events, and
  notification ids still appear in commit order, because every writer takes the same lock;
- each row carries a `chain_hash` over every stored column and the previous row's hash
  (store/chain.py), computed under the lock with the time of recording it writes itself, so
  that an edited, deleted or inserted row is detectable even when the triggers were bypassed;
  each transaction also records a seal (the new head and its hash) in the `seals` table, and
  the sealed row's hash says it is sealed, so that a deleted seal is detectable too (a deleted
  tail, with its seals, needs a signed checkpoint kept outside the database: `yibao checkpoint`).
It also reads many aggregates' events in one query (`select_events_of`), for batch settlement,
and the journal positions of given events (`select_positions`), for hospital payments.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import Any, cast
from uuid import UUID

import psycopg
from eventsourcing.application import Application
from eventsourcing.persistence import InterfaceError, Notification, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresDatastore, PostgresProcessRecorder
from eventsourcing.utils import retry
from psycopg import sql
from psycopg.rows import tuple_row

from app import stages
from app.ports import RegionLog
from core.codec import stored_event
from core.funds import BANK_EVENT_DATES, BankDraw, check_bank_draws
from store.chain import GENESIS_HASH, event_hash, micros

few_streams_max = 64  # reads of at most this many aggregates use their own prepared statement
APP_ROLE = "yibao_app"
READ_MODEL_NAME = "yibao"  # the name the read model's position is tracked under (the application's)


def advisory_key(name: str) -> int:
    """A stable 63-bit PostgreSQL advisory lock key for a named thing (`<schema>.events`, the
    region's write lock; `<schema>.read_model`, a full run of its read model)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") >> 1


class RegionDatastore(PostgresDatastore):
    """The library's datastore, connecting as the owner and then acting as `yibao_app`."""

    def __init__(self, *args: Any, role: str | None = APP_ROLE, **kwargs: Any) -> None:
        self.role = role
        super().__init__(*args, **kwargs)

    def after_connect_func(self) -> Callable[[psycopg.Connection[Any]], None]:
        library_after_connect = super().after_connect_func()
        role = self.role

        def after_connect(conn: psycopg.Connection[Any]) -> None:
            library_after_connect(conn)
            if role:
                conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role)))

        return after_connect


class RegionRecorder(PostgresProcessRecorder, RegionLog):
    """A process recorder: a save can carry the position of the event in another region's log
    that it acts on (`tracking`), written in the same transaction (app.transfer_relay)."""

    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "events") -> None:
        super().__init__(datastore, events_table_name=events_table_name, tracking_table_name="notification_tracking")
        table = sql.Identifier(datastore.schema, events_table_name)
        # A save takes few round trips, because the region's write lock is held through them:
        # one simple-protocol string (begin, lock timeout, lock, then - a statement of its own, so
        # that it sees every commit made before the lock was granted - the chain's head, the time and a
        # block of ids), the COPY, and one string with the seal and the commit.
        self._begin_and_lock = sql.SQL(
            "BEGIN; SET LOCAL lock_timeout = '{0}s'; SELECT pg_advisory_xact_lock({1}); "
        ).format(datastore.lock_timeout, advisory_key(f"{datastore.schema}.events"))
        self._events_table = table
        self._sequence = sql.Literal(f"{datastore.schema}.{events_table_name}_notification_id_seq")
        self._copy_events = sql.SQL(
            "COPY {0} (originator_id, originator_version, topic, state, notification_id, recorded_at, chain_hash) "
            "FROM STDIN (FORMAT BINARY)"
        ).format(table)
        snapshots = sql.Identifier(datastore.schema, "snapshots")
        self._insert_snapshot = sql.SQL(
            "INSERT INTO {} (originator_id, originator_version, topic, state) VALUES (%s, %s, %s, %s)"
        ).format(snapshots)
        self._seals = sql.Identifier(datastore.schema, "seals")
        # One channel a region (the library names it after the table, the same in every schema):
        # a save wakes the subscribers of its own region only (the inherited `subscribe()`).
        self.channel_name = f"{datastore.schema}_{events_table_name}"
        self._channel = sql.Identifier(self.channel_name)
        # Reads of many aggregates, in one statement each: the latest snapshot of each aggregate
        # the caller does not know (`%(unknown)s`), then the events after it, or after the version
        # the caller knows. A snapshot row comes first in its aggregate's (id, version) order.
        snapshots_cte = sql.SQL(
            "WITH snap AS (SELECT DISTINCT ON (originator_id) originator_id, originator_version, topic, state "
            "FROM {} WHERE originator_id = ANY(%(unknown)b::uuid[]) ORDER BY originator_id, originator_version DESC) "
        ).format(snapshots)
        self._select_many = snapshots_cte + sql.SQL(
            ", k AS (SELECT k.id, GREATEST(k.after, COALESCE(snap.originator_version, 0)) AS after "
            "FROM unnest(%(ids)b::uuid[], %(after)b::int8[]) AS k(id, after) "
            "LEFT JOIN snap ON snap.originator_id = k.id) "
            "SELECT originator_id, originator_version, topic, state FROM snap UNION ALL "
            "SELECT e.originator_id, e.originator_version, e.topic, e.state FROM {0} AS e "
            "JOIN k ON e.originator_id = k.id AND e.originator_version > k.after "
            "ORDER BY 1, 2"
        ).format(table)
        # Reads of a few aggregates: a plain index lookup (from the lowest version any of them
        # needs; the rest is skipped here). Through the join above, once a connection has run the
        # batch form a few times, PostgreSQL keeps a generic plan made for thousands of streams
        # (a hash join over the whole table): a read of one aggregate then took tens of ms,
        # growing with the table, instead of about 1 ms.
        self._select_few = snapshots_cte + sql.SQL(
            "SELECT originator_id, originator_version, topic, state FROM snap UNION ALL "
            "SELECT e.originator_id, e.originator_version, e.topic, e.state FROM {0} AS e "
            "WHERE e.originator_id = ANY(%(ids)b::uuid[]) AND e.originator_version > %(after)b "
            "AND e.originator_version > COALESCE("
            "(SELECT snap.originator_version FROM snap WHERE snap.originator_id = e.originator_id), 0) "
            "ORDER BY 1, 2"
        ).format(table)

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        """Write the events (and the tracking record and snapshots in `kwargs`) in one transaction.
        Retried as the library's recorders are when the connection fails (a server restart): a
        transaction that failed wrote nothing, and one that committed before its answer was lost
        makes the retry clash on the events' (id, version) key, as a concurrent writer would."""
        if not stored_events:
            tracking = kwargs.get("tracking")
            if tracking is not None:
                self.insert_tracking(tracking)
            return None
        count = len(stored_events)
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
            try:
                # Every writer holds the lock, so the head read here is the last committed event,
                # and the block of ids reserved is contiguous and in commit order; COPY then
                # writes the rows without a statement per row.
                with stages.stage("lock"):
                    curs.execute(self._begin_and_lock + self._head_and_reserve(count))
                    while curs.nextset():  # to the last statement's result
                        pass
                    reserved = curs.fetchone()
                assert reserved is not None
                bank_draws = kwargs.pop("bank_draws", ())
                if bank_draws:  # under the write lock: no other money can move until this commits
                    check_bank_draws(bank_draws, self._bank_days(curs, bank_draws))
                self._insert_events(cast(Any, curs), stored_events, **kwargs)  # hook for process recorders (tracking)
                previous = bytes(reserved[0]) if reserved[0] is not None else GENESIS_HASH
                first, recorded_at = reserved[1], reserved[3]
                recorded_us = micros(recorded_at)
                with stages.stage("copy"), curs.copy(self._copy_events) as copy:
                    copy.set_types(["uuid", "int8", "text", "bytea", "int8", "timestamptz", "bytea"])
                    for offset, event in enumerate(stored_events):
                        sealed = offset == count - 1  # the seal below names the last event
                        previous = event_hash(previous, event, first + offset, recorded_us, sealed)
                        copy.write_row(
                            (event.originator_id, event.originator_version, event.topic, event.state,
                             first + offset, recorded_at, previous)
                        )  # fmt: skip
                snapshots = kwargs.get("snapshots") or ()
                if snapshots:
                    curs.executemany(
                        self._insert_snapshot,
                        [(s.originator_id, s.originator_version, s.topic, s.state) for s in snapshots],
                    )
                # Seal the new head of the chain (outside the events table): a deleted tail is
                # then a seal naming an event that is gone. Sent with the commit.
                with stages.stage("commit"):
                    curs.execute(
                        sql.SQL(
                            "INSERT INTO {} (notification_id, chain_hash) VALUES ({}, {}); NOTIFY {}; COMMIT"
                        ).format(self._seals, sql.Literal(first + count - 1), sql.Literal(previous), self._channel)
                    )
            except BaseException:
                if not conn.closed and conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                    conn.execute("ROLLBACK")
                raise
        return list(range(first, first + count))

    def check_bank_draws(self, draws: Sequence[BankDraw]) -> None:
        """The balance check of a save, without saving (a dry run): as of now, not under the lock."""
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
            check_bank_draws(draws, self._bank_days(curs, draws))

    def _bank_days(self, curs: Any, draws: Sequence[BankDraw]) -> dict[str, list[tuple[str, int]]]:
        """fund -> (date, net bank movement) of every posting recorded, for the funds drawn on.

        The read model's journal holds the postings of the events up to its tracked position
        (written with it, so one statement reads both consistently); the events after that
        position are read from the log itself, which nobody can add to while the write lock is
        held. So the balances are those of every event committed, however far behind the read
        model is, at the cost of a grouped index read of the journal."""
        funds = sorted({fund for draw in draws for fund in draw.amounts})
        schema = self.datastore.schema
        days: dict[str, list[tuple[str, int]]] = {fund: [] for fund in funds}
        journaled = self._journal_bank_days.format(
            sql.Identifier(schema, "notification_tracking"), sql.Identifier(schema, "journal")
        )
        position = 0
        for tracked, fund, on, moved in curs.execute(journaled, (READ_MODEL_NAME, funds)).fetchall():
            position = tracked
            if fund is not None:
                days[fund].append((on.isoformat(), int(moved)))
        for fund, on, moved in curs.execute(self._log_bank_days, (position, list(BANK_EVENT_DATES), funds)):
            days[fund].append((on, int(moved)))
        return days

    # Per date and fund, the bank postings the read model has journaled, with its position (one row
    # with no fund when it has none). Then those of the events after that position, from the log.
    _journal_bank_days = sql.SQL(
        "WITH tracked AS (SELECT coalesce(max(notification_id), 0) AS position FROM {0} "
        "WHERE application_name = %s) "
        "SELECT t.position, j.fund, j.posted_on, sum(j.amount) FROM tracked AS t LEFT JOIN {1} AS j "
        "ON j.account = 'bank' AND j.fund = ANY(%s) AND j.notification_id <= t.position "
        "GROUP BY t.position, j.fund, j.posted_on"
    )

    @property
    def _log_bank_days(self) -> sql.Composed:
        dates = sql.SQL(" ").join(
            sql.SQL("WHEN {} THEN x.s #>> {}").format(sql.Literal(topic), sql.Literal(list(path)))
            for topic, path in BANK_EVENT_DATES.items()
        )
        return sql.SQL(
            "SELECT p ->> 0, (CASE e.topic {0} END), sum((p ->> 3)::bigint) "
            "FROM {1} AS e CROSS JOIN LATERAL (SELECT convert_from(e.state, 'UTF8')::jsonb AS s) AS x "
            "CROSS JOIN LATERAL jsonb_array_elements(x.s -> 'postings') AS p "
            "WHERE e.notification_id > %s AND e.topic = ANY(%s) AND p ->> 1 = 'bank' AND p ->> 0 = ANY(%s) "
            "GROUP BY 1, 2"
        ).format(dates, self._events_table)

    def _head_and_reserve(self, count: int) -> sql.Composed:
        return sql.SQL(
            "SELECT (SELECT chain_hash FROM {0} ORDER BY notification_id DESC LIMIT 1), "
            "first, setval({1}::regclass, first + {2} - 1), clock_timestamp() "
            "FROM (SELECT nextval({1}::regclass) AS first) AS block"
        ).format(self._events_table, self._sequence, count)

    def select_step_notifications(self, topics: Sequence[str], after: int, limit: int) -> list[Notification]:
        """The events of a relay's steps (`topics`) after a position, read through the partial
        indexes that only hold those steps (migrations 0005 and 0035): no scan of the whole log."""
        # Literal topics: the planner proves a partial index usable only from constants.
        statement = sql.SQL(
            "SELECT notification_id, originator_id, originator_version, topic, state FROM {} "
            "WHERE topic IN ({}) AND notification_id > %s ORDER BY notification_id LIMIT %s"
        ).format(
            sql.Identifier(self.datastore.schema, self.events_table_name),
            sql.SQL(", ").join(map(sql.Literal, topics)),
        )
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
            curs.execute(statement, (after, limit))
            return [
                Notification(
                    id=row[0], originator_id=row[1], originator_version=row[2], topic=row[3], state=bytes(row[4])
                )
                for row in curs
            ]

    def select_originators_of(self, topics: Sequence[str]) -> list[UUID]:
        """The aggregates that have an event of any of `topics`: only for topics a partial index
        holds (migrations 0005 and 0008), so the log is not read whole."""
        # Literal topics: the planner proves a partial index usable only from constants.
        statement = sql.SQL("SELECT DISTINCT originator_id FROM {} WHERE topic IN ({})").format(
            sql.Identifier(self.datastore.schema, self.events_table_name),
            sql.SQL(", ").join(map(sql.Literal, topics)),
        )
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
            return [row[0] for row in curs.execute(statement)]

    def select_events_of(
        self, originator_ids: Iterable[UUID], after: dict[UUID, int] | None = None
    ) -> dict[UUID, list[StoredEvent]]:
        """The stored events of many aggregates in one query, in version order: all of them, or
        for an aggregate in `after` only those past the version already known."""
        ids = list(originator_ids)
        found: dict[UUID, list[StoredEvent]] = defaultdict(list)
        if not ids:
            return found
        unknown = [i for i in ids if not after or i not in after]
        versions = [after.get(i, 0) for i in ids] if after else [0] * len(ids)
        with stages.stage("read"), self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
            if len(ids) <= few_streams_max:
                known = dict(zip(ids, versions, strict=True))
                params = {"unknown": unknown, "ids": ids, "after": min(versions)}
                rows = [row for row in curs.execute(self._select_few, params, binary=True) if row[1] > known[row[0]]]
            else:
                params = {"unknown": unknown, "ids": ids, "after": versions}
                rows = curs.execute(self._select_many, params, binary=True).fetchall()
            for originator_id, version, topic, state in rows:
                found[originator_id].append(stored_event(originator_id, version, topic, state))
            stages.count("aggregates asked for", len(ids))
            stages.count("events read", len(rows))
        return found

    def select_positions(self, keys: Sequence[tuple[UUID, int]]) -> dict[tuple[UUID, int], int]:
        """The notification id (journal position) of each stored event named by (aggregate id,
        version); an event not stored is not in the answer."""
        statement = sql.SQL(
            "SELECT e.originator_id, e.originator_version, e.notification_id FROM {} AS e "
            "JOIN unnest(%s::uuid[], %s::int8[]) AS k(id, version) "
            "ON e.originator_id = k.id AND e.originator_version = k.version"
        ).format(self._events_table)
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
            rows = curs.execute(statement, ([k[0] for k in keys], [k[1] for k in keys])).fetchall()
        return {(row[0], row[1]): row[2] for row in rows}

    def select_states(self, after: int, stop: int, topics: list[str], limit: int) -> list[tuple[int, str, bytes]]:
        """The (position, topic, state) of the events of `topics` after `after`, up to `stop`,
        read in binary (the text protocol sends every payload hex-encoded, twice its size): for a
        reader that decodes the state itself (the read model's rebuild; no UUID per row)."""
        statement = sql.SQL(
            "SELECT notification_id, topic, state FROM {} "
            "WHERE notification_id > %s AND notification_id <= %s AND topic = ANY(%s) "
            "ORDER BY notification_id LIMIT %s"
        ).format(sql.Identifier(self.datastore.schema, self.events_table_name))
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
            return curs.execute(statement, (after, stop, topics, limit), binary=True).fetchall()


def datastore_of(app: Application) -> RegionDatastore:
    """The datastore of a region application built by `store.app.Store`: what read models and
    checks query with their own SQL."""
    recorder = app.recorder
    if not isinstance(recorder, RegionRecorder) or not isinstance(recorder.datastore, RegionDatastore):
        raise TypeError(f"{type(recorder).__name__} is not a region recorder on PostgreSQL")
    return recorder.datastore
