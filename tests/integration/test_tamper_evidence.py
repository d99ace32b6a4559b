"""`yibao verify` names every kind of tampering a database superuser can do with the triggers off.

The region's year of test_projections_and_verify (settlements, a reversal, a correction, a
look-back, payments, a deduction, a recovery, a fine) is recorded, with a gap in its positions (as
a save that failed after reserving its ids leaves one). Each test changes the rows as the owner,
with the immutability triggers disabled, checks that verify exits 1 and names the class and the
position or row, then puts every row back and checks that verify passes again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from eventsourcing.persistence import StoredEvent
from psycopg import sql

from app.region import RegionApplication
from projections.read_model import catch_up, rebuild
from store.app import Store
from store.chain import event_hash, micros
from tests.integration.test_projections_and_verify import REGION, app, run, triggers_off, verify

__all__ = ["app"]  # fixture

SELECT_ROWS = (
    "SELECT originator_id, originator_version, topic, state, notification_id, recorded_at, chain_hash "
    "FROM region_330109.events WHERE {} ORDER BY notification_id"
)
INSERT_ROW = (
    "INSERT INTO region_330109.events (originator_id, originator_version, topic, state, notification_id, "
    "recorded_at, chain_hash) VALUES (%s, %s, %s, %s, %s, %s, %s)"
)
HEAD = "SELECT max(notification_id) FROM region_330109.events"


@pytest.fixture(scope="module")
def gap(app: RegionApplication, store: Store) -> int:
    """A free position inside the log: ids reserved by a save that never committed, then more events."""
    with store.connect_admin() as conn:
        (free,) = conn.execute("SELECT nextval('region_330109.events_notification_id_seq')").fetchone()
    app.fine("FINE-GAP", hospital="H001", fund="390100", amount=100, on_date=dt.date(2023, 8, 1),
             operator="inspector-1", reason="late filing")  # fmt: skip
    app.fine("FINE-LAST", hospital="H001", fund="390100", amount=200, on_date=dt.date(2023, 8, 2),
             operator="inspector-1", reason="late filing")  # fmt: skip
    catch_up(app)
    return int(free)


def rows(conn: psycopg.Connection[Any], where: str, *params: Any) -> list[tuple[Any, ...]]:
    return conn.execute(sql.SQL(SELECT_ROWS).format(sql.SQL(where)), params).fetchall()  # type: ignore[arg-type]


def put_back(conn: psycopg.Connection[Any], saved: list[tuple[Any, ...]]) -> None:
    conn.execute("DELETE FROM region_330109.events WHERE notification_id = ANY(%s)", ([r[4] for r in saved],))
    for row in saved:
        conn.execute(INSERT_ROW, row)


def sealed(conn: psycopg.Connection[Any]) -> list[int]:
    return [r[0] for r in conn.execute("SELECT notification_id FROM region_330109.seals ORDER BY 1")]


def unsealed(conn: psycopg.Connection[Any]) -> list[int]:
    """The events that do not end their transaction."""
    return [r[0] for r in conn.execute(
        "SELECT notification_id FROM region_330109.events AS e WHERE NOT EXISTS "
        "(SELECT FROM region_330109.seals AS s WHERE s.notification_id = e.notification_id) ORDER BY 1"
    )]  # fmt: skip


def what(row: tuple[Any, ...]) -> str:
    return f"{row[2]}, aggregate {row[0]} v{row[1]}"


def verify_with_rows(
    conn: psycopg.Connection[Any], cli_env: dict[str, str], *, added: Any = (), removed: Any = ()
) -> tuple[int, dict[str, Any]]:
    """Verify with the events at positions `removed` deleted and the rows `added` inserted, then put
    every row back as it was."""
    saved = rows(conn, "notification_id = ANY(%s)", list(removed))
    conn.execute("DELETE FROM region_330109.events WHERE notification_id = ANY(%s)", (list(removed),))
    for row in added:
        conn.execute(INSERT_ROW, row)
    try:
        return verify(cli_env)
    finally:
        conn.execute("DELETE FROM region_330109.events WHERE notification_id = ANY(%s)", ([r[4] for r in added],))
        put_back(conn, saved)


def verify_with_seals(
    conn: psycopg.Connection[Any], cli_env: dict[str, str], *, added: Any = (), removed: Any = ()
) -> tuple[int, dict[str, Any]]:
    """Verify with the seals of positions `removed` deleted and seals added at `added` (naming the
    event there with its hash), then put them back."""
    saved = conn.execute("SELECT * FROM region_330109.seals WHERE notification_id = ANY(%s)", (list(removed),))
    saved_rows = saved.fetchall()
    conn.execute("DELETE FROM region_330109.seals WHERE notification_id = ANY(%s)", (list(removed),))
    conn.execute("INSERT INTO region_330109.seals (notification_id, chain_hash) SELECT notification_id, chain_hash "
                 "FROM region_330109.events WHERE notification_id = ANY(%s)", (list(added),))  # fmt: skip
    try:
        return verify(cli_env)
    finally:
        conn.execute("DELETE FROM region_330109.seals WHERE notification_id = ANY(%s)", (list(added),))
        for seal in saved_rows:
            conn.execute("INSERT INTO region_330109.seals VALUES (%s, %s, %s)", seal)


def verify_swapped(
    conn: psycopg.Connection[Any], cli_env: dict[str, str], a: int, b: int
) -> tuple[int, dict[str, Any]]:
    """Verify with the events at positions `a` and `b` exchanged, then put them back."""
    saved = rows(conn, "notification_id IN (%s, %s)", a, b)
    for position, to in ((a, -1), (b, a), (-1, b)):
        conn.execute("UPDATE region_330109.events SET notification_id = %s WHERE notification_id = %s", (to, position))
    try:
        return verify(cli_env)
    finally:
        put_back(conn, saved)


@pytest.fixture
def owner(app: RegionApplication, store: Store, gap: int) -> Iterator[psycopg.Connection[Any]]:
    with triggers_off(store) as conn:
        yield conn
    rebuild(app)  # verify's catch-up read what a test put in the log
    assert verify({"DATABASE_URL": store.location.url})[0] == 0  # every test leaves the store as it found it


def test_the_untouched_log_verifies(cli_env: dict[str, str], gap: int) -> None:
    assert verify(cli_env)[:1] == (0,)


# --- events -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "change"),
    [
        ("recorded_at", "recorded_at + interval '1 microsecond'"),
        ("originator_version", "originator_version + 1000"),
        ("topic", "'HospitalAccount.Recovered'"),
        ("state", "state || ' '::bytea"),
        ("chain_hash", "sha256(chain_hash)"),
    ],
)
def test_an_event_changed_in_any_stored_column_is_named_with_its_position(
    owner: psycopg.Connection[Any], cli_env: dict[str, str], column: str, change: str
) -> None:
    (row,) = rows(owner, "topic = 'HospitalAccount.Fined' AND convert_from(state, 'UTF8') LIKE '%%FINE-1%%'")
    update = sql.SQL("UPDATE region_330109.events SET {} = {} WHERE notification_id = %s")
    owner.execute(update.format(sql.Identifier(column), sql.SQL(change)), (row[4],))  # type: ignore[arg-type]
    (changed,) = rows(owner, "notification_id = %s", row[4])
    try:
        code, report = verify(cli_env)
    finally:
        put_back(owner, [row])

    assert code == 1
    assert report["problems"][0] == (
        f"event at position {row[4]} ({what(changed)}) was changed: its stored columns no longer match its hash"
    )


def test_an_event_deleted_in_the_middle_of_its_transaction_is_named(
    owner: psycopg.Connection[Any], cli_env: dict[str, str]
) -> None:
    position = next(p for p in unsealed(owner) if p > 10)

    code, report = verify_with_rows(owner, cli_env, removed=[position])

    assert code == 1
    assert report["problems"][0] == (
        f"event(s) deleted between positions {position - 1} and {position + 1} (position {position} missing): the "
        f"event at position {position + 1} is intact but does not chain from the one before it"
    )


def test_an_event_that_ended_its_transaction_deleted_is_named_by_its_seal_too(
    owner: psycopg.Connection[Any], cli_env: dict[str, str]
) -> None:
    position = sealed(owner)[5]

    code, report = verify_with_rows(owner, cli_env, removed=[position])

    assert code == 1
    assert report["problems"][:2] == [
        f"event at position {position} was deleted: its seal remains",
        f"event(s) deleted between positions {position - 1} and {position + 1} (position {position} missing): the "
        f"event at position {position + 1} is intact but does not chain from the one before it",
    ]


@pytest.mark.parametrize("forger", [False, True], ids=["copied-hash", "recomputed-hash"])
def test_an_event_inserted_in_the_middle_is_named_even_with_a_hash_computed_as_the_recorder_does(
    owner: psycopg.Connection[Any], cli_env: dict[str, str], gap: int, forger: bool
) -> None:
    # A copy of the fine FINE-GAP, another version of its hospital's account, in the free position before it.
    (model,) = rows(owner, "notification_id = %s", gap + 1)
    forged = [*model[:1], model[1] + 100, *model[2:4], gap, *model[5:]]
    if forger:
        forged = recomputed(owner, forged, gap, False)

    code, report = verify_with_rows(owner, cli_env, added=[forged])

    assert code == 1
    assert report["problems"][0] == (
        f"event at position {gap} ({what(forged)}) was inserted: the event after it (position {gap + 1}) chains from "
        "the one before it"
    )


def test_an_event_appended_after_the_last_one_is_named(owner: psycopg.Connection[Any], cli_env: dict[str, str]) -> None:
    (last,) = rows(owner, "notification_id = (SELECT max(notification_id) FROM region_330109.events)")
    forged = (last[0], last[1] + 1, *last[2:4], last[4] + 1, last[5], last[6])

    code, report = verify_with_rows(owner, cli_env, added=[forged])

    assert code == 1
    assert report["problems"][0] == (
        f"event at position {forged[4]} ({what(forged)}) was inserted after the last seal: its hash is not one the "
        "recorder wrote"
    )


@pytest.mark.parametrize("distance", [1, 7], ids=["neighbours", "apart"])
def test_two_events_swapped_are_named_with_both_positions(
    owner: psycopg.Connection[Any], cli_env: dict[str, str], distance: int
) -> None:
    a, b = rows(owner, "notification_id IN (%s, %s)", 20, 20 + distance)

    code, report = verify_swapped(owner, cli_env, a[4], b[4])

    assert code == 1
    assert report["problems"][0] == (
        f"events at positions {a[4]} and {b[4]} were swapped ({what(a)} belongs at {a[4]}, {what(b)} at {b[4]})"
    )


# --- seals ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("which", [3, -1], ids=["middle", "last"])
def test_a_seal_deleted_in_the_middle_or_the_last_one_alone_is_named(
    owner: psycopg.Connection[Any], cli_env: dict[str, str], which: int
) -> None:
    position = sealed(owner)[which]

    code, report = verify_with_seals(owner, cli_env, removed=[position])

    last = " (the last seal)" if which == -1 else ""
    assert (code, report["problems"]) == (
        1, [f"seal of position {position} was deleted{last}: the event there ended its transaction"]
    )  # fmt: skip


def test_a_seal_added_in_the_middle_of_a_transaction_is_named(
    owner: psycopg.Connection[Any], cli_env: dict[str, str]
) -> None:
    position = unsealed(owner)[0]

    code, report = verify_with_seals(owner, cli_env, added=[position])

    assert (code, report["problems"]) == (
        1, [f"seal of position {position} was added: the event there does not end its transaction"]
    )  # fmt: skip


# --- a deleted tail ---------------------------------------------------------------------------------


def delete_tail(conn: psycopg.Connection[Any], after: int) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    events = rows(conn, "notification_id > %s", after)
    seals = conn.execute("SELECT * FROM region_330109.seals WHERE notification_id > %s", (after,)).fetchall()
    conn.execute("DELETE FROM region_330109.events WHERE notification_id > %s", (after,))
    conn.execute("DELETE FROM region_330109.seals WHERE notification_id > %s", (after,))
    return events, seals


def put_tail_back(conn: psycopg.Connection[Any], events: list[tuple[Any, ...]], seals: list[tuple[Any, ...]]) -> None:
    put_back(conn, events)
    for seal in seals:
        conn.execute("INSERT INTO region_330109.seals VALUES (%s, %s, %s)", seal)


def test_a_tail_deleted_with_its_seals_is_named_by_the_read_model_that_saw_it(
    owner: psycopg.Connection[Any], cli_env: dict[str, str]
) -> None:
    position = sealed(owner)[-3]
    head = owner.execute(HEAD).fetchone()[0]
    events, seals = delete_tail(owner, position)
    try:
        code, report = verify(cli_env)
    finally:
        put_tail_back(owner, events, seals)

    assert code == 1
    assert report["problems"][0] == (
        f"read model has followed the log to position {head}, but the log ends at position {position}: events after "
        f"position {position} were deleted"
    )


def test_a_tail_deleted_with_its_seals_and_the_read_model_rebuilt_leaves_a_whole_log(
    app: RegionApplication, owner: psycopg.Connection[Any], cli_env: dict[str, str]
) -> None:
    # Nothing in the database tells: only a checkpoint kept outside does (tests/e2e/test_checkpoint.py).
    events, seals = delete_tail(owner, sealed(owner)[-3])
    try:
        assert run(cli_env, "projections", "rebuild", "--region", REGION).exit_code == 0
        code, _ = verify(cli_env)
    finally:
        put_tail_back(owner, events, seals)
        rebuild(app)

    assert code == 0


# --- the read model ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ("DELETE FROM region_330109.journal WHERE kind = 'fine' AND ref = 'FINE-1' AND leg = 1",
         "read model 'journal': row (position {fine}, leg 1) is missing (deleted): a fresh replay of the log has it"),
        ("UPDATE region_330109.journal SET party = 'H999' WHERE kind = 'fine' AND ref = 'FINE-1' AND leg = 1",
         "read model 'journal': row (position {fine}, leg 1) was changed: party H999 where a fresh replay gives H001"),
        ("DELETE FROM region_330109.settlements WHERE setl_id = 'S-2'",
         "read model 'settlements': row S-2 is missing (deleted): a fresh replay of the log has it"),
        ("UPDATE region_330109.settlements SET setl_time = '2023-02-11' WHERE setl_id = 'S-2'",
         "read model 'settlements': row S-2 was changed: setl_time 2023-02-11 where a fresh replay gives 2023-02-10"),
        ("DELETE FROM region_330109.member_usage WHERE psn_no = 'M-1'",
         "read model 'member_usage': row M-1/2023 is missing (deleted): a fresh replay of the log has it"),
        ("INSERT INTO region_330109.transfers VALUES ('T-X', 'out', 'M-1', '330109', '110105', '2023-05-01', 100, 1, "
         "'released', '2023-05-01', 1)",
         "read model 'transfers': row T-X out (from 330109) is not in a fresh replay of the log (added by hand)"),
    ],
    ids=["journal-deleted", "journal-changed", "settlement-deleted", "settlement-changed", "usage-deleted",
         "transfer-added"],
)  # fmt: skip
def test_a_read_model_row_changed_deleted_or_added_is_named(
    app: RegionApplication, store: Store, cli_env: dict[str, str], gap: int, change: str, problem: str
) -> None:
    with store.connect_admin() as conn:
        fine = conn.execute("SELECT notification_id FROM region_330109.journal WHERE ref = 'FINE-1'").fetchone()[0]
        conn.execute(change)
        try:
            code, report = verify(cli_env)
        finally:
            rebuild(app)

    assert (code, report["problems"]) == (1, [problem.format(fine=fine)])
    assert verify(cli_env)[0] == 0


def test_a_read_model_position_moved_past_the_log_is_named(
    app: RegionApplication, store: Store, cli_env: dict[str, str], gap: int
) -> None:
    with store.connect_admin() as conn:
        head = conn.execute(HEAD).fetchone()[0]
        conn.execute("UPDATE region_330109.notification_tracking SET notification_id = notification_id + 50")
        try:
            code, report = verify(cli_env)
        finally:
            rebuild(app)

    assert (code, report["problems"]) == (1, [
        f"read model has followed the log to position {head + 50}, but the log ends at position {head}: events "
        f"after position {head} were deleted"
    ])  # fmt: skip


# --- forgers who know the hashes -------------------------------------------------------------------


def recomputed(conn: psycopg.Connection[Any], row: tuple[Any, ...], position: int, sealed: bool) -> list[Any]:
    """`row` at `position`, its hashes computed as the recorder does after the event before it."""
    (before,) = rows(conn, "notification_id = (SELECT max(notification_id) FROM region_330109.events "
                           "WHERE notification_id < %s)", position)  # fmt: skip
    event = StoredEvent(row[0], row[1], row[2], bytes(row[3]))
    return [*row[:4], position, row[5], event_hash(bytes(before[6]), event, position, micros(row[5]), sealed)]


def test_an_event_replaced_with_its_own_hashes_recomputed_is_named(
    owner: psycopg.Connection[Any], cli_env: dict[str, str]
) -> None:
    position = unsealed(owner)[3]
    (row,) = rows(owner, "notification_id = %s", position)
    forged = recomputed(owner, (*row[:3], bytes(row[3]) + b" ", *row[4:]), position, False)

    code, report = verify_with_rows(owner, cli_env, removed=[position], added=[forged])

    assert code == 1
    assert report["problems"][0] == (
        f"event at position {position} was replaced: the event at position {position + 1} does not chain from it "
        "(its hash was recomputed)"
    )


def test_an_event_appended_with_its_hashes_recomputed_is_named_by_the_missing_seal(
    owner: psycopg.Connection[Any], cli_env: dict[str, str]
) -> None:
    (last,) = rows(owner, "notification_id = (SELECT max(notification_id) FROM region_330109.events)")
    forged = recomputed(owner, (last[0], last[1] + 1, *last[2:]), last[4] + 1, False)

    code, report = verify_with_rows(owner, cli_env, added=[forged])

    assert (code, report["problems"][:1]) == (1, [
        f"events after position {last[4]} (the last sealed) up to position {forged[4]} have no seal: the recorder "
        "did not write them"
    ])  # fmt: skip


def test_a_seal_whose_hash_was_changed_is_named(owner: psycopg.Connection[Any], cli_env: dict[str, str]) -> None:
    position = sealed(owner)[2]
    update = "UPDATE region_330109.seals SET chain_hash = sha256(chain_hash) WHERE notification_id = %s"
    owner.execute(update, (position,))
    (stored,) = rows(owner, "notification_id = %s", position)
    try:
        code, report = verify(cli_env)
    finally:
        owner.execute(update.replace("sha256(chain_hash)", "%s"), (stored[6], position))

    assert (code, report["problems"]) == (1, [
        f"seal of position {position} differs from the event's chain hash: the hash was rewritten"
    ])  # fmt: skip


def test_a_read_model_position_deleted_is_named_not_retried(
    app: RegionApplication, store: Store, cli_env: dict[str, str], gap: int
) -> None:
    with store.connect_admin() as conn:
        conn.execute("DELETE FROM region_330109.notification_tracking")
        try:
            code, report = verify(cli_env)
        finally:
            rebuild(app)

    assert code == 1
    assert report["problems"][0].startswith("read model: the page after position 0 clashes with rows already written")
    assert verify(cli_env)[0] == 0
