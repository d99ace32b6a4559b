"""Which way a claims file is settled when the command names none: the fastest that is safe.

A named file large enough to repay starting worker processes (about a second) is settled by as
many workers as the machine has cores, each account owner's claims grouped together (the best
measured path: docs/bulk-settlement.md). Standard input, a small file and a correction stream
through one process, which writes each result as soon as its batch commits.
"""

from __future__ import annotations

import os

import attrs

from bulk.batch import batch_records_max

parallel_file_bytes_min = 4 << 20  # about 10,000 claims: below it one process finishes first
parallel_batch_records = 1_250  # per worker: two workers and the parent stay under 300 MB (docs/performance.md)


@attrs.frozen
class SettleMode:
    workers: int
    grouped: bool
    batch_size: int

    @property
    def streaming(self) -> bool:
        return self.workers == 1 and not self.grouped


def choose_mode(
    file_bytes: int | None,
    *,
    workers: int | None = None,
    grouped: bool | None = None,
    batch_size: int | None = None,
    cores: int | None = None,
) -> SettleMode:
    """`file_bytes` is None for standard input; None for an option means it was not given."""
    chosen = workers is not None or grouped is not None
    if chosen or file_bytes is None or file_bytes < parallel_file_bytes_min:
        return SettleMode(workers or 1, bool(grouped), batch_size or batch_records_max)
    return SettleMode(max(1, cores or os.cpu_count() or 1), True, batch_size or parallel_batch_records)
