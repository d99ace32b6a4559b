"""`yibao claims settle` of a city-sized file through the CLI: throughput and peak memory.

    .venv/bin/python -m bench.cli_settle [--members 200000] [--claims 1000000] [--runs 1]
        [--batch-size 2000] [--baseline-claims 5000]

A synthetic region-year (members, policy, contributions) is loaded once into a template
database; each run settles the whole claims file in a fresh copy of it, with `yibao claims
settle FILE --out /dev/null` as its own process (everything durably committed), and reports
its wall time and its peak resident memory (the child's own rusage). The baseline, measured in
the same run on another fresh copy, settles the first `--baseline-claims` lines one claim per
transaction (`--batch-size 1`). Both include the CLI's start (about a second).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from psycopg import sql

from bench.figures import figure
from commands.synthetic import Scenario, generate, load
from store.app import Store
from store.server import ServerLocation, create_database, drop_database, locate, with_dbname


def copy_database(url: str, template: str, name: str) -> str:
    """A fresh database with the template's contents (a file-level copy: seconds, not a reload)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template)))
    return with_dbname(url, name)


def settle(url: str, claims: Path, batch_size: int) -> tuple[float, int, int]:
    """Run the CLI once: (seconds, peak RSS in MB, lines settled)."""
    yibao = Path(sys.executable).with_name("yibao")
    env = {**os.environ, "DATABASE_URL": url}
    began = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        process = subprocess.Popen(
            [str(yibao), "claims", "settle", str(claims), "--batch-size", str(batch_size)],
            stdout=out,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - began
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            raise SystemExit(f"yibao claims settle exited with {process.returncode}")
        out.seek(0)
        settled = sum(1 for line in out if b'"status":"settled"' in line.replace(b" ", b""))
    return seconds, usage.ru_maxrss // 1024, settled


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=200_000)
    parser.add_argument("--claims", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=2_000)
    parser.add_argument("--baseline-claims", type=int, default=5_000)
    args = parser.parse_args()
    server = locate()
    scenario = Scenario(members=args.members, claims=args.claims, seed=23)
    template = f"bench_cli_template_{os.getpid()}"
    rates, peaks, baseline = [], [], []
    with tempfile.TemporaryDirectory() as folder:
        files = Path(folder)
        began = time.perf_counter()
        generate(scenario, files)
        store = Store(ServerLocation(kind="external", url=create_database(server.url, template)))
        try:
            store.migrate()
            load(store, files, scenario.year)
        finally:
            store.close()
        print(f"loaded {args.members:,} members and their contributions in {time.perf_counter() - began:.0f} s")
        head = files / "baseline.jsonl"
        with (files / "claims.jsonl").open("rb") as source, head.open("wb") as target:
            for _, line in zip(range(args.baseline_claims), source, strict=False):
                target.write(line)
        try:
            for run in range(args.runs):
                for kind, claims, size in (("bulk", files / "claims.jsonl", args.batch_size), ("baseline", head, 1)):
                    name = f"{template}_{run}_{size}"
                    url = copy_database(server.url, template, name)
                    try:
                        seconds, peak, settled = settle(url, claims, size)
                    finally:
                        drop_database(server.url, name)
                    (rates if kind == "bulk" else baseline).append(settled / seconds)
                    if kind == "bulk":
                        peaks.append(peak)
                    print(
                        f"run {run + 1} {kind} (batch size {size}): {settled:,} claims settled in {seconds:.1f} s = "
                        f"{settled / seconds:,.0f} claims/s, peak RSS {peak} MB"
                    )
        finally:
            drop_database(server.url, template)
    print()
    print(f"server: {server.describe()}; {os.cpu_count()} cores; {args.claims:,} claims, {args.members:,} members")
    print(figure("yibao claims settle", rates, "claims/s"))
    print(figure("peak RSS", peaks, "MB"))
    print(figure("one claim per transaction (baseline)", baseline, "claims/s"))
    print(f"ratio bulk / baseline (medians): {statistics.median(rates) / statistics.median(baseline):.1f}x")


if __name__ == "__main__":
    main()
