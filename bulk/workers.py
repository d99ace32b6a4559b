"""Settling one claims file in several processes (`yibao claims settle --workers N`).

One Python process settles about 2,500 claims a second and is then busy computing; PostgreSQL
and a second core wait. So the file is split by account owner: a member's claims, and those of
every family member whose claims a bound employee's account pays (家庭共济), go to the same
worker, as do members whose claims carry the same setl_id (which of them is paid depends on
file order). Each member-year and account is then changed by one worker only, in file order, and
every line gets the answer a single process gives it (tested). Workers settle exactly as one
process does (batches, write-behind, retries on conflict, an origin of file hash and line per
settlement), so a run stopped anywhere and started again, with any number of workers, pays
nothing twice and gives each line its first answer.

The parent reads the file, hands each worker its lines a batch at a time, and writes the
results in input order as the workers report them; a worker reports a line only once its
batch has committed. A binding made by another process during the run can put one family's
claims in two workers: still correct (conflicting saves are settled again), only the order
in which their shared account is debited is then the order of commits.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import queue
import signal
import subprocess
import sys
import threading
import traceback
import zlib
from array import array
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from multiprocessing.connection import Connection
from typing import cast

import msgspec

from app import stages
from core.errors import YibaoError, first_line
from store.server import ServerLocation

# Batches of lines waiting for each worker: enough that a worker never waits for the parent,
# few enough that memory stays bounded by batches.
inbox_batches_max = 2
# Aggregates each worker keeps between batches. Measured on 200,000 claims of 40,000 members
# with two workers (batches of 1,000): 4,000 each settle as fast as 10,000 each (44.3 s and
# 44.4 s), with 34 MB less in all. A member's next claim mostly comes after either has turned over.
worker_cache_max = 4_000
_WAIT_S = 0.2  # how often a blocked parent checks that its workers are alive


class WorkerFailed(YibaoError):
    reason = "worker_failed"


# One line's answer: (line number, the result object as one JSON line in UTF-8, the line for
# --rejects when the claim was rejected). A plain tuple, as unpickled: building an object for
# each of a run's million lines cost the parent 0.8 µs a line.
SettledLine = tuple[int, bytes, bytes | None]


class LineIds(msgspec.Struct):
    """What routing a claim line needs of it (the rest is the worker's to decode and check)."""

    psn_no: str = ""
    setl_id: str = ""


_line_ids_decoder = msgspec.json.Decoder(LineIds)


def line_ids(raw: bytes) -> LineIds | None:
    """A line's ids; None when it does not decode as a claim's."""
    try:
        return _line_ids_decoder.decode(raw)
    except Exception:  # not JSON, too deep, a field of another type: a worker rejects it
        return None


class Groups:
    """Members whose claims must be settled by one worker (union-find over psn_no): a family
    member with the employee whose account pays (along a whole chain of bindings, from every
    region), and members whose claims carry the same setl_id (which line is paid and which
    rejected then depends on file order, as in one process)."""

    def __init__(self) -> None:
        self._parent: dict[str, str] = {}

    def find(self, psn_no: str) -> str:
        parent = self._parent
        root = psn_no
        while parent.get(root, root) != root:
            root = parent[root]
        while psn_no != root:  # path compression
            parent[psn_no], psn_no = root, parent[psn_no]
        return root

    def union(self, a: str, b: str) -> bool:
        """Join the groups of a and b; whether they were apart."""
        root_a, root_b = self.find(a), self.find(b)
        if root_a == root_b:
            return False
        self._parent[max(root_a, root_b)] = min(root_a, root_b)
        self._parent.setdefault(min(root_a, root_b), min(root_a, root_b))
        return True


def plan_split(lines: Callable[[], Iterator[tuple[int, bytes]]], bindings: Iterable[tuple[str, str]]) -> Groups:
    """The groups for one file: bindings joined, then claims sharing a setl_id. `lines` reads
    the file from its start; it is read once more only when some setl_id occurs twice."""
    groups = bound_groups(bindings)
    seen = SeenTwice()
    for _, raw in lines():
        seen.add_setl_id(line_ids(raw))
    join_claimants(lines(), groups, seen.repeated())
    return groups


def bound_groups(bindings: Iterable[tuple[str, str]]) -> Groups:
    """Every family member with the employee whose account pays for them."""
    groups = Groups()
    for member, employee in bindings:
        groups.union(member, employee)
    return groups


def join_claimants(lines: Iterable[tuple[int, bytes]], groups: Groups, repeated: set[int]) -> bool:
    """Join the members whose claims carry the same setl_id (`repeated`: the hashes of the
    setl_ids that occur more than once); whether any group changed."""
    if not repeated:
        return False
    changed = False
    first_claimant: dict[str, str] = {}
    for _, raw in lines:
        ids = line_ids(raw)
        if ids is not None and ids.setl_id and hash(ids.setl_id) in repeated:
            changed |= groups.union(first_claimant.setdefault(ids.setl_id, ids.psn_no), ids.psn_no)
    return changed


class SeenTwice:
    """The setl_ids (by hash) of a file's lines that occur more than once. Kept as 8 bytes each
    in 256 arrays and sorted one array at a time: one list of every hash as Python objects took
    60 MB for 1,000,000 lines, which the process then kept for the whole run."""

    def __init__(self) -> None:
        self._buckets = [array("q") for _ in range(256)]

    def add(self, value: int) -> None:
        self._buckets[value & 255].append(value)

    def add_setl_id(self, ids: LineIds | None) -> None:
        # A line without a setl_id is rejected before any aggregate is read: it joins no group
        # (all of them sharing the empty setl_id would make one group of every member with one).
        if ids is not None and ids.setl_id:
            self.add(hash(ids.setl_id))

    def repeated(self) -> set[int]:
        repeated: set[int] = set()
        for bucket in self._buckets:
            ordered = sorted(bucket)
            repeated.update(a for a, b in itertools.pairwise(ordered) if a == b)
        return repeated


def group_hash(raw: bytes, groups: Groups) -> int:
    """A claim line's group as a number; 0 for a line that does not decode."""
    return group_hash_of(line_ids(raw), groups)


def group_hash_of(ids: LineIds | None, groups: Groups) -> int:
    """`group_hash` of a line's decoded ids."""
    if ids is None:
        return 0
    return zlib.crc32(groups.find(ids.psn_no).encode("utf-8"))


def worker_of(raw: bytes, groups: Groups, workers: int) -> int:
    """The worker for one claim line: by its member's group. A line that does not decode goes to
    worker 0, which rejects it as one process does."""
    return group_hash(raw, groups) % workers


def routed_lines(lines: Iterable[tuple[int, bytes]], groups: Groups, workers: int) -> Iterator[tuple[int, bytes, int]]:
    """Lines in file order, each with its worker."""
    for line_no, raw in lines:
        yield line_no, raw, worker_of(raw, groups, workers)


def settle_in_workers(
    location: ServerLocation,
    lines: Iterable[tuple[int, bytes, int]],
    *,
    workers: int,
    batch_size: int,
    source: str,
    cache_max: int,
) -> Generator[SettledLine, None, None]:
    """Every line's result, in input order, settled by `workers` processes; each line comes with
    its worker (`routed_lines`, `bulk.grouped.bucketed_lines`)."""
    stages.role("parent")
    pool = _Pool(location, workers=workers, batch_size=batch_size, source=source, cache_max=cache_max)
    try:
        chunks: list[list[tuple[int, bytes]]] = [[] for _ in range(workers)]
        for line_no, raw, index in lines:
            if pool.failed:
                break  # read no more: what can still be given in order is given, then the failure
            pool.order.append((line_no, index))
            chunks[index].append((line_no, raw))
            if len(chunks[index]) >= batch_size:
                pool.send(index, chunks[index])
                chunks[index] = []
                pool.take(block=False)
                yield from pool.ready()
                waiting_for = pool.order[0][1] if pool.order else index
                if len(pool.order) > pool.backlog_lines_max and chunks[waiting_for]:
                    # The next line to give waits in a batch not yet full (a worker with few
                    # lines here): send it short rather than hold every other result meanwhile.
                    pool.send(waiting_for, chunks[waiting_for])
                    chunks[waiting_for] = []
        for index in range(workers):
            if chunks[index]:
                pool.send(index, chunks[index])
            pool.send(index, None)
        yield from pool.drain()
    finally:
        pool.close()


class _Pool:
    """The worker processes of one run, their pipes, and the results they reported."""

    def __init__(self, location: ServerLocation, *, workers: int, batch_size: int, source: str, cache_max: int) -> None:
        self.processes: list[_WorkerProcess] = []
        inboxes: list[Connection] = []
        self.outboxes: list[Connection] = []
        self.backlog_lines_max = 4 * workers * batch_size
        self.unfinished = set(range(workers))
        self.order: deque[tuple[int, int]] = deque()  # (line number, worker) of every line not yet given
        self.received: list[deque[SettledLine]] = [deque() for _ in range(workers)]
        self.failed: dict[int, WorkerFailed] = {}
        try:  # an interrupt anywhere here stops the workers started so far (the caller's `close` is not set up yet)
            for index in range(workers):
                process, lines_out, results_in = _WorkerProcess.start((index, location, source, batch_size, cache_max))
                self.processes.append(process)
                inboxes.append(lines_out)
                self.outboxes.append(results_in)
            self.inboxes = [_Inbox(lines_out) for lines_out in inboxes]
            self.reports = _Reports(self.outboxes, self._ended)
        except BaseException:
            for process in self.processes:
                process.terminate()
            raise

    def _ended(self, index: int) -> str:
        """Why a worker's reports stopped before its last one (its pipe closed)."""
        self.processes[index].join(timeout=5)
        return f"it ended (exit code {self.processes[index].exitcode}) before it finished"

    def take(self, block: bool) -> None:
        """Move what the workers reported into `received`; note a worker that failed."""
        for index, kind, payload in self.reports.taken(timeout=_WAIT_S if block else 0):
            if kind == "lines":
                self.received[index].extend(cast(list[SettledLine], payload))
            elif index in self.unfinished:
                self.unfinished.discard(index)
                if kind != "done":
                    self.failed[index] = WorkerFailed(f"worker {index} stopped: {payload}")

    def ready(self) -> Iterator[SettledLine]:
        """The lines whose results are in, in input order, up to the first line of a worker that
        failed: then its failure (what the others committed before that line is given first)."""
        order, received = self.order, self.received
        while order:
            line_no, index = order[0]
            if not received[index]:
                if index in self.failed:
                    raise self.failed[index]
                return
            order.popleft()
            result = received[index].popleft()
            if result[0] != line_no:  # a worker answers its lines in the order it got them
                raise AssertionError(f"worker {index} answered line {result[0]} for line {line_no}")
            yield result

    def send(self, index: int, item: list[tuple[int, bytes]] | None) -> None:
        with stages.stage("send"):
            self._send(index, item)

    def _send(self, index: int, item: list[tuple[int, bytes]] | None) -> None:
        while index not in self.failed:
            try:
                self.inboxes[index].put(item, timeout=_WAIT_S)
                return
            except queue.Full:
                self.take(block=False)  # also notices a worker that died while its inbox was full

    def drain(self) -> Iterator[SettledLine]:
        """After the last line was sent: every result still to come, then any failure."""
        while self.order:
            with stages.stage("drain"):
                self.take(block=True)
            yield from self.ready()
        while self.unfinished:
            self.take(block=True)
            yield from self.ready()
        for failure in self.failed.values():
            raise failure
        for process in self.processes:
            process.join()

    def close(self) -> None:
        for process in self.processes:
            process.terminate()  # an error or an interrupt here: a batch not committed is lost whole
        for process in self.processes:
            process.join()
        for inbox in self.inboxes:
            inbox.close()
        self.reports.join()  # the workers are gone: each receiver has read its end of file
        for outbox in self.outboxes:
            outbox.close()


class _Reports:
    """What the workers report, received by a thread a worker the moment it is sent. A batch's
    report (about half a megabyte) is larger than a pipe holds: a worker waiting for the parent
    to read it settles nothing (measured: 16 of 43 s of each worker, when the parent read reports
    only between handing out batches)."""

    def __init__(self, connections: list[Connection], ended: Callable[[int], str]) -> None:
        self._ended = ended
        self._queue: queue.Queue[tuple[int, str, object]] = queue.Queue()
        self._threads = [
            threading.Thread(target=self._receive, args=(index, connection), daemon=True)
            for index, connection in enumerate(connections)
        ]
        for thread in self._threads:
            thread.start()

    def _receive(self, index: int, connection: Connection) -> None:
        """One worker's reports, as they come, up to its last ("done" or "error")."""
        kind = "lines"
        while kind == "lines":
            try:
                kind, payload = connection.recv()
            except (EOFError, OSError):  # OSError: it ended in the middle of a message, or the run closed
                kind, payload = "error", self._ended(index)
            self._queue.put((index, kind, payload))

    def taken(self, timeout: float) -> list[tuple[int, str, object]]:
        """Every report received so far: (worker, kind, payload); waiting up to `timeout` for one."""
        try:
            reports = [self._queue.get(timeout=timeout) if timeout else self._queue.get_nowait()]
        except queue.Empty:
            return []
        while True:
            try:
                reports.append(self._queue.get_nowait())
            except queue.Empty:
                return reports

    def join(self) -> None:
        for thread in self._threads:
            thread.join(timeout=5)


class _Inbox:
    """The batches on their way to one worker: a thread sends them, so that the parent never
    waits on a busy worker (and can take the results of the others meanwhile)."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._batches: queue.Queue[list[tuple[int, bytes]] | None] = queue.Queue(maxsize=inbox_batches_max)
        self._thread = threading.Thread(target=self._send, daemon=True)
        self._thread.start()

    def put(self, item: list[tuple[int, bytes]] | None, timeout: float) -> None:
        self._batches.put(item, timeout=timeout)

    def _send(self) -> None:
        try:
            while True:
                item = self._batches.get()
                self._connection.send(item)
                if item is None:
                    return
        except OSError:
            return  # the worker is gone: the parent learns it from the worker's results pipe

    def close(self) -> None:
        """After the worker has ended: a send still waiting has failed, and a thread waiting for
        a batch gets the end."""
        with contextlib.suppress(queue.Full):
            self._batches.put_nowait(None)
        self._thread.join(timeout=5)
        self._connection.close()


class _WorkerProcess:
    """A settling process: a new interpreter running `worker_main`, started without
    multiprocessing, whose spawn also starts a resource tracker (one more interpreter, resident
    for the whole run, for semaphores a run never makes). Two pipes, each end held by one process
    only: a worker that dies (even in the middle of a message) is an end of file or a broken
    pipe here, never a wait that lasts forever. Nothing else is inherited."""

    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        self._popen = popen

    @classmethod
    def start(cls, args: tuple[object, ...]) -> tuple[_WorkerProcess, Connection, Connection]:
        """The process, the end its lines are sent to and the end its reports come from; `args`
        (`_work`'s first five) are its second message, after the parent's import path."""
        lines_in, lines_out = os.pipe()
        results_in, results_out = os.pipe()
        try:
            # Its own process group: Ctrl-C and a group's SIGTERM reach the parent, which stops the
            # workers itself (a signal while a worker's interpreter starts printed its traceback).
            popen = subprocess.Popen(
                [sys.executable, "-P", "-c", _WORKER_START, str(lines_in), str(results_out)],
                pass_fds=(lines_in, results_out), stdin=subprocess.DEVNULL, process_group=0,
            )  # fmt: skip
        except BaseException:
            os.close(lines_out)
            os.close(results_in)
            raise
        finally:
            os.close(lines_in)
            os.close(results_out)
        lines, results = Connection(lines_out, readable=False), Connection(results_in, writable=False)
        # The parent's import path (as multiprocessing's spawn gives it), then `_work`'s
        # arguments. A worker that has already ended is named by its reports' end of file.
        with contextlib.suppress(OSError):
            lines.send(sys.path)
            lines.send(args)
        return cls(popen), lines, results

    @property
    def exitcode(self) -> int | None:
        return self._popen.poll()

    def is_alive(self) -> bool:
        return self._popen.poll() is None

    def join(self, timeout: float | None = None) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._popen.wait(timeout)

    def terminate(self) -> None:
        """Stop it, if it still runs."""
        if self.is_alive():
            self._popen.terminate()


# A settling process's first lines: only the standard library until the import path is the
# parent's (`-P` leaves the current directory out, so a `signal.py` there is not imported).
_WORKER_START = """\
import sys
from multiprocessing.connection import Connection
inbox = Connection(int(sys.argv[1]), writable=False)
try:
    sys.path[:] = inbox.recv()
except EOFError:
    raise SystemExit(1) from None
from bulk.workers import worker_main
worker_main(inbox, Connection(int(sys.argv[2]), readable=False))
"""


class _ParentGone(Exception):
    """The parent closed its end of a worker's pipes: nobody is left to report to."""


def worker_main(inbox: Connection, outbox: Connection) -> None:
    """A settling process's start, once its import path is the parent's: `_work`'s other
    arguments are its pipes' next message."""
    try:
        index, location, source, batch_size, cache_max = inbox.recv()
    except EOFError:  # the parent is gone before it said what to do
        raise SystemExit(1) from None
    _work(index, location, source, batch_size, cache_max, inbox, outbox)


def _received(inbox: Connection) -> list[tuple[int, bytes]] | None:
    try:
        return cast(list[tuple[int, bytes]] | None, inbox.recv())
    except (EOFError, OSError):
        raise _ParentGone from None


def _sent(outbox: Connection, report: tuple[str, object]) -> None:
    try:
        outbox.send(report)
    except OSError:
        raise _ParentGone from None


def _work(
    index: int,
    location: ServerLocation,
    source: str,
    batch_size: int,
    cache_max: int,
    inbox: Connection,
    outbox: Connection,
) -> None:
    """One worker: settle the lines it is given, report each batch's results once committed."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    # Imported here: the parent needs none of this to read and split a file.
    from app import failpoints
    from bulk import batch, kept

    stages.role(f"worker{index}")
    from bulk.collector import after_settled_batch, configure_for_bulk
    from bulk.lines import encode_line, reject_line
    from store.app import Store

    configure_for_bulk()
    kept.kept_max = cache_max  # this process settles only its share of members
    pending: list[SettledLine] = []

    def lines() -> Iterator[tuple[int, bytes]]:
        while True:
            if pending:  # before waiting for more: what is committed goes back at once
                with stages.stage("report"):
                    _sent(outbox, ("lines", pending))
                pending.clear()
                failpoints.reach("workers.after_report")
            with stages.stage("wait_lines"):
                chunk = _received(inbox)
            if chunk is None:
                return
            yield from chunk

    try:
        with Store(location) as store:
            settled = batch.settle_lines(
                store, lines(), source=source, batch_size=batch_size, after_batch=after_settled_batch
            )
            for result in settled:
                output = encode_line(result.output)
                reject = reject_line(result.line_no, result.output) if result.rejected else None
                pending.append((result.line_no, output, reject))
        if pending:
            _sent(outbox, ("lines", pending))
        _sent(outbox, ("done", None))
        stages.report()
    except _ParentGone:  # the run ended without it (the parent was killed): quietly
        raise SystemExit(1) from None
    except BaseException as exc:  # reported, then the worker ends: the parent stops the run
        reason = getattr(exc, "reason", None)
        if reason is None:  # not a named error: a defect, whose traceback must not be lost
            traceback.print_exc(file=sys.stderr)
        with contextlib.suppress(OSError):  # the parent may be gone too
            outbox.send(("error", f"{reason or type(exc).__name__}: {first_line(exc)}"))
        raise SystemExit(1) from None
