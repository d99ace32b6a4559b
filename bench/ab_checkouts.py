"""`claims settle` of one file by two checkouts, alternated, each in a fresh copy of its own
template database: claims/s, CPU of the process tree a claim, peak RSS and PSS of the tree.

    .venv/bin/python -m bench.ab_checkouts FILE CLAIMS OLD_WORKTREE OLD_TEMPLATE_URL NEW_TEMPLATE_URL
        [--rounds 2] [-- settle options, default: --workers 2 --grouped]

Each template holds a region-year loaded by its own checkout (`commands.synthetic.load`) from
the same files (written by one checkout's `generate`), so both settle the same workload.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from bench.cli_settle import TreeMemory, copy_database
from store.server import with_dbname


def settle(head: list[str], url: str, file: str, options: list[str]) -> tuple[float, float, int, int]:
    """(wall s, CPU s, peak RSS MB, peak PSS MB) of one run."""
    args = [sys.executable, *head, "claims", "settle", file, *options, "--out", "/dev/null"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.Popen(args, env={**os.environ, "DATABASE_URL": url}, cwd="/tmp")
    memory = TreeMemory(proc.pid)
    if proc.wait() != 0:
        raise SystemExit(f"{' '.join(args)} failed")
    wall = time.perf_counter() - started
    rss, pss = memory.stop()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime, rss, pss


def main() -> None:
    parser = argparse.ArgumentParser()
    for name in ("file", "claims", "old_worktree", "old_template", "new_template"):
        parser.add_argument(name)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("options", nargs="*", default=["--workers", "2", "--grouped"])
    a = parser.parse_args()
    runner = str(Path(__file__).with_name("run_checkout.py"))
    sides = {"old": ([runner, a.old_worktree, "commands"], a.old_template), "new": (["-m", "commands"], a.new_template)}
    for _ in range(a.rounds):
        for side, (head, template) in sides.items():
            dbname = template.rsplit("dbname=", 1)[-1].split()[0]
            url = copy_database(with_dbname(template, "postgres"), dbname, f"{dbname}_run")
            wall, cpu, rss, pss = settle(head, url, a.file, a.options)
            n = int(a.claims)
            print(f"{side}: {n / wall:,.0f} claims/s, {cpu / n * 1e6:.0f} µs CPU a claim, peak RSS {rss} MB, "
                  f"PSS {pss} MB", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
