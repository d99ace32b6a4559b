"""`yibao funds ...`: financing facts of a region's funds beyond contributions (docs/financing.md).

Transfers between funds (转移收入/转移支出, such as the serious-illness financing 大病保险筹资划转),
interest (利息收入) and a fund's opening balance (期初结余), each idempotent by its id. Every
command accepts `--dry-run`, which prints the postings it would record and writes nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, TypeVar

import click

from app.outcomes import FinanceResult
from app.region import RegionApplication
from commands.context import CliContext
from commands.finance import _print
from commands.params import DATE, YUAN, required_options
from core.errors import YibaoError
from core.funds import FUND_TRANSFER, INTEREST, OPENING, entry
from core.ledger import FUNDS

FUND = click.Choice(FUNDS)
REGION = click.option("--region", help="The pooling region (needed when there are several).")
DRY_RUN = click.option("--dry-run", is_flag=True, help="Print the postings; record nothing.")
FUND_OPTION = click.option("--fund", type=FUND, required=True)
F = TypeVar("F", bound=Callable[..., Any])


@click.group()
def funds() -> None:
    """Financing of a region's funds: transfers between funds, interest, opening balances."""


def _region(obj: CliContext, region: str | None) -> RegionApplication:
    codes = [region] if region else obj.store.region_codes()
    if len(codes) != 1:
        raise YibaoError("several regions (or none): give --region", reason="missing_region")
    return obj.store.region(codes[0])


def _record(app: RegionApplication, kind: str, entry_id: str, dry_run: bool, **facts: object) -> None:
    result: FinanceResult = app.record_fund_entries([entry(kind, entry_id, **facts)], dry_run=dry_run)[0]  # type: ignore[arg-type]
    _print(result, region=app.region, id=entry_id, kind=kind)


def _entry_command(
    name: str, *fund_options: Callable[[F], F], amount_help: str = "Yuan.", id_help: str = "Idempotency key.",
    reason_default: str | None = None, operator_required: bool = True,
) -> Callable[[F], click.Command]:  # fmt: skip
    """A fund entry command with the options they all take, its own fund options first; a
    `reason_default` makes --reason optional, `operator_required` False --operator."""
    reason = (
        click.option("--reason", required=True) if reason_default is None
        else click.option("--reason", default=reason_default, show_default=True)
    )  # fmt: skip
    operator = (
        click.option("--operator", required=True) if operator_required
        else click.option("--operator", default="", help="Who records it.")
    )  # fmt: skip
    options: tuple[Callable[[Any], Any], ...] = (
        REGION, *fund_options, click.option("--amount", type=YUAN, required=True, help=amount_help),
        click.option("--date", "on_date", type=DATE, required=True),
        click.option("--id", "entry_id", required=True, help=id_help), reason, operator, DRY_RUN, click.pass_obj,
    )  # fmt: skip

    def decorate(command: F) -> click.Command:
        for option in reversed(options):
            command = option(command)
        return funds.command(name)(command)

    return decorate


def _enter(
    obj: CliContext, kind: str, region: str | None, entry_id: str, dry_run: bool, required: tuple[str, ...],
    **facts: Any,
) -> None:  # fmt: skip
    """Check the options that must not be blank (the id, then `required`), then record the entry."""
    required_options(id=entry_id, **{name: facts[name] for name in required})
    _record(_region(obj, region), kind, entry_id, dry_run, **facts)


@_entry_command(
    "transfer",
    click.option("--from", "from_fund", type=FUND, required=True, help="The fund the money leaves (转移支出)."),
    click.option("--to", "to_fund", type=FUND, required=True, help="The fund it goes to (转移收入)."),
)  # fmt: skip
def funds_transfer(
    obj: CliContext, region: str | None, from_fund: str, to_fund: str, amount: int, on_date: dt.date, entry_id: str,
    reason: str, operator: str, dry_run: bool,
) -> None:  # fmt: skip
    """Move money from one fund of the region to another. Refused (insufficient_fund_balance)
    when the paying fund's bank balance would fall below zero, unless its policy allows it."""
    _enter(
        obj, FUND_TRANSFER, region, entry_id, dry_run, ("reason", "operator"), fund=from_fund, to_fund=to_fund,
        amount=amount, on_date=on_date, reason=reason, operator=operator,
    )  # fmt: skip


@_entry_command(
    "interest", FUND_OPTION, id_help="Idempotency key (e.g. the bank statement line).", reason_default="利息收入",
    operator_required=False,
)  # fmt: skip
def funds_interest(
    obj: CliContext, region: str | None, fund: str, amount: int, on_date: dt.date, entry_id: str, reason: str,
    operator: str, dry_run: bool,
) -> None:  # fmt: skip
    """Record interest the fund's bank account earned (利息收入)."""
    _enter(obj, INTEREST, region, entry_id, dry_run, (), fund=fund, amount=amount, on_date=on_date, reason=reason,
           operator=operator)  # fmt: skip


@_entry_command(
    "opening-balance", FUND_OPTION, amount_help="Yuan: the fund's closing balance in the books it comes from.",
    reason_default="期初结余",
)  # fmt: skip
def funds_opening_balance(
    obj: CliContext, region: str | None, fund: str, amount: int, on_date: dt.date, entry_id: str, reason: str,
    operator: str, dry_run: bool,
) -> None:  # fmt: skip
    """Bring in a fund's balance when its books are opened here (期初结余): its bank balance and
    accumulated balance, carried over from the books it comes from."""
    _enter(obj, OPENING, region, entry_id, dry_run, ("operator",), fund=fund, amount=amount, on_date=on_date,
           reason=reason, operator=operator)  # fmt: skip


@funds.command("finance-serious-illness")
@REGION
@click.option("--year", type=int, required=True)
@click.option("--date", "on_date", type=DATE, help="Date of the transfer (default 1 January of the year).")
@click.option("--operator", required=True)
@DRY_RUN
@click.pass_obj
def funds_finance_serious_illness(
    obj: CliContext, region: str | None, year: int, on_date: dt.date | None, operator: str, dry_run: bool
) -> None:
    """The year's serious-illness financing (大病保险筹资划转): per scheme, the policy's
    [financing] serious_illness_per_capita times the members insured that year, moved from the
    pooling fund (390100, 310100) to the serious-illness fund (390200, 330100). Once a year:
    its id comes from the region, year and scheme."""
    required_options(operator=operator)
    app = _region(obj, region)
    done = app.finance_serious_illness(year, operator=operator, on_date=on_date, dry_run=dry_run)
    if not done:
        raise YibaoError(f"no member insured in region {app.region} in {year}", reason="no_members_insured")
    for facts, result in done:
        _print(result, region=app.region, id=facts.entry_id, kind=facts.kind, reason=facts.reason)
