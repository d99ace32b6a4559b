"""Settling a claims file with each account owner's claims close together (`claims settle --grouped`).

In a large file a member's claims lie far apart (in a month of 1,000,000 claims of 200,000
members, about 200,000 lines apart), so each claim reads its member, member-year and account
again: the aggregates a process keeps have turned over long before. `--grouped` hands the lines
to the settling processes bucket by bucket instead: a bucket is every line of a few hundred
account-owner groups (`bulk.workers.Groups`: a member with the family members their account
pays for, and members sharing a setl_id), in file order. A bucket's aggregates are read once and
then stay kept while its other lines settle (measured on that month's file with two workers,
batches of 1,000: 3,980 -> 4,703 claims/s, medians of three runs).

Every group's lines keep their file order, and no aggregate belongs to two groups, so each line
gets the answer it gets in file order (tested byte for byte). The results are restored to input
order before they are written: they are kept in a temporary file as they come, and written when
the run ends (or, if it fails, those of the lines before the first one without a result).
"""

from __future__ import annotations

import os
import tempfile
from array import array
from collections.abc import Iterator
from typing import IO

from app import stages
from bulk.lines import cut_line, line_text, read_limit, read_lines, read_lines_ending
from bulk.workers import Groups, SeenTwice, group_hash, group_hash_of, join_claimants, line_ids
from core.errors import YibaoError

# Lines per bucket: about 400 members at five claims each, whose member-years and accounts
# (about 1,200 aggregates) fit the 4,000 each worker keeps (bulk.workers.worker_cache_max).
bucket_lines = 2_000


class FileChanged(YibaoError):
    reason = "file_changed"


def bucketed_lines(
    file: IO[bytes], groups: Groups, workers: int, hashed_bytes: int | None = None
) -> Iterator[tuple[int, bytes, int]]:
    """The lines of a named file, bucket by bucket, in file order within each bucket, each with
    its worker (`worker_of`, from the group found in the first pass: not decoded again).
    `groups` holds the bindings; the first pass also joins the members whose claims share a
    setl_id (as `plan_split` does; the file is read again only when some setl_id occurs twice).

    The first pass notes where each line starts and its group; the second reads each line again
    by position, cut as `read_lines` cuts an over-long one. The bucket is independent of the
    worker a group goes to (`worker_of` takes the same number modulo `workers`), so every bucket
    feeds every worker. A line that is not where the first pass found it (the file changed
    meanwhile) stops the run: its answer would not be the answer for that line; so does a first
    pass that reads another length than `hashed_bytes`, the file's length when it was hashed
    (lines added since would be settled under the hash of a file without them)."""
    with stages.stage("first pass"):
        starts, hashes = _first_pass(file, groups)
    if hashed_bytes is not None and starts[-1] != hashed_bytes:
        raise FileChanged(
            f"{getattr(file, 'name', 'the file')} changed while it was read ({hashed_bytes} bytes "
            f"when hashed, {starts[-1]} in the first pass): nothing is settled; run it again"
        )
    lines = len(hashes)
    fd = file.fileno()
    for index in _by_bucket(hashes, workers, max(1, lines // bucket_lines)):
        start, size = starts[index], starts[index + 1] - starts[index]
        limit = read_limit(index + 1)
        wanted = min(size, limit)  # what read_lines reads of it
        chunk = os.pread(fd, wanted, start)
        if len(chunk) != wanted or (size < limit and index + 1 < lines and not chunk.endswith(b"\n")):
            raise FileChanged(f"{getattr(file, 'name', 'the file')} changed while it was settled (line {index + 1})")
        worker = hashes[index] % workers
        if size > limit or (size == limit and not chunk.endswith(b"\n")):  # cut, as read_lines_ending cuts
            # its last bytes say whether a line end is counted
            yield index + 1, cut_line(index + 1, chunk, size, os.pread(fd, 2, start + size - 2)), worker
        else:
            yield index + 1, line_text(index + 1, chunk), worker


def _first_pass(file: IO[bytes], groups: Groups) -> tuple[array[int], array[int]]:
    """Where each line starts (and where the last one ends), and each line's group hash, with
    the members whose claims share a setl_id joined into `groups` first."""
    file.seek(0)
    starts, hashes = array("q"), array("I")
    seen = SeenTwice()
    starts.append(0)
    for _, raw, end in read_lines_ending(file):
        ids = line_ids(raw)
        starts.append(end)  # where the next line starts; after the last, where it ends
        hashes.append(group_hash_of(ids, groups))
        seen.add_setl_id(ids)
    if join_claimants(_lines_from_start(file), groups, seen.repeated()):  # groups changed: hashes again
        hashes = array("I", (group_hash(raw, groups) for _, raw in _lines_from_start(file)))
    return starts, hashes


def _lines_from_start(file: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    file.seek(0)
    yield from read_lines(file)


def _by_bucket(hashes: array[int], workers: int, buckets: int) -> Iterator[int]:
    """The line indexes bucket by bucket, in file order within a bucket. A line's bucket is its
    group's hash divided by `workers` (the remainder chooses the worker), modulo `buckets`.
    An array a bucket, filled in one pass (a counting sort over the whole file took twice as
    long, with a core idle meanwhile)."""
    members = [array("i") for _ in range(buckets)]
    appends = [bucket.append for bucket in members]
    for index, h in enumerate(hashes):
        appends[(h // workers) % buckets](index)
    del appends
    for bucket in members:
        yield from bucket


class InputOrder:
    """Results given in any order, given back in input order: held in a temporary file (their
    lines, and per line where they start and their size) until `blocks` reads them back."""

    def __init__(self, folder: str | None = None) -> None:
        # About half a kilobyte a line, in `folder` (default: TMPDIR); gone with the process.
        # Written in blocks of a megabyte: a write call every 2,000 lines, not every 16.
        self._held = tempfile.TemporaryFile(dir=folder, buffering=1 << 20)  # noqa: SIM115 (closed by close())
        self._starts = array("q")  # per line number - 1: where its lines start, or -1
        self._sizes = array("i")  # their size; negative when a reject line follows the result
        self._end = 0  # bytes held

    def add(self, line_no: int, output: bytes, reject: bytes | None) -> None:
        """One line's result, and its --rejects line when it was rejected (each one JSON line in
        UTF-8, without its line end: JSON text has none inside)."""
        missing = line_no - len(self._starts)
        if missing > 0:  # sizes first: `blocks` reads a size only for a line whose start is set
            self._sizes.extend(array("i", [0]) * missing)
            self._starts.extend(array("q", [-1]) * missing)
        held = output + b"\n" if reject is None else b"%b\n%b\n" % (output, reject)
        self._held.write(held)  # then recorded, the start last: an interrupt before it leaves the line without texts
        self._sizes[line_no - 1] = len(held) if reject is None else -len(held)
        self._starts[line_no - 1] = self._end
        self._end += len(held)

    def blocks(self, block_bytes: int = 1 << 20) -> Iterator[tuple[int, bytes, bytes]]:
        """(lines, their results, their reject lines), each line ended, for lines 1, 2, ... in input
        order up to the first line without a result: about `block_bytes` a block, written by one
        call each instead of one a line. A block ends at a rejected line, so that a reject line
        still follows its result when both go to one stream. Each line is read by a call of its
        own: a map of the held file would be faster, but the lines lie all over it, and every
        page a map touches counts in this process's memory (docs/performance.md)."""
        self._held.flush()
        fd, pread = self._held.fileno(), os.pread
        outputs: list[bytes] = []
        rejects: list[bytes] = []
        size_so_far = 0
        for start, size in zip(self._starts, self._sizes, strict=False):  # add extends sizes first
            if start < 0:
                break
            if size > 0:
                outputs.append(pread(fd, size, start))
            else:  # the result's line, then the reject's
                both = pread(fd, -size, start)
                cut = both.index(b"\n") + 1
                outputs.append(both[:cut])
                rejects.append(both[cut:])
            size_so_far += abs(size)
            if size_so_far >= block_bytes or size < 0:
                yield len(outputs), b"".join(outputs), b"".join(rejects)
                outputs.clear()
                rejects.clear()
                size_so_far = 0
        if outputs:
            yield len(outputs), b"".join(outputs), b"".join(rejects)

    def close(self) -> None:
        self._held.close()
