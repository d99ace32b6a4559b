"""`yibao approvals ...`: requests that wait for a second person (复核) before they take effect."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from app.region import RegionApplication
from bulk.lines import dumps
from commands.clearing import carry_remote_care
from commands.context import CliContext
from commands.finance import shown_figures
from commands.identity import acting_user
from commands.params import OutputPath
from commands.reports import report, up_to_date
from core.approval import ApprovalRefused, ApprovalRequest
from core.clearing import month_bounds
from core.errors import YibaoError
from core.hospital import OwedAt
from core.money import format_yuan
from core.results import settlement_result
from core.roles import Action
from projections.clearing import month_reader
from projections.console_reads import ApprovalRow, approval_rows
from projections.exports import to_csv, to_xlsx
from projections.read_model import reading
from projections.statements import owed_reader


def request_line(request: ApprovalRequest | ApprovalRow, region: str) -> dict[str, Any]:
    """One request as a JSON object: what, by whom, its amount, who decided it."""
    status = "pending_approval" if request.status == "pending" else str(request.status)
    # A reversal or correction acts on a settlement; a clearing on "hospital:month"; a payment on a hospital.
    subject = "setl_id" if request.kind in ("reverse", "correct") else "subject"
    return {
        "request_id": request.request_id, "region": region, "status": status, "kind": request.kind,
        subject: request.subject, "version": request.subject_version, "amount": format_yuan(request.amount),
        "maker": request.maker, "reason": request.reason, "checker": request.checker,
    }  # fmt: skip


@click.group()
def approvals() -> None:
    """Requests for a second pair of eyes (四眼原则, 复核): a reversal whose fund payments are above
    the policy's `[controls] approval_above` is recorded as a request by its maker and takes
    effect only when another user with the approver role approves it."""


@approvals.command("list")
@click.option("--status", type=click.Choice(["pending", "approved", "rejected"]), help="Only requests in this state.")
@click.pass_obj
def approvals_list(obj: CliContext, status: str | None) -> None:
    """Every request of every region, one JSON object a line (who made it, who decided it)."""
    for code in obj.store.region_codes():
        with reading(obj.store.region(code)) as (curs, schema):
            found = approval_rows(curs, schema, status=status)
        for request in sorted(found, key=lambda r: r.request_id):
            click.echo(dumps(request_line(request, code)))


@approvals.command("approve")
@click.argument("request_id")
@click.option("--operator", required=True, help="The approver (a user with the approver role; not the maker).")
@click.pass_obj
def approvals_approve(obj: CliContext, request_id: str, operator: str) -> None:
    """Approve REQUEST_ID: its action takes effect now, recorded with both people. Prints the
    request and the action's result."""
    _decide(obj, request_id, operator, approve=True, reason="")
    carry_remote_care(obj)  # an approved reversal or correction of a claim treated in another region


@approvals.command("reject")
@click.argument("request_id")
@click.option("--operator", required=True, help="The approver (a user with the approver role; not the maker).")
@click.option("--reason", required=True, help="Why it is rejected (recorded).")
@click.pass_obj
def approvals_reject(obj: CliContext, request_id: str, operator: str, reason: str) -> None:
    """Reject REQUEST_ID: nothing takes effect; the maker may ask again."""
    _decide(obj, request_id, operator, approve=False, reason=reason)


def _decide(obj: CliContext, request_id: str, operator: str, *, approve: bool, reason: str) -> None:
    checker = acting_user(obj.store, operator, Action.APPROVE)
    for code in obj.store.region_codes():
        app = obj.store.region(code)
        if app.approval_request(request_id) is not None:
            regions = [obj.store.region(c) for c in obj.store.region_codes()]
            request, done = app.decide_request(
                request_id, checker=checker, approve=approve, reason=reason,
                read_month=month_reader(app, regions, up_to_date),
                owed_reader=functools.partial(_owed_reader, app),
            )  # fmt: skip
            line = request_line(request, code)
            if done is not None:
                line["result"] = _result(request, done)
            click.echo(dumps(line))
            return
    raise ApprovalRefused(f"no approval request {request_id}", reason="unknown_request")


def _owed_reader(app: RegionApplication, through: dt.date) -> Callable[[], OwedAt]:
    return owed_reader(app, through, up_to_date)


def _result(request: ApprovalRequest, done: Any) -> dict[str, Any]:
    """What an approved request did: the settlement line, the clearing or the payment."""
    if request.kind == "clear":
        return {"status": done.status, **shown_figures(done.figures), "approved_by": request.checker}
    if request.kind == "pay":
        postings = [{"fund": p.fund, "account": p.account, "party": p.party, "amount": format_yuan(p.amount)}
                    for p in done.postings]  # fmt: skip
        return {"status": done.status, "payment_id": request.details["payment_id"], "postings": postings}
    if request.kind == "reverse":
        return settlement_result(done, "reversed", sign=-1)
    return settlement_result(done, "settled")


REPORT_COLUMNS = (
    ("region", "区划"), ("request_id", "申请号"), ("kind", "类型"), ("subject", "对象"), ("amount", "金额"),
    ("maker", "初审"), ("made_on", "申请日期"), ("checker", "复审"), ("decision", "结果"), ("decided_on", "复审日期"),
    ("reason", "申请理由"), ("rejection", "驳回理由"),
)  # fmt: skip


def report_row(request: ApprovalRequest, region: str) -> dict[str, str]:
    """Who made a request (初审) and who approved or rejected it (复审), and when."""
    return {
        "region": region, "request_id": request.request_id, "kind": request.kind, "subject": request.subject,
        "amount": format_yuan(request.amount), "maker": request.maker, "made_on": request.created_on.date().isoformat(),
        "checker": request.checker or "", "decision": str(request.status), "decided_on": request.decided_on or "",
        "reason": request.reason, "rejection": request.rejection,
    }  # fmt: skip


@report.command("approvals")
@click.option("--month", required=True, help="YYYY-MM: requests made or decided in this month.")
@click.option("--region", help="Only this region (default: all).")
@click.option("--format", "fmt", type=click.Choice(["json", "csv", "xlsx"]), default="json")
@click.option("--out", type=OutputPath(), help="Write to this file (required for xlsx).")
@click.pass_obj
def report_approvals(obj: CliContext, month: str, region: str | None, fmt: str, out: Path | None) -> None:
    """Who made and who approved or rejected what (初审/复审) in a month: one row per request made
    or decided in it, as JSON lines, CSV or a workbook."""
    month_bounds(month)
    if fmt == "xlsx" and out is None:
        raise YibaoError("--format xlsx needs --out FILE.xlsx", reason="missing_out")
    rows = []
    for code in [region] if region else obj.store.region_codes():
        for request in obj.store.region(code).approval_requests():
            row = report_row(request, code)
            if month in (row["made_on"][:7], row["decided_on"][:7]):
                rows.append(row)
    rows.sort(key=lambda r: (r["made_on"], r["region"], r["request_id"]))
    if fmt == "json":
        text = "".join(dumps(r) + "\n" for r in rows)
        body = text.encode("utf-8")
    else:
        table = [[f"{en} {zh}" for en, zh in REPORT_COLUMNS], *([r[en] for en, _ in REPORT_COLUMNS] for r in rows)]
        body = to_xlsx(f"复核 {month}", table) if fmt == "xlsx" else to_csv(table)
    if out is None:
        click.echo(body.decode("utf-8"), nl=False)
        return
    try:
        out.write_bytes(body)
    except OSError as exc:  # checked writable when the command line was read, but a disk can fill
        raise YibaoError(f"--out {out}: {exc.strerror or exc}", reason="cannot_write_file") from None
    click.echo(f"wrote {out}: {len(rows)} requests")
