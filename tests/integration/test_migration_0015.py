"""Migration 0015 on a log written before it: older events keep their rows and are covered too.

The region's year of test_projections_and_verify is recorded at 0010, with a gap in its positions,
and its rows are given the hash the recorder wrote before 0015 (the chain over aggregate id,
version, topic and payload, seals naming it), as an older store has them. 0015 is then applied,
more events are recorded (with the new hash), and every kind of tampering with the older events,
including their time of recording, which the old hash does not cover, is named by `verify`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from eventsourcing.persistence import StoredEvent

from app.region import RegionApplication
from projections.read_model import catch_up, rebuild
from store import migrate
from store.app import Store
from store.chain import GENESIS_HASH, content, legacy_chain_hash
from tests.integration.test_projections_and_verify import app, triggers_off, verify
from tests.integration.test_tamper_evidence import (
    put_back,
    rows,
    sealed,
    verify_swapped,
    verify_with_rows,
    verify_with_seals,
    what,
)

__all__ = ["app"]  # fixture

REAL_LOAD = migrate.load_migrations
ALL_ROWS = "SELECT * FROM region_330109.events ORDER BY notification_id"


def before_0015(scope: str) -> list[migrate.Migration]:
    found = REAL_LOAD(scope)
    # and 0020: the current read model writes the table it makes (the newest version recorded is 20)
    return [m for m in found if m.version < 15 or m.name == "settlement_lines"] if scope == "region" else found


@pytest.fixture(scope="module", autouse=True)
def at_0010() -> Iterator[pytest.MonkeyPatch]:
    """Every region of this module is created and filled before 0015 (autouse: before `store`'s regions)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(migrate, "load_migrations", before_0015)
        yield mp


def as_written_before_0015(conn: psycopg.Connection[Any]) -> None:
    """Give every row and seal the chain hash the recorder wrote before 0015."""
    previous = GENESIS_HASH
    positions = conn.execute(
        "SELECT notification_id, originator_id, originator_version, topic, state FROM region_330109.events "
        "ORDER BY notification_id"
    ).fetchall()
    for position, originator_id, version, topic, state in positions:
        previous = legacy_chain_hash(previous, content(StoredEvent(originator_id, version, topic, bytes(state))))
        conn.execute("UPDATE region_330109.events SET chain_hash = %s WHERE notification_id = %s", (previous, position))
        conn.execute("UPDATE region_330109.seals SET chain_hash = %s WHERE notification_id = %s", (previous, position))


@pytest.fixture(scope="module")
def legacy(app: RegionApplication, store: Store, at_0010: pytest.MonkeyPatch) -> dict[str, Any]:
    """The log as an older store has it, then 0015, then two more events: what each step left."""
    with store.connect_admin() as conn:
        (gap,) = conn.execute("SELECT nextval('region_330109.events_notification_id_seq')").fetchone()
    app.fine("FINE-OLD", hospital="H001", fund="390100", amount=100, on_date=dt.date(2023, 8, 1),
             operator="inspector-1", reason="late filing")  # fmt: skip
    with triggers_off(store) as conn:
        as_written_before_0015(conn)
        before = conn.execute(ALL_ROWS).fetchall()
    assert store.status().region_versions == {"330109": 20}  # 0001..0010 and 0020
    at_0010.undo()
    store.migrate()
    with store.connect_admin() as conn:
        after = conn.execute(ALL_ROWS).fetchall()
        digests = conn.execute("SELECT count(*) FROM region_330109.event_digests").fetchone()[0]
        seal = conn.execute("SELECT through_position, events FROM region_330109.event_digests_seal").fetchall()
    app.fine("FINE-NEW", hospital="H001", fund="390100", amount=200, on_date=dt.date(2023, 8, 2),
             operator="inspector-1", reason="late filing")  # fmt: skip
    catch_up(app)
    return {"gap": gap, "before": before, "after": after, "digests": digests, "seal": seal}


@pytest.fixture
def owner(app: RegionApplication, store: Store, legacy: dict[str, Any]) -> Iterator[psycopg.Connection[Any]]:
    with triggers_off(store) as conn:
        conn.execute("ALTER TABLE region_330109.event_digests DISABLE TRIGGER USER")
        try:
            yield conn
        finally:
            conn.execute("ALTER TABLE region_330109.event_digests ENABLE TRIGGER USER")
    rebuild(app)
    assert verify({"DATABASE_URL": store.location.url})[0] == 0


def test_0015_seals_a_digest_of_every_older_event_and_changes_no_row(
    legacy: dict[str, Any], cli_env: dict[str, str]
) -> None:
    last = legacy["before"][-1][4]
    assert legacy["after"] == legacy["before"]
    assert legacy["digests"] == len(legacy["before"])
    assert legacy["seal"] == [(last, len(legacy["before"]))]
    code, report = verify(cli_env)
    assert (code, report["problems"]) == (0, [])
    assert report["checked"]["events"] == len(legacy["before"]) + 1


@pytest.mark.parametrize(
    ("column", "change"),
    [
        ("recorded_at", "recorded_at - interval '1 day'"),  # not in the old hash
        ("state", "state || ' '::bytea"),
        ("chain_hash", "sha256(chain_hash)"),
    ],
)
def test_an_older_event_changed_in_any_stored_column_is_named(
    owner: psycopg.Connection[Any], cli_env: dict[str, str], column: str, change: str
) -> None:
    (row,) = rows(owner, "notification_id = 20")
    owner.execute(f"UPDATE region_330109.events SET {column} = {change} WHERE notification_id = 20")  # noqa: S608
    try:
        code, report = verify(cli_env)
    finally:
        put_back(owner, [row])

    assert code == 1
    assert report["problems"][0] == (
        f"event at position 20 ({what(row)}) was changed: its stored columns no longer match its hash"
    )


def test_an_older_event_deleted_is_named(owner: psycopg.Connection[Any], cli_env: dict[str, str]) -> None:
    code, report = verify_with_rows(owner, cli_env, removed=[20])

    assert code == 1
    assert "event at position 20 was deleted: migration 0015 sealed a digest of it" in report["problems"]
    assert (
        "event(s) deleted between positions 19 and 21 (position 20 missing): the event at position 21 is intact but "
        "does not chain from the one before it"
    ) in report["problems"]


def test_an_older_event_inserted_in_a_gap_is_named(
    owner: psycopg.Connection[Any], cli_env: dict[str, str], legacy: dict[str, Any]
) -> None:
    gap = legacy["gap"]
    (model,) = rows(owner, "notification_id = %s", gap + 1)
    forged = (model[0], model[1] + 100, *model[2:4], gap, *model[5:])

    code, report = verify_with_rows(owner, cli_env, added=[forged])

    assert code == 1
    assert report["problems"][0] == (
        f"event at position {gap} ({what(forged)}) was inserted: the event after it (position {gap + 1}) chains from "
        "the one before it"
    )


def test_two_older_events_swapped_are_named(owner: psycopg.Connection[Any], cli_env: dict[str, str]) -> None:
    a, b = rows(owner, "notification_id IN (12, 19)")

    code, report = verify_swapped(owner, cli_env, 12, 19)

    assert code == 1
    assert report["problems"][0] == (
        f"events at positions 12 and 19 were swapped ({what(a)} belongs at 12, {what(b)} at 19)"
    )


def test_an_older_seal_deleted_is_named(owner: psycopg.Connection[Any], cli_env: dict[str, str]) -> None:
    position = sealed(owner)[4]

    code, report = verify_with_seals(owner, cli_env, removed=[position])

    assert (code, report["problems"]) == (
        1, [f"seal of position {position} was deleted: the event there ended its transaction"]
    )  # fmt: skip


def test_a_digest_of_0015_deleted_is_named(owner: psycopg.Connection[Any], cli_env: dict[str, str]) -> None:
    saved = owner.execute("SELECT * FROM region_330109.event_digests WHERE notification_id = 20").fetchone()
    owner.execute("DELETE FROM region_330109.event_digests WHERE notification_id = 20")
    try:
        code, report = verify(cli_env)
    finally:
        owner.execute("INSERT INTO region_330109.event_digests VALUES (%s, %s)", saved)

    assert code == 1
    assert report["problems"][0] == (
        "digest of the event at position 20 sealed by migration 0015 was deleted (the event still chains)"
    )
    assert report["problems"][1].startswith("digests of the events before migration 0015 (through position ")
