"""Online settlement: one claim per transaction from several concurrent clients.

    .venv/bin/python -m bench.online [--clients 4] [--claims-each 1500] [--runs 3]

Each run gets a fresh database with a synthetic region-year loaded (members, policy,
contributions). Each client is its own process with its own connections; the claims file is
dealt to the clients line by line, so clients do settle claims of the same members at the same
time (and conflict, and retry, as real hospitals' clients would). Every claim is durably
committed before its latency is taken. Prints p50, p99 and max latency and claims per second.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import tempfile
import time
from pathlib import Path

from bench.figures import figure, machine, percentile
from bench.settle import prepare
from bulk import batch
from bulk.lines import read_lines
from commands.synthetic import Scenario, generate
from store.app import Store
from store.server import ServerLocation, drop_database, locate


def client(url: str, claims: Path, index: int, clients: int, count: int, start: float, out: Path) -> None:
    store = Store(ServerLocation(kind="external", url=url))
    with claims.open("rb") as stream:
        mine = [(n, raw) for n, raw in read_lines(stream) if n % clients == index][:count]
    latencies = []
    store.region_codes()
    while time.time() < start:  # every client starts at the same moment
        time.sleep(0.001)
    for line in mine:
        began = time.perf_counter()
        for result in batch.settle_lines(store, [line], batch_size=1):
            assert result.status == "settled", result.output
        latencies.append(time.perf_counter() - began)
    store.close()
    out.write_text("\n".join(f"{s:.6f}" for s in latencies))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--claims-each", type=int, default=1_500)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    server = locate()
    total = args.clients * args.claims_each
    scenario = Scenario(members=max(1_000, total // 10), claims=total, seed=13)
    p50s, p99s, rates = [], [], []
    context = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as folder:
        files = Path(folder)
        generate(scenario, files)
        for run in range(args.runs):
            name = f"bench_online_{os.getpid()}_{run}"
            store = prepare(server, name, files)
            url = store.location.url
            store.close()
            try:
                start = time.time() + 3  # time for the clients to start and read their lines
                workers = [
                    context.Process(
                        target=client,
                        args=(url, files / "claims.jsonl", i, args.clients, args.claims_each, start, files / f"lat{i}"),
                    )
                    for i in range(args.clients)
                ]
                for w in workers:
                    w.start()
                for w in workers:
                    w.join()
                    assert w.exitcode == 0
                wall = time.time() - start
            finally:
                drop_database(server.url, name)
            latencies = [float(x) for i in range(args.clients) for x in (files / f"lat{i}").read_text().split()]
            p50, p99 = percentile(latencies, 0.50) * 1000, percentile(latencies, 0.99) * 1000
            p50s.append(p50)
            p99s.append(p99)
            rates.append(len(latencies) / wall)
            print(
                f"run {run + 1}: {len(latencies):,} claims from {args.clients} clients in {wall:.1f} s = "
                f"{len(latencies) / wall:,.0f} claims/s; p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
                f"max {max(latencies) * 1000:.1f} ms"
            )
    print()
    print(f"{machine(server.describe())}; {args.clients} clients, one claim per transaction")
    print(figure("p50 latency", p50s, "ms", digits=1))
    print(figure("p99 latency", p99s, "ms", digits=1))
    print(figure("throughput", rates, "claims/s"))


if __name__ == "__main__":
    main()
