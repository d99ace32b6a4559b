"""Click parameter types that validate at the edge: yuan amounts, dates, region codes."""

from __future__ import annotations

import datetime as dt
from typing import Any

import click

from core.errors import YibaoError
from core.money import AmountError, parse_yuan


class YuanType(click.ParamType):
    """A yuan amount with at most two decimals, converted to integer fen (never float)."""

    name = "yuan"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            return parse_yuan(str(value))
        except AmountError as exc:
            self.fail(f"{value!r} is not a yuan amount ({exc.reason})", param, ctx)


class DateType(click.ParamType):
    name = "date"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> dt.date:
        if isinstance(value, dt.date):
            return value
        try:
            return dt.date.fromisoformat(str(value))
        except ValueError:
            self.fail(f"{value!r} is not a date YYYY-MM-DD", param, ctx)


YUAN = YuanType()
DATE = DateType()


def required_options(**values: str) -> None:
    """Options that click accepts but that must not be blank (operator, reason, ids)."""
    for name, value in values.items():
        if not value.strip():
            raise YibaoError(f"--{name} must not be empty", reason=f"missing_{name}")
