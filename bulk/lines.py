"""Reading record files line by line and writing JSON lines: the bulk pipeline's file format."""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any

import msgspec

from core.records import LINE_BYTES_MAX

_ENCODER = msgspec.json.Encoder()


UTF8_BOM = b"\xef\xbb\xbf"  # Windows editors start a UTF-8 file with it


def line_text(line_no: int, chunk: bytes) -> bytes:
    """A line as read from the file, as every reader hands it on: without its line end, and the
    first without a UTF-8 byte order mark (not part of the JSON)."""
    line = chunk.rstrip(b"\r\n")
    return line.removeprefix(UTF8_BOM) if line_no == 1 else line


def read_lines(stream: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    """(line number, bytes) for every line; an over-long line is cut (and later rejected)
    without ever holding more than `LINE_BYTES_MAX` bytes of it."""
    line_no = 0
    while True:
        chunk = stream.readline(LINE_BYTES_MAX + 1)
        if not chunk:
            return
        line_no += 1
        if len(chunk) > LINE_BYTES_MAX and not chunk.endswith(b"\n"):
            while True:  # skip the rest of the long line
                rest = stream.readline(LINE_BYTES_MAX)
                if not rest or rest.endswith(b"\n"):
                    break
        yield line_no, line_text(line_no, chunk)


def dumps(obj: Any) -> str:
    return _ENCODER.encode(obj).decode("utf-8")
