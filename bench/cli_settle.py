"""`yibao claims settle` of a city-sized file through the CLI: throughput and peak memory.

    .venv/bin/python -m bench.cli_settle [--members 200000] [--claims 1000000] [--runs 1]
        [--batch-size 2000] [--workers default,1] [--baseline-claims 5000]

A synthetic region-year (members, policy, contributions) is loaded once into a template
database; each run settles the whole claims file in a fresh copy of it, with `yibao claims
settle FILE --workers N --out /dev/null` as its own process tree (everything durably
committed), once for each entry of `--workers` (`N`, or `N@B` for N workers with batches of B
lines instead of `--batch-size`; a trailing `g` adds `--grouped`, as in `2@1000g`; `default`
runs it with no options, as a user would: the settings the issues' targets name), and reports
its wall time, the machine's busy share, its CPU (its own processes', and the rest of the
machine's: the server's), where each process's time went (`app.stages`: reading lines, settling,
waiting for the write lock, COPY, commit, reporting results) and its peak memory:
the largest sum, sampled every 0.1 s, over the command and its worker processes, of resident
memory (RSS) and of proportional memory (PSS, which counts a page shared between processes
once). The baseline, measured in the same run on another fresh copy, settles the first
`--baseline-claims` lines one claim per transaction (`--batch-size 1`). Both include the CLI's
start (about a second).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import NamedTuple

import psycopg
from psycopg import sql

from bench.figures import figure, machine
from commands.synthetic import Scenario, generate, load
from store.app import Store
from store.server import ServerLocation, create_database, drop_database, locate, with_dbname


def copy_database(url: str, template: str, name: str) -> str:
    """A fresh database with the template's contents (a file-level copy: seconds, not a reload)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template)))
    return with_dbname(url, name)


class TreeMemory:
    """The peaks of the summed memory of a process and its children (from /proc): resident
    (RSS, which counts a page shared by several processes, such as library code, in each) and
    proportional (PSS, which splits a shared page between them: what the tree really holds)."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak_rss_kb, self.peak_pss_kb = pid, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.1):
            tree = [self.pid, *_children(self.pid)]
            self.peak_rss_kb = max(self.peak_rss_kb, sum(_kb(f"/proc/{p}/status", "VmRSS:") for p in tree))
            self.peak_pss_kb = max(self.peak_pss_kb, sum(_kb(f"/proc/{p}/smaps_rollup", "Pss:") for p in tree))

    def stop(self) -> tuple[int, int]:
        """(peak RSS, peak PSS) in MB."""
        self._stop.set()
        self._thread.join()
        return self.peak_rss_kb // 1024, self.peak_pss_kb // 1024


def _children(pid: int) -> list[int]:
    try:
        found = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []
    return found + [g for c in found for g in _children(c)]


def _kb(path: str, field: str) -> int:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class Run(NamedTuple):
    seconds: float
    rss: int  # peak RSS of the process tree, MB
    pss: int  # peak PSS of the process tree, MB
    settled: int  # lines settled
    cli_cpu: float  # CPU seconds of the command and its worker processes
    other_cpu: float  # CPU seconds of the rest of the machine meanwhile: the server, mostly

    @property
    def busy_share(self) -> float:
        """How busy the machine's cores were during the run, 0 to 1 (all processes counted)."""
        return (self.cli_cpu + self.other_cpu) / (self.seconds * (os.cpu_count() or 1))


def machine_busy() -> float:
    """CPU seconds the whole machine has spent busy since boot (/proc/stat: all but idle and iowait)."""
    ticks = [int(t) for t in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def settle(
    url: str, claims: Path, batch_size: int, workers: int = 1, grouped: bool = False, stages: Path | None = None
) -> Run:
    """Run the CLI once. Its CPU is its own and its waited-for children's (os.wait4); the rest of
    the machine's busy time meanwhile is the server's (backends, WAL writer, checkpointer), and
    this process's sampling, a few tenths of a second. With `stages`, each of its processes
    appends where its time went to that file (`app.stages`)."""
    yibao = Path(sys.executable).with_name("yibao")
    env = {**os.environ, "DATABASE_URL": url, **({"YIBAO_STAGES": str(stages)} if stages else {})}
    command = [str(yibao), "claims", "settle", str(claims)]
    if workers:  # 0: the command's default flags (it chooses by the file's size)
        command += ["--batch-size", str(batch_size), "--workers", str(workers)]
    busy = machine_busy()
    began = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        process = subprocess.Popen(
            command + (["--grouped"] if grouped else []),
            stdout=out,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        memory = TreeMemory(process.pid)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - began
        busy = machine_busy() - busy
        # Sampled only: the child's own ru_maxrss starts from this process's size at the fork
        # before its exec (measured: 238 MB reported for a run whose samples never passed 60).
        rss, pss = memory.stop()
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            raise SystemExit(f"yibao claims settle exited with {process.returncode}")
        out.seek(0)
        settled = sum(1 for line in out if b'"status":"settled"' in line.replace(b" ", b""))
    cli_cpu = usage.ru_utime + usage.ru_stime
    return Run(seconds, rss, pss, settled, cli_cpu, max(0.0, busy - cli_cpu))


def where_time_went(stages: Path, seconds: float) -> list[str]:
    """One line a process of the run: its CPU and the wall seconds of each stage (`app.stages`),
    and what the stages leave of the run's wall time, then its counts (events read). Stages of
    another thread (`thread:`) overlap the main thread's and are not subtracted."""
    lines = []
    for report in sorted(map(json.loads, stages.read_text().splitlines()), key=lambda r: r["role"]):
        counts = {k.removeprefix("count:"): v for k, v in report.items() if k.startswith("count:")}
        timed = {k: v for k, v in report.items() if k not in ("role", "pid", "cpu") and not k.startswith("count:")}
        main = sum(v for k, v in timed.items() if not k.startswith("thread:"))
        parts = ", ".join(f"{k} {v:.1f}" for k, v in sorted(timed.items(), key=lambda kv: -kv[1]))
        counted = "".join(f"; {name} {int(n):,}" for name, n in counts.items())
        lines.append(
            f"  {report['role']}: CPU {report['cpu']:.1f} s; {parts}; rest of the run {seconds - main:.1f} s{counted}"
        )
    return lines


Setting = tuple[int, int, bool]  # workers, batch size, --grouped


def _setting(entry: str, batch_size: int) -> Setting:
    """(workers, batch size, grouped) from `N`, `N@B`, `Ng` or `N@Bg`; `default`: no options."""
    if entry == "default":
        return 0, 0, False
    grouped = entry.endswith("g")
    workers, _, batch = entry.removesuffix("g").partition("@")
    return int(workers), int(batch) if batch else batch_size, grouped


def _options(setting: Setting) -> str:
    workers, batch, grouped = setting
    if not workers:
        return "(default flags)"
    return f"--workers {workers} --batch-size {batch}" + (" --grouped" if grouped else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=200_000)
    parser.add_argument("--claims", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=2_000)
    parser.add_argument(
        "--workers",
        default="default,1",
        help="worker counts to measure, comma-separated; N@B: N workers, batch size B; a trailing g: --grouped; "
        "default: the command's own choice (for a file this size, a worker a core, --grouped, batches of 1,000)",
    )
    parser.add_argument("--baseline-claims", type=int, default=5_000)
    args = parser.parse_args()
    server = locate()
    scenario = Scenario(members=args.members, claims=args.claims, seed=23)
    template = f"bench_cli_template_{os.getpid()}"
    settings = [_setting(entry, args.batch_size) for entry in args.workers.split(",")]
    rates: dict[Setting, list[float]] = {s: [] for s in settings}
    peaks: dict[Setting, list[float]] = {s: [] for s in settings}
    proportional: dict[Setting, list[float]] = {s: [] for s in settings}
    cpu_here: dict[Setting, list[float]] = {s: [] for s in settings}  # µs a claim
    cpu_elsewhere: dict[Setting, list[float]] = {s: [] for s in settings}
    busy: dict[Setting, list[float]] = {s: [] for s in settings}  # percent of all cores
    baseline: list[float] = []
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
                kinds = [(f"bulk, {_options(s)}", files / "claims.jsonl", s) for s in settings]
                kinds.append(("baseline", head, (1, 1, False)))
                for kind, claims, setting in kinds:
                    workers, size, grouped = setting
                    name = f"{template}_{run}_{size}_{workers}{'g' if grouped else ''}"
                    url = copy_database(server.url, template, name)
                    stages = files / f"stages-{name}.jsonl"
                    try:
                        done = settle(url, claims, size, workers, grouped, stages if kind != "baseline" else None)
                    finally:
                        drop_database(server.url, name)
                    rate = done.settled / done.seconds
                    here, elsewhere = (cpu * 1e6 / max(1, done.settled) for cpu in (done.cli_cpu, done.other_cpu))
                    if kind == "baseline":
                        baseline.append(rate)
                    else:
                        rates[setting].append(rate)
                        peaks[setting].append(done.rss)
                        proportional[setting].append(done.pss)
                        cpu_here[setting].append(here)
                        cpu_elsewhere[setting].append(elsewhere)
                        busy[setting].append(100 * done.busy_share)
                    print(
                        f"run {run + 1} {kind} (batch size {size}): {done.settled:,} claims settled in "
                        f"{done.seconds:.1f} s = {rate:,.0f} claims/s, machine busy {100 * done.busy_share:.0f}%, "
                        f"peak RSS {done.rss} MB, peak PSS {done.pss} MB; "
                        f"CPU a claim {here:.0f} µs in yibao's processes, {elsewhere:.0f} µs in the rest of the "
                        "machine (the server)",
                        flush=True,
                    )
                    if kind != "baseline":
                        print("where the time went (wall seconds of each stage):", flush=True)
                        print("\n".join(where_time_went(stages, done.seconds)), flush=True)
        finally:
            drop_database(server.url, template)
    print()
    print(machine(server.describe()))
    print(f"{args.claims:,} claims, {args.members:,} members")
    for setting in settings:
        options = _options(setting)
        print(figure(f"yibao claims settle {options}", rates[setting], "claims/s"))
        print(figure(f"machine busy (all {os.cpu_count()} cores), {options}", busy[setting], "%"))
        print(figure(f"peak RSS, all processes, {options}", peaks[setting], "MB"))
        print(figure(f"peak PSS, all processes, {options}", proportional[setting], "MB"))
        print(figure(f"CPU a claim in yibao's processes, {options}", cpu_here[setting], "µs"))
        print(figure(f"CPU a claim in the rest of the machine (the server), {options}", cpu_elsewhere[setting], "µs"))
    print(figure("one claim per transaction (baseline)", baseline, "claims/s"))
    for setting in settings:
        ratio = statistics.median(rates[setting]) / statistics.median(baseline)
        print(f"ratio bulk {_options(setting)} / baseline (medians): {ratio:.1f}x")


if __name__ == "__main__":
    main()
