"""`claims settle --grouped`: the file's lines bucket by bucket, each group's lines together and in
file order; results restored to input order."""

from __future__ import annotations

import io
import json

import pytest

from commands import grouped
from commands.grouped import InputOrder, bucketed_lines
from commands.io import read_lines
from commands.workers import Groups, group_hash, worker_of


def claims_file(members: int, rounds: int) -> tuple[io.BytesIO, list[bytes]]:
    """Each member's claims `members` lines apart (as in a month's file), plus lines that do not decode."""
    lines = [
        json.dumps({"psn_no": f"P{m}", "setl_id": f"S{r}-{m}"}).encode() for r in range(rounds) for m in range(members)
    ]
    lines[7:7] = [b"{not json", b"", b'{"psn_no": 7}']
    return io.BytesIO(b"\n".join(lines) + b"\n"), lines


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_every_line_once_each_group_in_one_bucket_and_in_file_order(
    monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    monkeypatch.setattr(grouped, "bucket_lines", 40)
    groups = Groups()
    groups.union("P3", "P5")  # a family: one group
    file, lines = claims_file(members=50, rounds=5)
    given = list(bucketed_lines(file, groups, workers))
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


def test_an_over_long_line_is_cut_as_in_file_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("commands.io.LINE_BYTES_MAX", 30)
    text = b'{"psn_no": "P1"}\n' + b"x" * 100 + b'\n{"psn_no": "P2"}\n'
    assert sorted(bucketed_lines(io.BytesIO(text), Groups(), 2)) == list(read_lines(io.BytesIO(text)))
    assert list(read_lines(io.BytesIO(text)))[1] == (2, b"x" * 31)  # cut, then rejected by the settling


def test_results_come_back_in_input_order_up_to_the_first_line_without_one() -> None:
    held = InputOrder()
    try:
        held.add(3, '{"line": 3}', None)
        held.add(1, '{"line": 1, "status": "rejected"}', '{"line": 1, "reason": "not_json"}')
        held.add(5, '{"line": 5}', None)
        held.add(2, '{"line": "二"}', None)
        assert list(held.lines()) == [
            ['{"line": 1, "status": "rejected"}', '{"line": 1, "reason": "not_json"}'],
            ['{"line": "二"}', None],
            ['{"line": 3}', None],
        ]  # line 4 has none yet: line 5 waits for it
        held.add(4, '{"line": 4}', None)
        assert [texts[0] for texts in held.lines()][3:] == ['{"line": 4}', '{"line": 5}']
    finally:
        held.close()
