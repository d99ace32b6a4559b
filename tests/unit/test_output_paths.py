"""An output file named on the command line is checked writable before the command does anything."""

from __future__ import annotations

from pathlib import Path

from commands.params import unwritable


def test_an_output_path_is_unwritable_when_a_directory_or_in_no_directory(tmp_path: Path) -> None:
    (tmp_path / "old.jsonl").write_text("x")
    assert unwritable(str(tmp_path / "new.jsonl")) is None
    assert unwritable(str(tmp_path / "old.jsonl")) is None
    assert unwritable(str(tmp_path)) == "it is a directory"
    assert unwritable(str(tmp_path / "nowhere" / "x.jsonl")) == f"there is no directory {tmp_path / 'nowhere'}"
