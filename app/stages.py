"""Where a process spends its wall time, stage by stage (`YIBAO_STAGES=FILE`).

Off unless `YIBAO_STAGES` names a file. Each process then appends one JSON line to it when it
ends: its role, pid, CPU seconds, and the wall seconds spent in each stage it passed through.
`bench.cli_settle` sets it for every run and prints where the time of the run went. A stage
timed on a thread other than the main one is named `thread:<stage>`: it overlaps the main
thread's stages. Stages are timed a batch at a time, never a claim at a time, so timing them
costs nothing measurable.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager

_file = os.environ.get("YIBAO_STAGES")
enabled = bool(_file)
_totals: dict[str, float] = defaultdict(float)  # seconds a stage, or a count
_role = ["main"]
_reported = threading.Event()


def role(name: str) -> None:
    """What this process is in the run (`parent`, `worker0`, ...)."""
    _role[0] = name


def add(name: str, seconds: float) -> None:
    if enabled:
        key = name if threading.current_thread() is threading.main_thread() else f"thread:{name}"
        _totals[key] += seconds


def count(name: str, n: int) -> None:
    """A number the process adds up (`count:<name>`), such as the events its reads returned."""
    if enabled:
        _totals[f"count:{name}"] += n


@contextmanager
def stage(name: str) -> Iterator[None]:
    if not enabled:
        yield
        return
    began = time.perf_counter()
    try:
        yield
    finally:
        add(name, time.perf_counter() - began)


def report() -> None:
    """Append this process's line (once). Worker processes call it before they end: a process
    started by multiprocessing ends without running `atexit` handlers."""
    if not _file or _reported.is_set():
        return
    _reported.set()
    line = {"role": _role[0], "pid": os.getpid(), "cpu": time.process_time(), **_totals}
    with open(_file, "a", encoding="utf-8") as out:
        out.write(json.dumps(line) + "\n")


if enabled:
    import atexit

    atexit.register(report)
