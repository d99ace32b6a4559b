"""The record of `yibao verify` runs (yibao.verify_runs, global migration 0031): appended by the
command after it has reported, read by the console's overview."""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs
import psycopg
from psycopg.types.json import Jsonb


@attrs.frozen
class VerifyRun:
    id: int
    at: dt.datetime
    ran_by: str
    ran_by_known: bool
    region: str
    ok: bool
    problems: int
    first_problem: str | None
    position: int
    checked: dict[str, int]


_COLUMNS = "id, at, ran_by, ran_by_known, region, ok, problems, first_problem, position, checked"


class VerifyRuns:
    """Rows are only ever added; the latest of a region is its row of the highest id."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def record(
        self, *, ran_by: str, ran_by_known: bool, region: str, problems: list[str], position: int,
        checked: dict[str, int],
    ) -> None:  # fmt: skip
        self._conn.execute(
            "INSERT INTO yibao.verify_runs (ran_by, ran_by_known, region, ok, problems, first_problem, position,"
            " checked) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (ran_by, ran_by_known, region, not problems, len(problems), problems[0] if problems else None, position,
             Jsonb(checked)),
        )  # fmt: skip

    def latest(self, regions: list[str]) -> dict[str, VerifyRun]:
        """The latest run of each of `regions` that has one."""
        rows = self._conn.execute(
            f"SELECT DISTINCT ON (region) {_COLUMNS} FROM yibao.verify_runs WHERE region = ANY(%s)"  # noqa: S608
            " ORDER BY region, id DESC",
            (regions,),
        )
        return {row[4]: VerifyRun(*row) for row in rows}
