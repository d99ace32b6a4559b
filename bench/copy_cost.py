"""What COPY into the events table costs the server a row, and what each of its choices adds.

    .venv/bin/python -m bench.copy_cost SOURCE_URL [--region 330109] [--events 200000] [--runs 3]

SOURCE_URL is a database holding a settled region (a `bench.cli_settle` copy, or the demo's).
Its latest `--events` events are read once, in COPY's binary format, and copied into tables of
the events table's shape in a scratch database next to it, each COPY in a transaction rolled
back (so every run starts from the same empty table). The data is sent as read, so the time of
a COPY is the server's: parsing, compressing, writing the heap, WAL and every index. Variants:

- as stored: every index and the storage of migration 0036 (payloads not compressed);
- compressed: the same with the storage before 0036 (pglz past 2 KB);
- without the partial indexes (the four on topics the relays and the console read);
- without the primary key (aggregate id and version: optimistic concurrency needs it);
- a plain table: no index, payloads not compressed; and the same compressed;
- unlogged: a plain table without WAL.
"""

from __future__ import annotations

import argparse
import re
import statistics
import time

import psycopg
from psycopg import sql

from bench.figures import figure
from store.server import create_database, drop_database, with_dbname

SCRATCH = "bench_copy_cost"
UNCOMPRESSED = "ALTER TABLE {t} SET (toast_tuple_target = 8160); ALTER TABLE {t} ALTER COLUMN state SET STORAGE MAIN;"
COMPRESSED = "ALTER TABLE {t} RESET (toast_tuple_target); ALTER TABLE {t} ALTER COLUMN state SET STORAGE EXTENDED;"
PLAIN = "CREATE {unlogged} TABLE {t} (LIKE source_shape INCLUDING DEFAULTS);"
VARIANTS = {
    "as stored (migration 0036)": ["CREATE TABLE {t} (LIKE source_shape INCLUDING ALL);", UNCOMPRESSED],
    "compressed (before 0036)": ["CREATE TABLE {t} (LIKE source_shape INCLUDING ALL);", COMPRESSED],
    "without the partial indexes": [
        "CREATE TABLE {t} (LIKE source_shape INCLUDING DEFAULTS);", UNCOMPRESSED,
        "ALTER TABLE {t} ADD PRIMARY KEY (originator_id, originator_version);",
        "CREATE UNIQUE INDEX ON {t} (notification_id);",
    ],
    "without the primary key": [
        "CREATE TABLE {t} (LIKE source_shape INCLUDING DEFAULTS);", UNCOMPRESSED,
        "CREATE UNIQUE INDEX ON {t} (notification_id);",
    ],
    "plain table, not compressed": [PLAIN.replace("{unlogged}", ""), UNCOMPRESSED],
    "plain table, compressed": [PLAIN.replace("{unlogged}", ""), COMPRESSED],
    "unlogged plain table, not compressed": [PLAIN.replace("{unlogged}", "UNLOGGED"), UNCOMPRESSED],
}  # fmt: skip
COLUMNS = "originator_id, originator_version, topic, state, notification_id, recorded_at, chain_hash"


def read_events(url: str, region: str, events: int) -> bytes:
    """The latest events of the region, as COPY's binary format."""
    query = sql.SQL("COPY (SELECT {} FROM {} ORDER BY notification_id DESC LIMIT {}) TO STDOUT (FORMAT BINARY)")
    statement = query.format(sql.SQL(COLUMNS), sql.Identifier(f"region_{region}", "events"), sql.Literal(events))
    with psycopg.connect(url) as conn, conn.cursor() as cur, cur.copy(statement) as copy:
        return b"".join(bytes(block) for block in copy)


def copy_seconds(conn: psycopg.Connection, table: str, data: bytes) -> float:
    """One COPY of `data` into `table`, rolled back: its wall time (the server's)."""
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(sql.Identifier(table), sql.SQL(COLUMNS))
    with conn.transaction(force_rollback=True), conn.cursor() as cur:
        began = time.perf_counter()
        with cur.copy(statement) as copy:
            for start in range(0, len(data), 1 << 20):
                copy.write(data[start : start + (1 << 20)])
        return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source_url")
    parser.add_argument("--region", default="330109")
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    data = read_events(args.source_url, args.region, args.events)
    with psycopg.connect(args.source_url) as conn:
        shape = conn.execute(
            sql.SQL("SELECT count(*) FROM (SELECT 1 FROM {} ORDER BY notification_id DESC LIMIT %s) AS e").format(
                sql.Identifier(f"region_{args.region}", "events")
            ),
            (args.events,),
        ).fetchone()
    rows = shape[0] if shape else 0
    print(f"{rows:,} events, {len(data) / rows:,.0f} bytes a row in COPY's binary format")
    scratch = create_database(with_dbname(args.source_url, "postgres"), SCRATCH)
    try:
        with psycopg.connect(scratch, autocommit=True) as conn:
            _make_tables(conn, args.source_url, args.region)
            seconds: dict[str, list[float]] = {name: [] for name in VARIANTS}
            for _ in range(args.runs):  # alternated: each run copies into every variant once
                for index, name in enumerate(VARIANTS):
                    seconds[name].append(copy_seconds(conn, f"v{index}", data))
        for name, values in seconds.items():
            print(figure(f"COPY into {name}", [s / rows * 1e6 for s in values], "µs a row", digits=1))
        baseline = statistics.median(seconds["as stored (migration 0036)"])
        print(f"compression before 0036 cost {statistics.median(seconds['compressed (before 0036)']) / baseline:.2f}x")
    finally:
        drop_database(with_dbname(args.source_url, "postgres"), SCRATCH)


def _make_tables(conn: psycopg.Connection, source_url: str, region: str) -> None:
    """The source's events table, its columns, indexes and storage (by its definition as
    migrations make it), and each variant of it."""
    with psycopg.connect(source_url) as source:
        indexes = [
            row[0]
            for row in source.execute(
                "SELECT indexdef FROM pg_indexes WHERE schemaname = %s AND tablename = 'events'", (f"region_{region}",)
            )
        ]
    conn.execute(
        "CREATE TABLE source_shape (originator_id uuid NOT NULL, originator_version bigint NOT NULL, "
        "topic text NOT NULL, state bytea NOT NULL, notification_id bigint NOT NULL, "
        "recorded_at timestamptz NOT NULL, chain_hash bytea NOT NULL)"
    )
    for definition in indexes:  # the same indexes, on the shape (names chosen by the server)
        conn.execute(re.sub(r" INDEX \S+ ON \S+ ", " INDEX ON source_shape ", definition))
    for index, statements in enumerate(VARIANTS.values()):
        for statement in statements:
            conn.execute(statement.format(t=f"v{index}"))


if __name__ == "__main__":
    main()
