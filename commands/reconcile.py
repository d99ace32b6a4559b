"""`yibao reconcile totals|detail`: a hospital's figures against the centre's (对账; national 3201, 3202);
`yibao reconcile bank`: a fund's bank statement against the fund's bank postings (银行对账).

Each file is recorded once as a reconciliation (operator, file sha256, hospital or fund, period,
result): the same file again gives the same answer and records nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator
from typing import IO, Any

import click

from bulk.lines import dumps, read_lines
from commands.context import CliContext
from commands.funds import _region
from commands.identity import acting_user
from commands.params import DATE
from commands.reports import report, up_to_date
from core.bank_statement import (
    check_fund,
    decode_statement,
    match,
    parse_statement,
    recorded_result,
    statement_period,
    unmatched_lines,
    within,
)
from core.bank_statement import summary as bank_summary
from core.errors import YibaoError
from core.reconcile import (
    AMOUNTS_DIFFER,
    DetailLine,
    difference,
    parse_detail,
    parse_totals,
    summary,
    totals_result,
)
from core.reconciliation import BANK_KIND, Reconciliation
from core.records import RecordRejected, decode_line
from core.roles import Action
from projections.read_model import reading
from projections.reconciliation import bank_postings, center_totals, joined_lines
from store.app import Store


@click.group()
def reconcile() -> None:
    """Reconcile with hospitals (对账): totals (3201) and settlement lines (3202); and a fund's
    bank statement with its bank postings."""


class _Hashed:
    """A binary file read line by line, its sha256 taken on the way."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream, self.sha256 = stream, hashlib.sha256()

    def readline(self, size: int = -1) -> bytes:
        chunk = self.stream.readline(size)
        self.sha256.update(chunk)
        return chunk


def _regions(store: Store) -> list[str]:
    codes = store.region_codes()
    if not codes:
        raise YibaoError("no region: nothing to reconcile against", reason="no_region")
    for code in codes:
        up_to_date(store.region(code))
    return codes


def _record(store: Store, region: str, operator: str, **key_and_result: Any) -> None:
    store.region(region).record_reconciliation(operator=operator, on_date=dt.date.today(), **key_and_result)


@reconcile.command("totals")
@click.argument("file", type=click.File("rb"))
@click.option("--operator", required=True, help="Who reconciles (recorded).")
@click.option("--region", help="Region that records it (default: the first).")
@click.pass_obj
def reconcile_totals(obj: CliContext, file: IO[bytes], operator: str, region: str | None) -> None:
    """Compare each hospital totals line of FILE (JSON lines, 3201) with the centre's figures.

    One result line each: the line's keys, `center` (the centre's four figures), `stmt_rslt`
    "0" when all four agree to the fen, "1" otherwise, and `stmt_rslt_dscr` naming those that
    differ. `refd_setl_flag` "0" leaves reversal lines out, "1" or absent counts them in.
    A bad line is a rejected line with its reason."""
    operator = acting_user(obj.store, operator, Action.PAY)
    codes = _regions(obj.store)
    hashed = _Hashed(file)
    checked: list[tuple[dict[str, Any], str, dict[str, Any]]] = []
    with reading(obj.store.region(codes[0])) as (curs, _):
        for line_no, raw in read_lines(hashed):
            center: dict[str, Any] = {}
            try:
                given = decode_line(raw)
                out, verdict, center = _totals_line(curs, codes, given)
            except RecordRejected as exc:
                out, verdict = {"line": line_no, "status": "rejected", "reason": exc.reason, "detail": str(exc)}, ""
            click.echo(dumps(out))
            checked.append((out, verdict, center))
    for (hospital, begin, end), (results, centers) in _by_period(checked).items():
        # The centre's figures are kept so that a clearing can see they have not changed since.
        result = {"stmt_rslt": "0" if all(r == "0" for r in results) else "1", "lines": results, "center": centers}
        _record(obj.store, region or codes[0], operator, kind="totals", file_sha256=hashed.sha256.hexdigest(),
                hospital=hospital, begin=begin, end=end, result=result)  # fmt: skip


def _totals_line(curs: Any, codes: list[str], given: dict[str, Any]) -> tuple[dict[str, Any], str, dict[str, Any]]:
    """The result line, its verdict, and the centre's figures with the line's key (fen)."""
    line = parse_totals(given)
    center = center_totals(
        curs, codes, line.fixmedins_code, line.insutype, line.clr_type, line.begin, line.end,
        with_refunds=line.with_refunds,
    )  # fmt: skip
    key = {"insutype": line.insutype, "clr_type": line.clr_type, "with_refunds": line.with_refunds}
    return (*totals_result(given, center), {**key, "figures": center})


Verdicts = tuple[list[str], list[dict[str, Any]]]


def _by_period(checked: list[tuple[dict[str, Any], str, dict[str, Any]]]) -> dict[tuple[str, str, str], Verdicts]:
    """The verdicts and centre's figures of a file's lines by (hospital, begin, end): each is one
    period's reconciliation."""
    periods: dict[tuple[str, str, str], Verdicts] = {}
    for out, verdict, center in checked:
        if verdict:
            key = (out["fixmedins_code"], out["stmt_begndate"], out["stmt_enddate"])
            verdicts, centers = periods.setdefault(key, ([], []))
            verdicts.append(verdict)
            centers.append(center)
    return periods


@reconcile.command("detail")
@click.argument("file", type=click.File("rb"))
@click.option("--hospital", required=True, help="The hospital (fixmedins_code) whose lines FILE holds.")
@click.option("--from", "begin", type=DATE, required=True, help="First date of the period.")
@click.option("--to", "end", type=DATE, required=True, help="Last date of the period (inclusive).")
@click.option("--operator", required=True, help="Who reconciles (recorded).")
@click.option("--region", help="Region that records it (default: the first).")
@click.pass_obj
def reconcile_detail(
    obj: CliContext, file: IO[bytes], hospital: str, begin: dt.date, end: dt.date, operator: str, region: str | None
) -> None:
    """Compare a hospital's settlement lines (FILE: JSON lines or the national TAB-separated file,
    fields setl_id, mdtrt_id, psn_no, medfee_sumamt, fund_pay_sumamt, acct_pay, refd_setl_flag)
    with the centre's lines dated in [--from, --to], per (setl_id, refd_setl_flag), amounts
    summed. One JSON line per difference (reason only_in_center, only_in_hospital or
    amounts_differ), then a summary line. Exits 0 whether or not it found differences; a bad
    line goes to stderr with its number and reason and is counted as `rejected`."""
    if end < begin:
        raise YibaoError("--to is before --from", reason="bad_period")
    operator = acting_user(obj.store, operator, Action.PAY)
    codes = _regions(obj.store)
    hashed = _Hashed(file)
    counts = {"matched": 0, "rejected": 0}
    with reading(obj.store.region(codes[0])) as (curs, _):
        for setl_id, flag, center, declared in joined_lines(curs, codes, hospital, begin, end, _detail(hashed, counts)):
            found = difference(setl_id, flag, center, declared)
            if found is None:
                counts["matched"] += 1
                continue
            counts[found["reason"]] = counts.get(found["reason"], 0) + 1
            click.echo(dumps(found))
    line = summary(counts)
    if counts["rejected"]:
        line["rejected"] = counts["rejected"]
    click.echo(dumps(line))
    differ = sum(line[r] for r in ("only_in_center", "only_in_hospital", AMOUNTS_DIFFER))
    result = {"stmt_rslt": "0" if differ == 0 and not counts["rejected"] else "1", **line}
    del result["summary"]
    _record(obj.store, region or codes[0], operator, kind="detail", file_sha256=hashed.sha256.hexdigest(),
            hospital=hospital, begin=begin.isoformat(), end=end.isoformat(), result=result)  # fmt: skip


def _detail(hashed: _Hashed, counts: dict[str, int]) -> Iterator[DetailLine]:
    for line_no, raw in read_lines(hashed):
        if not raw.strip():
            continue
        try:
            yield parse_detail(raw)
        except (RecordRejected, UnicodeDecodeError) as exc:
            counts["rejected"] += 1
            reason = getattr(exc, "reason", "not_utf8")
            click.echo(f"line {line_no}: {reason}: {exc}", err=True)


@reconcile.command("bank")
@click.argument("file", type=click.File("rb"))
@click.option("--fund", required=True, help="The fund (national code) whose bank account FILE is a statement of.")
@click.option("--operator", required=True, help="Who reconciles (recorded).")
@click.option("--region", help="The pooling region whose books hold the account (needed when there are several).")
@click.option("--from", "begin", type=DATE, help="First date of the period (default: the statement's first).")
@click.option("--to", "end", type=DATE, help="Last date of the period, inclusive (default: the statement's last).")
@click.pass_obj
def reconcile_bank(
    obj: CliContext, file: IO[bytes], fund: str, operator: str, region: str | None, begin: dt.date | None,
    end: dt.date | None,
) -> None:  # fmt: skip
    """Match a bank statement (FILE: CSV of date YYYY-MM-DD, signed amount in yuan (+ into the
    account), counterparty, reference; a header row allowed; UTF-8, with or without BOM, or GBK)
    with the fund's postings to its bank account, one to one on date and amount, counterparty
    and reference breaking ties. One JSON line per item found on one side only (reason
    only_in_bank or only_in_center), then a summary line. Exits 0 whether or not they differ; a
    line that cannot be read refuses the whole file, naming the line."""
    operator = acting_user(obj.store, operator, Action.PAY)
    check_fund(fund)
    data = file.read()
    text, encoding = decode_statement(data)
    lines = parse_statement(text)
    period = statement_period(lines, begin, end)
    inside = within(lines, *period)
    app = _region(obj, region)
    up_to_date(app)
    with reading(app) as (curs, schema):
        matching = match(inside, bank_postings(curs, schema, fund, *period))
    for line in unmatched_lines(matching):
        click.echo(dumps(line))
    found = {**bank_summary(fund, matching), "from": period[0], "to": period[1], "encoding": encoding}
    if len(inside) < len(lines):
        found["outside_period"] = len(lines) - len(inside)
    click.echo(dumps(found))
    app.record_reconciliation(
        operator=operator, on_date=dt.date.today(), kind=BANK_KIND, file_sha256=hashlib.sha256(data).hexdigest(),
        hospital="", fund=fund, begin=period[0], end=period[1], result=recorded_result(found),
    )  # fmt: skip


@report.command("reconciliation")
@click.option("--region", help="Only this region (default: all).")
@click.pass_obj
def report_reconciliation(obj: CliContext, region: str | None) -> None:
    """Reconciled periods by hospital, then bank statements by region and fund, with their status:
    one JSON line per hospital (or fund), period and kind (totals, detail or bank), with the last
    file's `stmt_rslt` ("0" reconciled, "1" differences), who checked it, when, and how many files
    were checked for it."""
    last: dict[tuple[Any, ...], tuple[Any, Reconciliation, int]] = {}
    for code in [region] if region else obj.store.region_codes():
        for r in obj.store.region(code).reconciliations():
            # A fund's bank account is the region's own; a hospital's periods are one whichever records them.
            party = (code, r.fund) if r.kind == BANK_KIND else ("", r.hospital)
            key = (r.kind == BANK_KIND, *party, r.begin, r.end, r.kind)
            seen = last.get(key)
            if seen is None or r.modified_on > seen[1].modified_on:
                last[key] = (code, r, (seen[2] if seen else 0) + 1)
            else:
                last[key] = (*seen[:2], seen[2] + 1)
    for _, (code, r, files) in sorted(last.items()):
        named = {"fund": r.fund} if r.kind == BANK_KIND else {"fixmedins_code": r.hospital}
        click.echo(dumps({
            "region": code, **named, "stmt_begndate": r.begin, "stmt_enddate": r.end, "kind": r.kind,
            "stmt_rslt": r.result["stmt_rslt"], "operator": r.operator, "on_date": r.on_date, "files": files,
            "file_sha256": r.file_sha256,
        }))  # fmt: skip
