"""The console's access log (yibao.access_log): who viewed which member's data, and when."""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs
import psycopg


@attrs.frozen
class Access:
    id: int
    at: dt.datetime
    user_name: str
    what: str
    subject: str


class AccessLog:
    """Written on every view of a member's data; read by auditors, newest first, a page at a time."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def record(self, user_name: str, what: str, subject: str) -> None:
        self._conn.execute(
            "INSERT INTO yibao.access_log (user_name, what, subject) VALUES (%s, %s, %s)", (user_name, what, subject)
        )

    def page(self, before: int | None = None, rows: int = 100) -> list[Access]:
        """The `rows` newest entries older than id `before` (keyset: never OFFSET)."""
        found = self._conn.execute(
            "SELECT id, at, user_name, what, subject FROM yibao.access_log WHERE id < %s ORDER BY id DESC LIMIT %s",
            (before if before is not None else 2**62, rows),
        )
        return [Access(*row) for row in found]
