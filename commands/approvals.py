"""`yibao approvals ...`: requests that wait for a second person (复核) before they take effect."""

from __future__ import annotations

from typing import Any

import click

from bulk.lines import dumps
from commands.context import CliContext
from commands.identity import acting_user
from core.approval import ApprovalRefused, ApprovalRequest
from core.money import format_yuan
from core.results import settlement_result
from core.roles import Action
from projections.console_reads import ApprovalRow, approval_rows
from projections.read_model import reading


def request_line(request: ApprovalRequest | ApprovalRow, region: str) -> dict[str, Any]:
    """One request as a JSON object: what, by whom, its amount, who decided it."""
    status = "pending_approval" if request.status == "pending" else str(request.status)
    return {
        "request_id": request.request_id, "region": region, "status": status, "kind": request.kind,
        "setl_id": request.subject, "version": request.subject_version, "amount": format_yuan(request.amount),
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
            request, facts = app.decide_request(request_id, checker=checker, approve=approve, reason=reason)
            line = request_line(request, code)
            if facts is not None:
                reversed_only = request.kind == "reverse"
                line["result"] = (
                    settlement_result(facts, "reversed", sign=-1)
                    if reversed_only
                    else (settlement_result(facts, "settled"))
                )
            click.echo(dumps(line))
            return
    raise ApprovalRefused(f"no approval request {request_id}", reason="unknown_request")
