"""A claims file settled end to end: in one streaming process, or in worker processes (grouped
or not), its results handed back in input order to a writer, and a stopped run resumable.

The command line opens the files and names the errors; this module chooses nothing: the path
is the caller's (bulk/mode.py says which is fastest).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import signal
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import IO, Any, Protocol

from app import stages
from bulk import batch
from bulk.collector import after_settled_batch
from bulk.grouped import FileChanged, InputOrder, bucketed_lines
from bulk.lines import encode_line, read_lines, reject_line
from bulk.workers import bound_groups, plan_split, routed_lines, settle_in_workers, worker_cache_max
from core.errors import YibaoError
from store.app import Store
from store.server import ServerLocation


class Write(Protocol):
    """Where the results go, in input order: the result lines, and the --rejects lines."""

    def line(self, output: bytes, reject: bytes | None) -> None:
        """One line's result, and its reject line when rejected: each one JSON object in UTF-8, no line end."""

    def lines(self, outputs: bytes, rejects: bytes) -> None:
        """The results of several lines, and the reject lines of those rejected: each line ended."""


class Counter(Protocol):
    """Counts the lines read (the command's progress on a terminal)."""

    count: int

    def step(self, n: int = 1) -> None: ...

    def done(self) -> None: ...


def settle_file(
    store: Store,
    location: ServerLocation,
    file: IO[bytes],
    write: Write,
    *,
    operator: str | None,
    reason: str | None,
    batch_size: int,
    workers: int,
    grouped: bool,
    held_in: str | None,
    progress: Counter,
    on_date: dt.date | None = None,
) -> None:
    """Settle (or, with operator and reason, correct) every line of `file`, writing each line's
    result in input order. `held_in`: where a grouped run keeps its results until the end
    (beside the output file; None: the temporary folder)."""
    if workers > 1 or grouped:
        _settle_in_workers(store, location, file, write, progress, batch_size, workers, grouped, held_in)
        return
    # A named file: its hash lets a stopped run resume (stdin has none: a resubmission is `duplicate`).
    source, hashed_bytes = _sha256_of(file) if _named(file) else (None, None)
    lines = _counted(read_lines(file if hashed_bytes is None else AsHashed(file, hashed_bytes)), progress)
    settled = batch.settle_lines(
        store, lines, operator=operator, reason=reason, source=source, batch_size=batch_size,
        after_batch=after_settled_batch, on_date=on_date,
    )  # fmt: skip
    for result in settled:
        output = result.output
        write.line(encode_line(output), reject_line(result.line_no, output) if result.rejected else None)
    if hashed_bytes is not None:
        check_unchanged_length(file, hashed_bytes)


class AsHashed:
    """A named claims file read no further than its length when it was hashed: lines added since
    are not settled under the hash of a file without them (`check_unchanged_length` names them)."""

    def __init__(self, file: IO[bytes], hashed_bytes: int) -> None:
        self._file, self._left = file, hashed_bytes

    def readline(self, size: int = -1, /) -> bytes:
        size = self._left if size < 0 else min(size, self._left)
        line = self._file.readline(size) if size else b""
        self._left -= len(line)
        return line


def check_unchanged_length(file: IO[bytes], hashed_bytes: int) -> None:
    """After a run of a named file read `AsHashed`: a file that is now of another length changed
    while it was settled; the lines of the file as hashed were answered, the rest were not."""
    now = os.fstat(file.fileno()).st_size
    if now != hashed_bytes:
        raise FileChanged(
            f"{getattr(file, 'name', 'the file')} changed while it was settled ({hashed_bytes} bytes when the run "
            f"began, {now} now): the lines of the first {hashed_bytes} bytes are answered above, anything added "
            "is not settled: settle it as a file of its own"
        )


def _counted(items: Iterable[Any], progress: Counter) -> Iterator[Any]:
    for item in items:
        progress.step()
        yield item
    progress.done()


def _sha256_of(file: IO[bytes]) -> tuple[str, int]:
    """The content hash of a claims file named on the command line, and its length, read once
    ahead in chunks. Running the same file again (after a crash, or not) answers each line as
    its first run did; a resubmission on stdin or in another file gets `duplicate`."""
    digest, size = hashlib.sha256(), 0
    for chunk in iter(lambda: file.read(1 << 20), b""):
        digest.update(chunk)
        size += len(chunk)
    file.seek(0)
    return digest.hexdigest(), size


def _named(file: IO[bytes]) -> bool:
    """Whether `file` is a file named on the command line (not stdin or a pipe)."""
    name = getattr(file, "name", None)
    return isinstance(name, str) and os.path.isfile(name) and file.seekable()


def _settle_in_workers(
    store: Store,
    location: ServerLocation,
    file: IO[bytes],
    write: Write,
    progress: Counter,
    batch_size: int,
    workers: int,
    grouped: bool,
    held_in: str | None,
) -> None:
    if not _named(file):
        option = "--grouped" if grouped else "--workers"
        raise YibaoError(
            f"{option} needs a claims file named on the command line (its hash lets a stopped run resume)",
            reason="workers_need_a_file",
        )
    # The file is hashed on a thread while the bindings are read (hashlib lets go of the
    # interpreter on large blocks); nothing else touches the file until the hash is taken.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="yibao-hash") as hashing:
        hashed = hashing.submit(_sha256_of, file)  # named: checked once, above (it may be renamed meanwhile)
        bindings = [pair for code in store.region_codes() for pair in store.region(code).family_accounts().items()]
        source, hashed_bytes = hashed.result()
    store.close()  # the workers have their own connections; this process only reads and writes files

    def from_start() -> Iterator[tuple[int, bytes]]:
        file.seek(0)
        yield from read_lines(file)

    def routed() -> Iterator[tuple[int, bytes, int]]:
        # Planned once the workers are starting (on the first line asked for): they import and
        # connect meanwhile, about a second and a half.
        if grouped:  # its first pass joins the claimants of a setl_id too
            yield from bucketed_lines(file, bound_groups(bindings), workers, hashed_bytes)
            return
        with stages.stage("plan"):
            groups = plan_split(from_start, bindings)
        file.seek(0)
        yield from routed_lines(read_lines(AsHashed(file, hashed_bytes)), groups, workers)

    settled = settle_in_workers(
        location, _counted(routed(), progress), workers=workers, batch_size=batch_size, source=source,
        cache_max=worker_cache_max,
    )  # fmt: skip

    if not grouped:
        # SIGTERM and SIGHUP end the run as Ctrl-C does: the workers are stopped, the results
        # given so far are written (their default would end this process with the workers
        # still writing to it).
        with _signals_interrupt(signal.SIGTERM, signal.SIGHUP), contextlib.closing(settled):
            for _, output, reject in settled:
                write.line(output, reject)
        check_unchanged_length(file, hashed_bytes)
        return
    # Results come in bucket order: held, then written in input order. Also after a failure or
    # an interrupt (SIGTERM and SIGHUP too): the lines before the first one without a result.
    held = InputOrder(held_in)
    written = 0
    with _signals_interrupt(signal.SIGTERM, signal.SIGHUP):
        try:
            with contextlib.closing(settled):
                for result in settled:
                    held.add(*result)
        finally:
            # Written whole: an interrupt now waits until the last result is out (a second one
            # stops at once), so no block is cut short and no reject line is left behind.
            with stages.stage("write results"), _interrupts_deferred(signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                for count, outputs, rejects in held.blocks():
                    write.lines(outputs, rejects)
                    written += count
            held.close()
    if written != progress.count:
        raise YibaoError(
            f"{progress.count - written} of {progress.count} lines have no result written: run the file again",
            reason="results_missing",
        )
    check_unchanged_length(file, hashed_bytes)  # grown since its first pass: named as on the other paths


@contextlib.contextmanager
def _interrupts_deferred(*signals: signal.Signals) -> Iterator[None]:
    """The first of these signals is noted and raised as KeyboardInterrupt once the block is done;
    a second one raises it at once."""
    noted: list[int] = []

    def note(number: int, frame: object) -> None:
        if noted:
            raise KeyboardInterrupt
        noted.append(number)

    previous = {number: signal.signal(number, note) for number in signals}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    if noted:
        raise KeyboardInterrupt


@contextlib.contextmanager
def _signals_interrupt(*signals: signal.Signals) -> Iterator[None]:
    """These signals raise KeyboardInterrupt, as Ctrl-C does (their default ends the process at once)."""
    previous = {number: signal.signal(number, signal.default_int_handler) for number in signals}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
