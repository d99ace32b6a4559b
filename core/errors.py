"""The root of yibao's named errors.

Every expected failure is a `YibaoError` subclass with a `reason` name (snake_case) that scripts
can match on; the CLI prints `error: <reason>: <message>` and exits non-zero.
"""

from __future__ import annotations


class YibaoError(Exception):
    reason: str = "error"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type's name when it has none: what a
    one-line error report shows."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


class UnknownRegion(YibaoError):
    reason = "unknown_region"


class InvalidInput(YibaoError):
    reason = "invalid_input"


class StaleRead(YibaoError):
    """Aggregates read in separate queries disagree: another writer committed in between.
    The unit of work is recomputed from fresh reads, like a version conflict."""

    reason = "stale_read"
