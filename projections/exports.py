"""A report's rows as CSV text or as a workbook: amounts (yuan strings) as exact numbers. Shared
by the CLI's reports and the console's exports."""

from __future__ import annotations

import csv
import io
from decimal import Decimal, InvalidOperation


def to_csv(rows: list[list[str]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue().encode("utf-8")


def to_xlsx(title: str, rows: list[list[str]]) -> bytes:
    """Amounts (yuan strings) become exact numbers; everything else stays text."""
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = title[:31]
    for r, row in enumerate(rows, start=1):
        for c, value in enumerate(row, start=1):
            cell = sheet.cell(row=r, column=c)
            number = _number(value) if r > 1 else None
            if number is not None:
                cell.value = number
                cell.number_format = "#,##0.00"
            else:
                cell.value = value
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _number(value: str) -> Decimal | None:
    """A yuan amount such as "-1234.56" (two decimals), never a code that looks like a number."""
    if not isinstance(value, str) or "." not in value or len(value.rsplit(".", 1)[1]) != 2:
        return None
    try:
        return Decimal(value)
    except InvalidOperation:
        return None
