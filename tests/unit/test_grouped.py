"""`claims settle --grouped`: the file's lines bucket by bucket, each group's lines together and in
file order; results restored to input order."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import BinaryIO

import pytest

from bulk import grouped
from bulk.claims_file import AsHashed, _interrupts_deferred, _signals_interrupt, check_unchanged_length
from bulk.grouped import FileChanged, InputOrder, bucketed_lines
from bulk.lines import UTF8_BOM, read_lines
from bulk.workers import Groups, group_hash, plan_split, worker_of


def claims_file(folder: Path, members: int, rounds: int) -> tuple[BinaryIO, list[bytes]]:
    """Each member's claims `members` lines apart (as in a month's file), plus lines that do not
    decode, a blank line, a CRLF line, and no newline after the last line."""
    lines = [
        json.dumps({"psn_no": f"P{m}", "setl_id": f"S{r}-{m}"}).encode() for r in range(rounds) for m in range(members)
    ]
    lines[7:7] = [b"{not json", b"", b'{"psn_no": 7}']
    path = folder / "claims.jsonl"
    path.write_bytes(b"\n".join(lines[:20]) + b"\r\n" + b"\n".join(lines[20:]))
    return path.open("rb"), lines


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_every_line_once_each_group_in_one_bucket_and_in_file_order(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, workers: int
) -> None:
    monkeypatch.setattr(grouped, "bucket_lines", 40)
    groups = Groups()
    groups.union("P3", "P5")  # a family: one group
    file, lines = claims_file(tmp_path, members=50, rounds=5)
    routed = list(bucketed_lines(file, groups, workers))
    for _, raw, worker in routed:  # each line with the worker its group goes to
        assert worker == worker_of(raw, groups, workers)
    given = [(n, raw) for n, raw, _ in routed]
    assert sorted(given) == list(enumerate(lines, start=1))  # each line once, with its number
    assert [n for n, _ in given] != sorted(n for n, _ in given)  # reordered
    # A group's lines come in file order, and together: nothing of another group of the same
    # worker between its first and last line once the bucket is taken.
    by_group: dict[int, list[int]] = {}
    for position, (_, raw) in enumerate(given):
        by_group.setdefault(group_hash(raw, groups), []).append(position)
        assert worker_of(raw, groups, workers) == group_hash(raw, groups) % workers
    for line_numbers in ([n for n, raw in given if group_hash(raw, groups) == h] for h in by_group):
        assert line_numbers == sorted(line_numbers)
    buckets = len(lines) // 40
    for positions in by_group.values():
        assert positions[-1] - positions[0] < len(lines) / buckets * 2  # one bucket's span, not the file's
    family = [n for n, raw in given if raw.startswith(b'{"psn_no": "P3"') or raw.startswith(b'{"psn_no": "P5"')]
    assert family == sorted(family) and len(family) == 10


@pytest.mark.parametrize(
    "tail",
    [b"x" * 100, b"x" * 30, b"x" * 31 + b"\n", b"x" * 30 + b"\r", b"x" * 29 + b"\r\r"],
    ids=["over-long last", "30", "31", "30 and a CR, last", "29 and two CRs, last"],
)
def test_a_line_is_read_again_as_read_lines_reads_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tail: bytes
) -> None:
    monkeypatch.setattr("bulk.lines.LINE_BYTES_MAX", 30)
    path = tmp_path / "claims.jsonl"
    path.write_bytes(UTF8_BOM + b'{"psn_no": "P1"}\r\n' + b"y" * 100 + b'\n{"psn_no": "P2"}\n\n' + tail)
    with path.open("rb") as file:
        expected = list(read_lines(file))
        assert expected[0] == (1, b'{"psn_no": "P1"}')  # without its byte order mark
        assert expected[1] == (2, b"y" * 31)  # cut, then rejected by the settling
        given = sorted((n, raw) for n, raw, _ in bucketed_lines(file, Groups(), 2))
        assert given == expected
        # and a cut line's whole length (without its line end) is known to both readers
        assert [getattr(raw, "bytes_total", None) for _, raw in given] == [
            getattr(raw, "bytes_total", None) for _, raw in expected
        ]
        assert expected[1][1].bytes_total == 100  # type: ignore[attr-defined]


def test_a_line_that_just_fits_is_read_whole_and_a_longer_one_is_counted_whole(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr("bulk.lines.LINE_BYTES_MAX", 30)
    path = tmp_path / "claims.jsonl"
    # a first line of 30 bytes after its byte order mark, one of 30 before CRLF, one of 31
    path.write_bytes(UTF8_BOM + b"a" * 30 + b"\n" + b"b" * 30 + b"\r\n" + b"c" * 31 + b"\n" + b"d" * 45)
    with path.open("rb") as file:
        for given in (list(read_lines(file)), sorted((n, raw) for n, raw, _ in bucketed_lines(file, Groups(), 1))):
            assert given == [(1, b"a" * 30), (2, b"b" * 30), (3, b"c" * 31), (4, b"d" * 31)]  # cut one byte over
            assert [getattr(raw, "bytes_total", len(raw)) for _, raw in given] == [30, 30, 31, 45]


def test_a_file_changed_while_it_is_settled_stops_the_run(tmp_path: Path) -> None:
    file, lines = claims_file(tmp_path, members=50, rounds=5)
    given = bucketed_lines(file, Groups(), 2)
    next(given)
    with (tmp_path / "claims.jsonl").open("r+b") as shorter:
        shorter.truncate(len(b"\n".join(lines[:100])))
    with pytest.raises(FileChanged, match="changed while it was settled"):
        list(given)


def test_a_file_that_grew_after_it_was_hashed_is_not_settled(tmp_path: Path) -> None:
    file, _ = claims_file(tmp_path, members=5, rounds=2)
    hashed_bytes = os.path.getsize(tmp_path / "claims.jsonl")
    assert len(list(bucketed_lines(file, Groups(), 2, hashed_bytes))) == 13
    with (tmp_path / "claims.jsonl").open("ab") as grown:
        grown.write(b'\n{"psn_no": "P9", "setl_id": "S-late"}')
    with pytest.raises(FileChanged, match=f"{hashed_bytes} bytes when hashed, {hashed_bytes + 38} in the first"):
        next(bucketed_lines(file, Groups(), 2, hashed_bytes))


@pytest.mark.parametrize("workers", [2, 3])
def test_the_first_pass_joins_members_whose_claims_share_a_setl_id(tmp_path: Path, workers: int) -> None:
    """Given only the bindings, the grouped path finds the shared setl_ids itself: the same
    groups as `plan_split`, every line with its group's worker."""
    claims = [{"psn_no": f"P{m}", "setl_id": f"S{m}"} for m in range(60)]
    claims += [{"psn_no": "P7", "setl_id": "S-SHARED"}, {"psn_no": "P40", "setl_id": "S-SHARED"}]
    claims += [{"psn_no": "P40", "setl_id": "S-TOO"}, {"psn_no": "P51", "setl_id": "S-TOO"}]
    lines = [json.dumps(c).encode() for c in claims]
    path = tmp_path / "claims.jsonl"
    path.write_bytes(b"\n".join(lines))
    bound = Groups()
    bound.union("P3", "P5")
    planned = plan_split(lambda: iter(enumerate(lines, start=1)), [("P3", "P5")])
    with path.open("rb") as file:
        routed = list(bucketed_lines(file, bound, workers))
    assert bound.find("P7") == bound.find("P40") == bound.find("P51") == planned.find("P51")
    assert bound.find("P3") == bound.find("P5") != bound.find("P7")
    for _, raw, worker in routed:
        assert worker == worker_of(raw, planned, workers)
    joined = {worker for _, raw, worker in routed if json.loads(raw)["psn_no"] in ("P7", "P40", "P51")}
    assert len(joined) == 1


def test_lines_without_a_setl_id_join_no_group() -> None:
    claims = [b'{"psn_no": "P1"}', b'{"psn_no": "P2", "setl_id": ""}', b'{"psn_no": "P3", "setl_id": "S1"}']
    groups = plan_split(lambda: iter(enumerate(claims, start=1)), [])
    assert len({groups.find(p) for p in ("P1", "P2", "P3")}) == 3


def test_sigterm_and_sighup_interrupt_a_grouped_run_as_ctrl_c_does() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with _signals_interrupt(signal.SIGTERM, signal.SIGHUP):
        for number in (signal.SIGTERM, signal.SIGHUP):
            with pytest.raises(KeyboardInterrupt):
                os.kill(os.getpid(), number)
                time.sleep(1)  # the handler runs at the next bytecode; never reached
    assert signal.getsignal(signal.SIGTERM) is before


def test_an_interrupt_while_the_results_are_written_waits_for_the_last_of_them() -> None:
    before = signal.getsignal(signal.SIGTERM)
    written = []
    with pytest.raises(KeyboardInterrupt), _interrupts_deferred(signal.SIGINT, signal.SIGTERM):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)  # the handler has run: noted, the block goes on
        written.append("every block")
    assert written == ["every block"]
    with pytest.raises(KeyboardInterrupt), _interrupts_deferred(signal.SIGINT, signal.SIGTERM):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGTERM)  # a second one stops at once
        time.sleep(1)
        written.append("never")
    assert written == ["every block"]
    assert signal.getsignal(signal.SIGTERM) is before


def test_results_come_back_in_input_order_up_to_the_first_line_without_one() -> None:
    held = InputOrder()
    try:
        assert list(held.blocks()) == []
        held.add(3, b'{"line": 3}', None)
        held.add(1, b'{"line": 1, "status": "rejected"}', b'{"line": 1, "reason": "not_json"}')
        held.add(5, b'{"line": 5}', None)
        held.add(2, '{"line": "二"}'.encode(), None)
        assert list(held.blocks()) == [  # a rejected line ends its block: its reject line follows it
            (1, b'{"line": 1, "status": "rejected"}\n', b'{"line": 1, "reason": "not_json"}\n'),
            (2, '{"line": "二"}\n'.encode() + b'{"line": 3}\n', b""),
        ]  # line 4 has none yet: line 5 waits for it
        held.add(4, b'{"line": 4, "status": "rejected"}', b'{"line": 4, "reason": "duplicate"}')
        # A block ends once it holds 40 bytes or more (a result and its reject line count together).
        assert list(held.blocks(block_bytes=40)) == [
            (1, b'{"line": 1, "status": "rejected"}\n', b'{"line": 1, "reason": "not_json"}\n'),
            (
                3,
                '{"line": "二"}\n'.encode() + b'{"line": 3}\n{"line": 4, "status": "rejected"}\n',
                b'{"line": 4, "reason": "duplicate"}\n',
            ),
            (1, b'{"line": 5}\n', b""),
        ]
    finally:
        held.close()


@pytest.mark.parametrize(
    ("hashed", "added", "read"),
    [
        (b"A\nBB\n", b"C\n", [(1, b"A"), (2, b"BB")]),
        (b"A\nBB", b"B\nC\n", [(1, b"A"), (2, b"BB")]),  # the last line as it was when hashed
        (b"A\r\n" + b"x" * 40, b"x" * 10 + b"\n", [(1, b"A"), (2, b"x" * 31)]),  # cut at its length then
    ],
    ids=["a line added", "the last line lengthened", "an over-long last line lengthened"],
)
def test_a_streamed_file_is_read_as_it_was_hashed_and_a_change_of_length_is_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, hashed: bytes, added: bytes, read: list[tuple[int, bytes]]
) -> None:
    monkeypatch.setattr("bulk.lines.LINE_BYTES_MAX", 30)
    path = tmp_path / "claims.jsonl"
    path.write_bytes(hashed + added)
    with path.open("rb") as file:
        given = list(read_lines(AsHashed(file, len(hashed))))
        assert given == read
        if len(hashed) > 40:
            assert given[1][1].bytes_total == 40  # type: ignore[attr-defined]
        with pytest.raises(FileChanged, match=f"{len(hashed)} bytes when the run began, {len(hashed + added)} now"):
            check_unchanged_length(file, len(hashed))
        check_unchanged_length(file, len(hashed + added))  # the same length: nothing to say
