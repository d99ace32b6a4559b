"""How every benchmark prints a figure: the median of its runs, with min, max and run count."""

from __future__ import annotations

import os
import statistics
import sys


def figure(label: str, values: list[float], unit: str, *, digits: int = 0) -> str:
    def f(x: float) -> str:
        return f"{x:,.{digits}f}"

    return (
        f"{label}: median {f(statistics.median(values))} {unit} "
        f"(min {f(min(values))}, max {f(max(values))}, {len(values)} runs)"
    )


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def machine(server_description: str) -> str:
    """What ran a benchmark: the server, the cores, and the Python (its build alone changes the
    CPU a claim by a tenth: docs/performance.md, "The interpreter")."""
    python = f"Python {sys.version.split()[0]} at {os.path.realpath(sys.executable)}"
    return f"server: {server_description}; {os.cpu_count()} cores; {python}"
