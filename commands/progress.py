"""Progress on a terminal for long commands (stderr only: stdout stays data)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any

import click


class Progress:
    """Counts lines on stderr when it is a terminal; silent otherwise (stdout stays data)."""

    interval_s = 0.5

    def __init__(self, label: str) -> None:
        self.label = label
        self.enabled = sys.stderr.isatty()
        self.count = 0
        self.started = time.monotonic()
        self._shown = 0.0

    def step(self, n: int = 1) -> None:
        self.count += n
        if self.enabled and time.monotonic() - self._shown >= self.interval_s:
            self._shown = time.monotonic()
            rate = self.count / max(1e-9, self._shown - self.started)
            click.echo(f"\r{self.label}: {self.count:,} lines ({rate:,.0f}/s)", err=True, nl=False)

    def done(self) -> None:
        if self.enabled:
            click.echo(f"\r{self.label}: {self.count:,} lines, done.{' ' * 20}", err=True)


def track(items: Iterable[Any], progress: Progress) -> Iterator[Any]:
    for item in items:
        progress.step()
        yield item
    progress.done()
