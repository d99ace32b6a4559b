"""How every benchmark prints a figure: the median of its runs, with min, max and run count."""

from __future__ import annotations

import statistics


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
