"""The indexes a full run drops are rows (migration 0010), read afresh by each call that builds them.

The race it closes: a session that had called `ensure_read_model_indexes` before (a pooled
connection of a long-lived process) waits for the index lock while a migration changes the list
and commits. Under 0009's IMMUTABLE list function its cached plan still held the old list, so it
built the index with the old columns and the migration's definition was lost. Here the migration's
change is an UPDATE of the rows under the same lock, as 0010's header says a migration does it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from store.app import Store
from store.recorder import APP_ROLE

REGION = "330109"
SCHEMA = f"region_{REGION}"
INDEX_LOCK = f"SELECT pg_advisory_xact_lock(hashtext('{SCHEMA}' || '.read_model_indexes'))"


@pytest.fixture(scope="module")
def region(store: Store) -> str:
    store.add_region(REGION)
    return REGION


@pytest.fixture
def app_session(store: Store, region: str) -> Iterator[psycopg.Connection[Any]]:
    """A connection as the application's pool makes one: the owner, acting as yibao_app."""
    with psycopg.connect(store.location.url, autocommit=True) as conn:
        conn.execute(f"SET ROLE {APP_ROLE}")
        yield conn


def party_index(store: Store) -> str | None:
    with store.connect_admin() as conn:
        row = conn.execute(
            "SELECT replace(indexdef, %s, '') FROM pg_indexes WHERE schemaname = %s AND indexname = 'journal_by_party'",
            (f"{SCHEMA}.", SCHEMA),
        ).fetchone()
    return row[0] if row else None


def call(session: psycopg.Connection[Any], function: str) -> int:
    return session.execute(f"SELECT {SCHEMA}.{function}()").fetchone()[0]  # type: ignore[index]


def waiting_for_a_lock(store: Store, pid: int) -> bool:
    with store.connect_admin() as conn:
        return conn.execute("SELECT EXISTS (SELECT FROM pg_locks WHERE pid = %s AND NOT granted)", (pid,)).fetchone()[0]  # type: ignore[index]


def set_party_columns(conn: psycopg.Connection[Any], columns: str) -> None:
    conn.execute(INDEX_LOCK)
    conn.execute(
        f"UPDATE {SCHEMA}.read_model_dropped_index_rows SET columns = %s WHERE index_name = 'journal_by_party'",  # noqa: S608
        (columns,),
    )


def test_the_list_carried_over_from_0009_is_what_the_functions_use(store: Store, region: str) -> None:
    with store.connect_admin() as conn:
        rows = conn.execute(f"SELECT * FROM {SCHEMA}.read_model_dropped_indexes()").fetchall()  # noqa: S608
    assert rows == [("journal_by_party", "journal", "(party)"), ("journal_by_ref", "journal", "(ref)"),
                    ("settlements_by_member", "settlements", "(psn_no, year)")]  # fmt: skip
    assert party_index(store) == "CREATE INDEX journal_by_party ON journal USING btree (party)"


def test_a_call_that_waited_for_a_migration_builds_the_definition_it_committed(
    store: Store, app_session: psycopg.Connection[Any]
) -> None:
    for _ in range(3):  # the session has called both before: their plans are cached
        assert call(app_session, "drop_read_model_indexes") == 3
        assert call(app_session, "ensure_read_model_indexes") == 3
    assert call(app_session, "drop_read_model_indexes") == 3
    pid = app_session.info.backend_pid
    try:
        with store.connect_admin() as migration:
            with migration.transaction():
                set_party_columns(migration, "(party, amount)")
                built: list[int] = []
                waiter = threading.Thread(target=lambda: built.append(call(app_session, "ensure_read_model_indexes")))
                waiter.start()
                deadline = time.monotonic() + 10
                while not waiting_for_a_lock(store, pid):
                    assert time.monotonic() < deadline, "ensure_read_model_indexes never waited for the lock"
                    time.sleep(0.02)
            waiter.join(timeout=30)
        assert built == [3]
        assert party_index(store) == "CREATE INDEX journal_by_party ON journal USING btree (party, amount)"
        # And a later full run drops and builds what the rows say.
        assert call(app_session, "drop_read_model_indexes") == 3
        assert party_index(store) is None
        assert call(app_session, "ensure_read_model_indexes") == 3
        assert party_index(store) == "CREATE INDEX journal_by_party ON journal USING btree (party, amount)"
    finally:
        with store.connect_admin() as conn, conn.transaction():
            set_party_columns(conn, "(party)")
        call(app_session, "drop_read_model_indexes")
        call(app_session, "ensure_read_model_indexes")
    assert party_index(store) == "CREATE INDEX journal_by_party ON journal USING btree (party)"
