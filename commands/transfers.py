"""`yibao transfers ...` (医保关系转移接续) and `yibao family ...` (家庭共济 bindings).

A transfer starts in the member's region at the transfer date; below 1,000 yuan it is released
at once, otherwise it waits for `approve` or `reject`. Released transfers are carried to the
receiving region and back by the relay, which `start` and `approve` run unless told not to;
`yibao transfers relay` runs it alone (after a crash, or as a scheduled follower).
"""

from __future__ import annotations

import datetime as dt
import getpass
from typing import Any

import click

from app.transfer_cases import MemberNotFound, TransferNotFound, TransferState
from app.transfer_relay import RelayReport, relay
from bulk.batch import route
from bulk.lines import dumps
from commands.context import CliContext
from commands.params import DATE, required_options
from commands.reports import up_to_date
from core.money import format_yuan
from core.transfer import STATUSES, TransferFacts
from projections import transfers as transfer_reports
from projections.read_model import reading
from projections.trace import trace_transfer


def _default_operator() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _releasing_region(obj: CliContext, psn_no: str, on_date: dt.date) -> str:
    region = route(obj.store, [(psn_no, on_date)])[0]
    if region is None:
        raise MemberNotFound(f"no region knows member {psn_no}")
    return region


def _find_transfer(obj: CliContext, transfer: str) -> Any:
    for code in obj.store.region_codes():
        app = obj.store.region(code)
        found = app.transfer(transfer)
        if found is not None:
            return app, found
    raise TransferNotFound(f"no transfer {transfer} in any region")


def _state(obj: CliContext, transfer: str) -> str:
    return _find_transfer(obj, transfer)[1].status


def _facts(f: TransferFacts) -> dict[str, Any]:
    return {
        "transfer_id": f.transfer_id, "psn_no": f.psn_no, "from_region": f.from_region, "to_region": f.to_region,
        "transfer_date": f.transfer_date, "balance": format_yuan(f.balance), "contribution_years": f.contribution_years,
    }  # fmt: skip


def _print(obj: CliContext, state: TransferState, report: RelayReport | None) -> None:
    """The transfer after the command; its status read again when the relay ran."""
    status = _state(obj, state.facts.transfer_id) if report is not None else state.status
    out = {**_facts(state.facts), "review_required": state.facts.review_required}
    click.echo(dumps({**out, "status": status, "recorded": state.recorded}))


def _relay(obj: CliContext, skip: bool) -> RelayReport | None:
    return None if skip else relay(obj.store)


@click.group()
def transfers() -> None:
    """Relationship transfers between pooling regions (医保关系转移接续)."""


@transfers.command("start")
@click.argument("psn_no")
@click.option("--to", "to_region", required=True, help="The receiving region (6 digits).")
@click.option("--date", "transfer_date", type=DATE, required=True, help="Insured in the new region from this date.")
@click.option("--transfer-id", required=True, help="Idempotency key: the same request again records nothing.")
@click.option("--operator", default=_default_operator, show_default="the OS user", help="Who records the request.")
@click.option("--requested-on", type=DATE, help="Date of the request (default today).")
@click.option("--no-relay", is_flag=True, help="Record the release only; `transfers relay` carries it later.")
@click.pass_obj
def transfers_start(
    obj: CliContext, psn_no: str, to_region: str, transfer_date: dt.date, transfer_id: str, operator: str,
    requested_on: dt.date | None, no_relay: bool,
) -> None:  # fmt: skip
    """Move a member, their account balance and contribution years to another region.

    Under 1,000 yuan the transfer completes at once (免审即转); otherwise it waits for
    `transfers approve` or `transfers reject`. Prints the transfer as a JSON object."""
    required_options(operator=operator, transfer_id=transfer_id)
    obj.store.region(to_region)  # the receiving region must exist
    try:  # a rerun goes to the region that recorded the transfer, wherever the member is now
        app, _ = _find_transfer(obj, transfer_id)
    except TransferNotFound:
        app = obj.store.region(_releasing_region(obj, psn_no, transfer_date))
    state = app.start_transfer(
        transfer_id, psn_no=psn_no, to_region=to_region, transfer_date=transfer_date, operator=operator,
        requested_on=requested_on or dt.date.today(),
    )  # fmt: skip
    _print(obj, state, _relay(obj, no_relay))


def _review(
    obj: CliContext, transfer: str, approve: bool, operator: str, reason: str, on_date: dt.date | None
) -> TransferState:
    app, _ = _find_transfer(obj, transfer)
    return app.review_transfer(
        transfer, approve=approve, operator=operator, reason=reason, on_date=on_date or dt.date.today()
    )


@transfers.command("approve")
@click.argument("transfer_id")
@click.option("--operator", required=True)
@click.option("--reason", default="approved", show_default=True)
@click.option("--date", "on_date", type=DATE, help="Date of the approval (default today).")
@click.option("--no-relay", is_flag=True, help="Record the approval only; `transfers relay` carries it later.")
@click.pass_obj
def transfers_approve(
    obj: CliContext, transfer_id: str, operator: str, reason: str, on_date: dt.date | None, no_relay: bool
) -> None:
    """Approve a transfer waiting for review: it is released to the receiving region."""
    required_options(operator=operator)
    state = _review(obj, transfer_id, True, operator, reason, on_date)
    _print(obj, state, _relay(obj, no_relay))


@transfers.command("reject")
@click.argument("transfer_id")
@click.option("--operator", required=True)
@click.option("--reason", required=True)
@click.option("--date", "on_date", type=DATE, help="Date of the rejection (default today).")
@click.pass_obj
def transfers_reject(obj: CliContext, transfer_id: str, operator: str, reason: str, on_date: dt.date | None) -> None:
    """Reject a transfer waiting for review: the balance returns to the member's account and
    the member stays insured in the releasing region."""
    required_options(operator=operator, reason=reason)
    state = _review(obj, transfer_id, False, operator, reason, on_date)
    _print(obj, state, None)


@transfers.command("relay")
@click.pass_obj
def transfers_relay(obj: CliContext) -> None:
    """Carry released transfers to their receiving regions and record their completion.

    Safe to run at any time, again after a crash, or in several processes at once: each step
    is recorded exactly once. Prints what it recorded."""
    report = relay(obj.store)
    click.echo(dumps({"received": report.received, "completed": report.completed}))


@transfers.command("list")
@click.option("--status", type=click.Choice(STATUSES), help="Only transfers in this status.")
@click.option("--region", help="Only transfers out of this region (default: all).")
@click.pass_obj
def transfers_list(obj: CliContext, status: str | None, region: str | None) -> None:
    """Transfers out of each region with their status, one JSON object per line."""
    for code in [region] if region else obj.store.region_codes():
        app = obj.store.region(code)
        up_to_date(app)
        with reading(app) as (curs, schema):
            for row in transfer_reports.transfers(curs, schema, direction="out", status=status):
                row.pop("direction")
                click.echo(dumps(row))


@transfers.command("show")
@click.argument("transfer_id")
@click.pass_obj
def transfers_show(obj: CliContext, transfer_id: str) -> None:
    """A transfer, its status and every event behind it, in each region it touched (JSON)."""
    _, found = _find_transfer(obj, transfer_id)
    apps = [obj.store.region(c) for c in obj.store.region_codes()]
    events = trace_transfer(apps, transfer_id, found.facts.psn_no, found.facts.from_region)
    click.echo(dumps({**_facts(found.facts), "status": found.status, "events": events}))


@click.group()
def family() -> None:
    """Family mutual aid (家庭共济): which employee's individual account pays for a member."""


def _bind(
    obj: CliContext, psn_no: str, employee: str | None, operator: str, reason: str, on_date: dt.date | None
) -> None:
    required_options(operator=operator, reason=reason)
    when = on_date or dt.date.today()
    app = obj.store.region(_releasing_region(obj, psn_no, when))
    changed = app.bind_family(psn_no, employee=employee, operator=operator, reason=reason, on_date=when)
    click.echo(dumps({"psn_no": psn_no, "employee": employee, "status": "recorded" if changed else "unchanged"}))


@family.command("bind")
@click.argument("psn_no")
@click.option("--employee", required=True, help="psn_no of the employee whose account pays.")
@click.option("--operator", required=True)
@click.option("--reason", required=True)
@click.option("--date", "on_date", type=DATE, help="Date of the binding (default today).")
@click.pass_obj
def family_bind(
    obj: CliContext, psn_no: str, employee: str, operator: str, reason: str, on_date: dt.date | None
) -> None:
    """Bind a member to an employee's individual account, from the next claim settled."""
    _bind(obj, psn_no, employee, operator, reason, on_date)


@family.command("unbind")
@click.argument("psn_no")
@click.option("--operator", required=True)
@click.option("--reason", required=True)
@click.option("--date", "on_date", type=DATE, help="Date of the unbinding (default today).")
@click.pass_obj
def family_unbind(obj: CliContext, psn_no: str, operator: str, reason: str, on_date: dt.date | None) -> None:
    """End a member's binding: from the next claim settled, the employee's account pays nothing."""
    _bind(obj, psn_no, None, operator, reason, on_date)
