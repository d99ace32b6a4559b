"""`yibao maternity allowance`: the maternity allowance (生育津贴) of an employee, recorded once."""

from __future__ import annotations

import datetime as dt

import click

from commands.context import CliContext
from commands.finance import _print
from commands.identity import acting_user
from commands.params import DATE, ID, YUAN, required_options
from core.maternity import AllowanceFacts
from core.money import format_yuan
from core.roles import Action


@click.group()
def maternity() -> None:
    """Maternity (生育): claims of med_type 51 (生育门诊) and 52 (生育住院) settle with `claims
    settle`; the allowance is recorded (or reversed) here and paid with `finance pay-members`."""


@maternity.command("allowance")
@click.option("--region", required=True)
@click.option("--allowance-id", type=ID, required=True, help="Idempotency key.")
@click.option("--psn-no", required=True, help="The employee (insutype 310) on leave.")
@click.option("--days", type=click.IntRange(1, 365), required=True, help="Days of maternity leave paid.")
@click.option("--daily-wage", type=YUAN, required=True, help="The employer's average daily wage, yuan.")
@click.option("--on", "on_date", type=DATE, help="Date of the decision (default today).")
@click.option("--operator", required=True)
@click.option("--dry-run", is_flag=True, help="Print the postings; record nothing.")
@click.pass_obj
def maternity_allowance(
    obj: CliContext, region: str, allowance_id: str, psn_no: str, days: int, daily_wage: int,
    on_date: dt.date | None, operator: str, dry_run: bool,
) -> None:  # fmt: skip
    """Record a maternity allowance: days x daily wage, owed to the member by the maternity fund
    (510100). The same id again with the same facts records nothing (duplicate)."""
    required_options(operator=operator, allowance_id=allowance_id)
    operator = acting_user(obj.store, operator, Action.RECORD)
    facts = AllowanceFacts(allowance_id, psn_no, days, daily_wage, (on_date or dt.date.today()).isoformat(), operator)
    result = obj.store.region(region).grant_allowance(facts, dry_run=dry_run)
    _print(result, allowance_id=allowance_id, psn_no=psn_no, amount=format_yuan(facts.amount))


@maternity.command("reverse-allowance")
@click.argument("allowance_id")
@click.option("--region", required=True)
@click.option("--on", "on_date", type=DATE, help="Date of the decision (default today).")
@click.option("--reason", required=True)
@click.option("--operator", required=True)
@click.pass_obj
def maternity_reverse_allowance(
    obj: CliContext, allowance_id: str, region: str, on_date: dt.date | None, reason: str, operator: str
) -> None:
    """Undo a wrong maternity allowance: what it owed the member is no longer owed; if it was paid,
    the member owes it back, and `finance pay-members` pays them nothing until what they are owed
    exceeds it. Record the right allowance under a new id."""
    required_options(operator=operator, reason=reason)
    operator = acting_user(obj.store, operator, Action.RECORD)
    result = obj.store.region(region).reverse_allowance(
        allowance_id, on_date=on_date or dt.date.today(), operator=operator, reason=reason
    )
    _print(result, allowance_id=allowance_id)
