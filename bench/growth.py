"""Growth: bulk settlement on an empty store against the same work on a store that already holds
a large event log.

    .venv/bin/python -m bench.growth [--claims 30000] [--history 300000] [--filler 20000000]

One fresh database. First `--claims` claims of a 2023 region-year are settled (the store is
nearly empty: the "empty" figure). Then `--history` more claims of 2023 are settled to grow the
log, `--filler` events of other aggregates (2,000,000 individual accounts credited ten times
each) are written with SQL to bring the log to city size, the table is vacuumed and analysed as
autovacuum would, and finally `--claims` claims of 2024 for the same members (their accounts
carry the 2023 history) are settled: the "grown" figure. Both in batches of 2,000, everything
durable. The filler takes a few minutes and about 6 GB of disk; `--filler 0` skips it.
"""

from __future__ import annotations

import argparse
import gc
import os
import tempfile
import time
from pathlib import Path

import psycopg
from psycopg import sql

from bench.figures import machine
from bench.settle import settle
from bulk import batch
from bulk.collector import after_settled_batch
from bulk.lines import read_lines
from commands.synthetic import Scenario, generate, load
from store.app import Store
from store.server import ServerLocation, create_database, drop_database, locate


def fill(url: str, schema: str, events: int, per_aggregate: int = 10, chunk: int = 2_000_000) -> None:
    """`events` more events of aggregates the settlement never reads, written in key order so that
    the indexes are built quickly, with placeholder chain hashes (this store is never verified)."""
    statement = sql.SQL(
        "INSERT INTO {} (originator_id, originator_version, topic, state, chain_hash) "
        "SELECT id, version, 'IndividualAccount.Credited', convert_to("
        '\'{{"ref":"filler:\' || g || \'","kind":"contribution","amount":100,'
        "\"timestamp\":\"2023-06-01T00:00:00+00:00\"}}', 'UTF8'), '\\x00'::bytea "
        "FROM (SELECT g, md5('filler:' || (g / {})::text)::uuid AS id, mod(g, {}) + 1 AS version "
        "FROM generate_series(%s::bigint, %s::bigint) AS g) AS filler ORDER BY id, version"
    ).format(sql.Identifier(schema, "events"), per_aggregate, per_aggregate)
    with psycopg.connect(url, autocommit=True) as conn:
        for start in range(0, events, chunk):
            conn.execute(statement, (start, min(events, start + chunk) - 1))
            print(f"  filler: {min(events, start + chunk):,} of {events:,} events", flush=True)
        conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(sql.Identifier(schema, "events")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--claims", type=int, default=30_000)
    parser.add_argument("--history", type=int, default=300_000)
    parser.add_argument("--filler", type=int, default=20_000_000)
    args = parser.parse_args()
    gc.set_threshold(100_000, 50, 100)  # as the CLI does
    server = locate()
    members = max(1_000, args.claims // 10)
    name = f"bench_growth_{os.getpid()}"
    store = Store(ServerLocation(kind="external", url=create_database(server.url, name)))
    try:
        store.migrate()
        with tempfile.TemporaryDirectory() as folder:
            first, history, later = (Path(folder) / n for n in ("first", "history", "later"))
            generate(Scenario(members=members, claims=args.claims, seed=21), first)
            generate(Scenario(members=members, claims=args.history, seed=22), history)
            generate(Scenario(members=members, claims=args.claims, seed=23, year=2024), later)
            load(store, first, 2023)
            count, seconds = settle(store, first / "claims.jsonl", limit=None, batch_size=2_000)
            empty = count / seconds
            print(f"empty store: {count:,} claims in {seconds:.1f} s = {empty:,.0f} claims/s")
            # The history file's claim ids follow the first file's (same region and year): skip
            # those the first file settled, so every history line is a new settlement.
            with (history / "claims.jsonl").open("rb") as stream:
                lines = ((n, raw) for n, raw in read_lines(stream) if n > args.claims)
                for _ in batch.settle_lines(store, lines, batch_size=2_000, after_batch=after_settled_batch):
                    pass
            app = store.region("330109")
            if args.filler:
                began = time.perf_counter()
                fill(store.location.url, app.factory.datastore.schema, args.filler)  # type: ignore[attr-defined]
                print(f"filler: {args.filler:,} events in {time.perf_counter() - began:.0f} s")
            events = app.recorder.max_notification_id() or 0
            load(store, later, 2024)
            count, seconds = settle(store, later / "claims.jsonl", limit=None, batch_size=2_000)
            grown = count / seconds
            print(f"store of {events:,} events: {count:,} claims in {seconds:.1f} s = {grown:,.0f} claims/s")
    finally:
        store.close()
        drop_database(server.url, name)
    print()
    print(f"{machine(server.describe())}; {members:,} members")
    print(f"growth: {grown / empty:.2f} of the empty-store speed with {events:,} events stored (target: at least 0.80)")


if __name__ == "__main__":
    main()
