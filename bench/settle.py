"""Bulk settlement throughput, against one claim per transaction measured in the same run.

    .venv/bin/python -m bench.settle [--claims 30000] [--runs 3] [--baseline-claims 1500]

Each run gets a fresh database on the server yibao would use (DATABASE_URL, or the embedded
one under YIBAO_HOME) with a synthetic region-year loaded (members, policy, contributions);
the timed part is `settle_lines` over the claims file, everything durably committed.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.figures import figure, machine
from bulk import batch
from bulk.collector import after_settled_batch
from bulk.lines import read_lines
from commands.synthetic import Scenario, generate, load
from store.app import Store
from store.server import ServerLocation, create_database, drop_database, locate


def prepare(server: ServerLocation, name: str, files: Path) -> Store:
    store = Store(ServerLocation(kind="external", url=create_database(server.url, name)))
    store.migrate()
    load(store, files)
    return store


@contextmanager
def settled_region(
    server: ServerLocation, scenario: Scenario, name: str, *, keep: bool = False
) -> Iterator[tuple[Store, Path, int, float]]:
    """A fresh database `name` with the scenario's region-year loaded and its claims settled in
    bulk: (the store, the folder of its files, claims settled, seconds settling). Dropped on the
    way out unless `keep`."""
    with tempfile.TemporaryDirectory() as folder:
        files = Path(folder)
        generate(scenario, files)
        store = prepare(server, name, files)
        try:
            settled, seconds = settle(store, files / "claims.jsonl", limit=None, batch_size=2_000)
            yield store, files, settled, seconds
        finally:
            store.close()
            if not keep:
                drop_database(server.url, name)


def settle(store: Store, claims: Path, *, limit: int | None, batch_size: int) -> tuple[int, float]:
    with claims.open("rb") as stream:
        lines = ((n, raw) for n, raw in read_lines(stream) if limit is None or n <= limit)
        started = time.perf_counter()
        count = sum(
            1
            for result in batch.settle_lines(
                store,
                lines,
                batch_size=batch_size,
                after_batch=after_settled_batch if batch_size > 1 else None,  # as `claims settle`
            )
            if result.status == "settled"
        )
        return count, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--claims", type=int, default=30_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--baseline-claims", type=int, default=1_500)
    parser.add_argument("--batch", type=int, default=2_000)
    args = parser.parse_args()
    gc.set_threshold(100_000, 50, 100)  # as the CLI does
    server = locate()
    scenario = Scenario(members=max(1_000, args.claims // 10), claims=args.claims, seed=11)
    with tempfile.TemporaryDirectory() as folder:
        files = Path(folder)
        generate(scenario, files)
        bulk, single = [], []
        for run in range(args.runs):
            for kind, limit, size, results in (
                ("bulk", None, args.batch, bulk),
                ("one claim per transaction", args.baseline_claims, 1, single),
            ):
                name = f"bench_{os.getpid()}_{run}_{size}"
                store = prepare(server, name, files)
                try:
                    count, seconds = settle(store, files / "claims.jsonl", limit=limit, batch_size=size)
                finally:
                    store.close()
                    drop_database(server.url, name)
                results.append(count / seconds)
                print(f"run {run + 1} {kind}: {count:,} claims in {seconds:.1f} s = {count / seconds:,.0f} claims/s")
    print()
    print(f"{machine(server.describe())}; {args.claims:,} claims, {scenario.members:,} members")
    print(figure("bulk settlement", bulk, "claims/s"))
    print(figure("one claim per transaction (baseline)", single, "claims/s"))
    print(f"ratio bulk / baseline (medians): {statistics.median(bulk) / statistics.median(single):.1f}x")


if __name__ == "__main__":
    main()
