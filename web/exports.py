"""Every page's table as CSV or as a workbook: what the page shows, nothing more (projections.exports)."""

from __future__ import annotations

from starlette.responses import Response

from projections.exports import to_csv, to_xlsx

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def export(name: str, title: str, rows: list[list[str]], fmt: str) -> Response:
    if fmt == "xlsx":
        body, media = to_xlsx(title, rows), XLSX
    else:
        body, media = to_csv(rows), "text/csv; charset=utf-8"
    headers = {"Content-Disposition": f'attachment; filename="{name}.{fmt}"'}
    return Response(body, media_type=media, headers=headers)
