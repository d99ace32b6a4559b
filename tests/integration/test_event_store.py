"""The event store on PostgreSQL: round trip, immutability, least privilege, migrations, chain."""

from __future__ import annotations

import hashlib

import psycopg
import pytest
from eventsourcing.persistence import StoredEvent

from core.codec import EventMapper
from core.ids import policy_book_id
from core.policy_book import PolicyBook
from store import migrate
from store.app import Store
from store.chain import GENESIS_HASH, event_hash, micros
from store.server import ServerLocation

REGION = "330109"


@pytest.fixture(scope="module")
def region_store(store: Store) -> Store:
    store.add_region(REGION)
    return store


def test_an_event_written_through_the_application_reads_back_identical(
    region_store: Store, location: ServerLocation
) -> None:
    app = region_store.region(REGION)
    book = PolicyBook(region=REGION, year=2031)
    book.load("hash-1", 'name = "保障政策 2031"\nfee = "1.00"\n')
    pending = book.collect_events()
    app.save(*pending)

    with Store(location) as fresh:
        stored = fresh.region(REGION).events.get(policy_book_id(REGION, 2031))
        read_back = list(stored)
    assert read_back == pending
    assert [type(e) for e in read_back] == [PolicyBook.Opened, PolicyBook.VersionLoaded]
    assert read_back[1].toml_text == 'name = "保障政策 2031"\nfee = "1.00"\n'


def test_stored_topics_are_stable_names_not_python_paths(region_store: Store) -> None:
    app = region_store.region(REGION)
    app.record_policy(2032, "hash-2", "x = 1")
    topics = {n.topic for n in app.recorder.select_notifications(start=1, limit=100)}
    assert "PolicyBook.Opened" in topics
    assert not any(":" in topic for topic in topics)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE region_330109.events SET topic = 'x'",
        "DELETE FROM region_330109.events",
        "TRUNCATE region_330109.events",
    ],
)
def test_changing_an_event_is_refused_even_for_the_owner(region_store: Store, statement: str) -> None:
    region_store.region(REGION).record_policy(2033, "hash-3", "y = 1")
    with region_store.connect_admin() as conn, pytest.raises(psycopg.Error) as refused:
        conn.execute(statement)
    assert "events are immutable" in str(refused.value)
    assert "region_330109.events" in str(refused.value)


def test_the_application_role_may_only_insert_and_read_events(region_store: Store) -> None:
    region_store.region(REGION).record_policy(2034, "hash-4", "z = 1")
    with region_store.connect_admin() as conn:
        conn.execute("SET ROLE yibao_app")
        assert conn.execute("SELECT count(*) FROM region_330109.events").fetchone()[0] > 0
        for statement in (
            "UPDATE region_330109.events SET topic = 'x'",
            "DELETE FROM region_330109.events",
            "TRUNCATE region_330109.events",
            "DROP TABLE region_330109.events",
            "ALTER TABLE region_330109.events DISABLE TRIGGER USER",
        ):
            with pytest.raises(psycopg.Error) as refused:
                conn.execute(statement)
            assert type(refused.value).__name__ in {"InsufficientPrivilege", "IntegrityConstraintViolation"}
            conn.rollback() if not conn.autocommit else None


def test_migrations_run_twice_change_nothing_the_second_time(region_store: Store) -> None:
    def snapshot() -> tuple[object, ...]:
        with region_store.connect_admin() as conn:
            columns = conn.execute(
                "SELECT table_schema, table_name, column_name, data_type FROM information_schema.columns "
                "WHERE table_schema IN ('yibao', 'region_330109') ORDER BY 1, 2, 3"
            ).fetchall()
            triggers = conn.execute("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1").fetchall()
            applied = conn.execute(
                "SELECT scope, version, checksum, applied_at FROM yibao.schema_migrations ORDER BY 1, 2"
            ).fetchall()
        return columns, triggers, applied

    first = region_store.migrate()
    before = snapshot()
    second = region_store.migrate()
    assert second == first
    assert snapshot() == before
    assert first.region_versions[REGION] == first.latest_region
    assert first.is_current


def test_an_edited_migration_is_refused(region_store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    real = migrate.load_migrations

    def edited(scope: str) -> list[migrate.Migration]:
        found = real(scope)
        return [migrate.Migration(m.version, m.name, m.text + "\n-- edited") for m in found]

    monkeypatch.setattr(migrate, "load_migrations", edited)
    with pytest.raises(migrate.MigrationChanged):
        region_store.migrate()


def test_a_save_of_many_thousand_events_completes_in_one_transaction(region_store: Store) -> None:
    # The library's own save path hangs forever on saves this large (shared/MEASURED.md).
    app = region_store.region(REGION)
    books = [PolicyBook(region=REGION, year=3000 + i) for i in range(2500)]
    for book in books:
        book.load(f"hash-{book.year}", "k = 'v'\n" * 40)
    recordings = app.save(*books)
    assert len(recordings) == 5000
    ids = [r.notification.id for r in recordings]
    assert ids == sorted(ids) and len(set(ids)) == 5000


def test_each_event_is_chained_to_the_one_before_it_over_every_stored_column(region_store: Store) -> None:
    region_store.region(REGION).record_policy(2035, "hash-5", "w = 1")
    with region_store.connect_admin() as conn:
        rows = conn.execute(
            "SELECT e.notification_id, e.recorded_at, s.notification_id IS NOT NULL, originator_id, "
            "originator_version, topic, state, e.chain_hash FROM region_330109.events AS e "
            "LEFT JOIN region_330109.seals AS s USING (notification_id) ORDER BY notification_id"
        ).fetchall()
    previous = GENESIS_HASH
    for position, recorded_at, sealed, originator_id, version, topic, state, stored_hash in rows:
        event = StoredEvent(originator_id, version, topic, bytes(state))
        previous = event_hash(previous, event, position, micros(recorded_at), sealed)
        assert bytes(stored_hash) == previous
    assert len(rows) > 2
    assert hashlib.sha256(b"").digest() != previous
    # The last event of each save is the one its seal names; its hash says so.
    assert rows[-1][2] is True


def test_the_mapper_refuses_an_event_class_without_a_stable_topic() -> None:
    from eventsourcing.domain import Aggregate

    class Unregistered(Aggregate):
        pass

    with pytest.raises(AssertionError, match="no stable topic"):
        EventMapper().to_stored_event(Unregistered().collect_events()[0])


def test_a_settlement_payload_is_stored_uncompressed(store: Store, location: ServerLocation) -> None:
    """Migration 0036: a payload past the 2 KB TOAST threshold is not compressed (pglz cost the
    server half of a COPY row), and stays in the table's own pages."""
    app = store.ensure_region("330135")
    large = "保" * 1000  # a payload of 3,000 bytes, past the threshold, written as every event is
    app.record_policy(2024, "hash-large", f'name = "{large}"')
    with psycopg.connect(location.url) as conn:
        rows = conn.execute(
            "SELECT length(state), pg_column_compression(state), pg_column_size(state) "
            "FROM region_330135.events WHERE length(state) > 2100"
        ).fetchall()
        toasted = conn.execute(
            "SELECT pg_relation_size(reltoastrelid) FROM pg_class WHERE oid = 'region_330135.events'::regclass"
        ).fetchone()
    assert rows, "no payload past the TOAST threshold was written"
    assert all(compression is None for _, compression, _ in rows)
    assert all(stored >= length for length, _, stored in rows)
    assert toasted == (0,)
