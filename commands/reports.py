"""`yibao projections ...` and `yibao report ...`: read models and the reports built on them."""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path

import click

from app.region import RegionApplication
from bulk.lines import dumps
from commands.context import CliContext
from commands.params import OutputPath
from core.errors import YibaoError
from projections import balance_sheet as bs
from projections import statements
from projections import transfers as transfer_reports
from projections.read_model import Progress, catch_up, open_view, page_events_max, progress, reading, rebuild


def _on_page(region: str):
    import sys

    if not sys.stderr.isatty():
        return None

    def show(p: Progress) -> None:
        click.echo(f"\rprojection {region}: {p.position:,}/{p.head:,}", err=True, nl=False)

    return show


def up_to_date(app: RegionApplication) -> Progress:
    """Commands that read a projection first bring it up to date."""
    return catch_up(app, on_page=_on_page(app.region))


@click.group()
def projections() -> None:
    """Read models (journal, settlements, member usage) built from each region's event log."""


def _regions(obj: CliContext, region: str | None) -> list[str]:
    return [region] if region else obj.store.region_codes()


@projections.command("status")
@click.option("--region", help="Only this region (default: all).")
@click.pass_obj
def projections_status(obj: CliContext, region: str | None) -> None:
    """How far each region's read model has processed its event log."""
    for code in _regions(obj, region):
        app = obj.store.region(code)
        p = progress(app, open_view(app))
        state = "up to date" if p.behind == 0 else f"{p.behind:,} events behind"
        click.echo(f"{code}\tposition {p.position:,} of {p.head:,}\t{state}")


PAGE_SIZE = click.option(
    "--page-size", type=click.IntRange(1, 1_000_000), default=page_events_max, show_default=True,
    help="Events per transaction (each page is written with its position).",
)  # fmt: skip


@projections.command("run")
@click.option("--region", help="Only this region (default: all).")
@PAGE_SIZE
@click.pass_obj
def projections_run(obj: CliContext, region: str | None, page_size: int) -> None:
    """Catch up from the tracked position (resumable: safe to interrupt and run again)."""
    for code in _regions(obj, region):
        p = catch_up(obj.store.region(code), on_page=_on_page(code), page_size=page_size)
        click.echo(f"{code}\tposition {p.position:,} of {p.head:,}")


@projections.command("rebuild")
@click.option("--region", help="Only this region (default: all).")
@PAGE_SIZE
@click.pass_obj
def projections_rebuild(obj: CliContext, region: str | None, page_size: int) -> None:
    """Drop the read model and build it again from the first event."""
    for code in _regions(obj, region):
        p = rebuild(obj.store.region(code), on_page=_on_page(code), page_size=page_size)
        click.echo(f"{code}\trebuilt to position {p.position:,}")


@click.group()
def report() -> None:
    """Reports for finance staff: balance sheet, hospital statement, coverage."""


@report.command("balance-sheet")
@click.option("--region", required=True, help="Pooling region code.")
@click.option("--as-of", "as_of", type=click.DateTime(["%Y-%m-%d"]), help="Date (default today).")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv", "xlsx"]), default="table")
@click.option("--out", type=OutputPath(), help="Write to this file (required for xlsx).")
@click.pass_obj
def report_balance_sheet(obj: CliContext, region: str, as_of: dt.datetime | None, fmt: str, out: Path | None) -> None:
    """Balance sheet per fund (资产负债表): assets, liabilities, income and expense of the year,
    累计结余, 当年结余, 可支付月数. Amounts in yuan."""
    if fmt == "xlsx" and out is None:
        raise YibaoError("--format xlsx needs --out FILE.xlsx", reason="missing_out")
    app = obj.store.region(region)
    up_to_date(app)
    date = as_of.date() if as_of else dt.date.today()
    with reading(app) as (curs, schema):
        sheet = bs.balance_sheet(curs, schema, region, date)
    if out is None:
        click.echo(_render(sheet, fmt))
        return
    try:
        if fmt == "xlsx":
            write_xlsx(sheet, out)
        else:
            out.write_text(_render(sheet, fmt) + "\n", encoding="utf-8")
    except OSError as exc:  # checked writable when the command line was read, but a disk can fill
        raise YibaoError(f"--out {out}: {exc.strerror or exc}", reason="cannot_write_file") from None
    if fmt == "xlsx":
        click.echo(f"wrote {out}")


def _render(sheet: bs.BalanceSheet, fmt: str) -> str:
    return {"table": bs.render_table, "json": lambda s: dumps(s.to_json()), "csv": to_csv}[fmt](sheet)


def _rows(sheet: bs.BalanceSheet) -> list[list[str]]:
    rows = [["line", "行项目", *[f.fund for f in sheet.funds]]]
    for name in (*bs.LINES, "months_of_capacity"):
        zh, en = bs.LABELS[name]
        rows.append([en, zh, *[str(f.to_json()[name] or "") for f in sheet.funds]])
    return rows


def to_csv(sheet: bs.BalanceSheet) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(_rows(sheet))
    return buffer.getvalue().rstrip("\n")


def write_xlsx(sheet: bs.BalanceSheet, path: Path) -> None:
    """A workbook a finance officer opens directly: numbers as numbers, yuan format."""
    from decimal import Decimal

    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    ws = book.active
    ws.title = "资产负债表"
    ws.append([f"Balance sheet 资产负债表 — region {sheet.region}, as of {sheet.as_of.isoformat()}"])
    ws["A1"].font = Font(bold=True)
    for r, row in enumerate(_rows(sheet), start=2):
        for c, value in enumerate(row, start=1):
            cell = ws.cell(row=r, column=c)
            if r > 2 and c > 2 and value not in ("", None):
                cell.value = Decimal(value)  # exact: yuan strings, never float
                cell.number_format = "#,##0.00" if row[0] != "months of payment capacity" else "0.0"
            else:
                cell.value = value
    ws.column_dimensions["A"].width = 30
    ws.column_dimensions["B"].width = 22
    # Built in memory, then written: a zip file that fails half-written (a full disk) would
    # complain again as it is collected, a traceback after the named error.
    buffer = io.BytesIO()
    book.save(buffer)
    path.write_bytes(buffer.getvalue())


@report.command("hospital")
@click.option("--region", required=True)
@click.option("--hospital", required=True, help="fixmedins_code.")
@click.option("--year", type=int, required=True)
@click.pass_obj
def report_hospital(obj: CliContext, region: str, hospital: str, year: int) -> None:
    """Hospital statement (JSON): settled by fund, deductions, payments, recoveries, outstanding,
    and use of the annual total budget (总额预算)."""
    app = obj.store.region(region)
    up_to_date(app)
    account = app.hospital_account(hospital)
    budget = account.budgets.get(year) if account else None
    with reading(app) as (curs, schema):
        statement = statements.hospital_statement(curs, schema, hospital, year, budget)
    click.echo(dumps(statement))


@report.command("coverage")
@click.option("--region", required=True)
@click.option("--year", type=int, required=True)
@click.pass_obj
def report_coverage(obj: CliContext, region: str, year: int) -> None:
    """Comprehensive coverage ratio (综合保障率 = all payers / total cost) per assistance category."""
    app = obj.store.region(region)
    up_to_date(app)
    with reading(app) as (curs, schema):
        for row in statements.coverage(curs, schema, year):
            click.echo(dumps(row))


@report.command("transfers")
@click.option("--region", required=True)
@click.option("--year", type=int, required=True, help="Count transfers dated in this year, per month.")
@click.option("--as-of", type=click.DateTime(["%Y-%m-%d"]), help="Balances in transit as of this date (default today).")
@click.pass_obj
def report_transfers(obj: CliContext, region: str, year: int, as_of: dt.datetime | None) -> None:
    """Transfers out and in per month (not rejected), and the balances in transit (JSON)."""
    app = obj.store.region(region)
    up_to_date(app)
    with reading(app) as (curs, schema):
        click.echo(
            dumps(
                {
                    "region": region,
                    "year": year,
                    "months": transfer_reports.monthly(curs, schema, year),
                    "pending_review": len(
                        transfer_reports.transfers(curs, schema, direction="out", status="pending_review")
                    ),
                    **transfer_reports.balances_in_transit(curs, schema, (as_of.date() if as_of else dt.date.today())),
                }
            )
        )
