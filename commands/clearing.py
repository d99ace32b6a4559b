"""`yibao clearing ...`: 异地就医 between regions: the relay that carries remote settlements to
the region of treatment, what each region owes another, and the monthly clearing (清分)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import click

from app.clearing_between_regions import PairCleared, clear_between_regions
from app.relay import unordered_pairs
from app.remote_relay import RemoteReport, relay_remote_care
from bulk.lines import dumps
from commands.context import CliContext
from commands.identity import acting_user
from commands.params import DATE, required_options
from commands.reports import up_to_date
from core.clearing import month_bounds
from core.errors import YibaoError, first_line
from core.money import format_yuan
from core.region_clearing import Dues
from core.roles import Action
from projections.region_dues import dues_reader


@click.group()
def clearing() -> None:
    """异地就医 between regions: a member insured in one region, treated at an institution of
    another (the claim's `mdtrtarea_admvs`), is settled in their own region on its policy; the
    region of treatment owes its hospital, and is owed the same by the insured region until the
    month is cleared (清分)."""


@clearing.command("run")
@click.option("--month", required=True, help="YYYY-MM: clear what was posted up to its last day.")
@click.option("--date", "on_date", type=DATE, help="Business date of the bank transfers (default today).")
@click.option("--operator", required=True, help="Who runs the clearing (recorded).")
@click.pass_obj
def clearing_run(obj: CliContext, month: str, on_date: dt.date | None, operator: str) -> None:
    """Clear (清分), for every pair of regions, what each owes the other for claims posted up to
    the month's end and not cleared before: both dues fall to nothing and the net moves from
    one region's bank to the other's, per fund. The relay runs first; both regions' books must
    then agree to the fen (else `regions_disagree`). Run again, it clears nothing twice: a pair
    with nothing left prints `nothing_to_clear`; what was posted for the month since is cleared
    by a second clearing of it. One line per pair; a pair refused (books that disagree, a bank
    that cannot pay, a date before what it clears) says why, the others are cleared, and the
    command exits 1. --date may not come before the month's last day."""
    required_options(operator=operator)
    operator = acting_user(obj.store, operator, Action.PAY)
    month_bounds(month)
    done = clear_between_regions(
        obj.store, month, read_dues=dues_reader(up_to_date), on_date=on_date or dt.date.today(), operator=operator
    )
    for pair in done:
        click.echo(dumps(_pair_line(pair, month)))
    if not done:
        click.echo("one region: nothing is cleared between regions", err=True)
    refused = [pair for pair in done if pair.refused is not None]
    if refused:
        raise YibaoError(f"{len(refused)} of {len(done)} pairs of regions refused; the others are cleared",
                         reason="clearing_refused")  # fmt: skip


def _pair_line(pair: PairCleared, month: str) -> dict[str, Any]:
    line: dict[str, Any] = {"month": month, "first": pair.first, "second": pair.second}
    if pair.refused is not None:
        return {**line, "status": "refused", "reason": pair.refused.reason, "detail": first_line(pair.refused)}
    line["status"] = "cleared" if pair.clearing else "nothing_to_clear"
    if pair.clearing:
        line["clearing"] = pair.clearing
    line.update(_dues_fields(pair.dues, pair.first, pair.second))
    return line


def _dues_fields(dues: Dues, first: str, second: str) -> dict[str, Any]:
    """What `first` owes `second` and the reverse, the net and who pays it, per fund and in all."""
    funds = sorted(set(dues.owed_to) | set(dues.owed_by))
    net = dues.net
    return {
        f"owed_to_{second}": format_yuan(sum(dues.owed_to.values())),
        f"owed_to_{first}": format_yuan(sum(dues.owed_by.values())),
        "net": format_yuan(abs(net)),
        "payer": first if net > 0 else second if net < 0 else None,
        "funds": {
            fund: {
                f"owed_to_{second}": format_yuan(dues.owed_to.get(fund, 0)),
                f"owed_to_{first}": format_yuan(dues.owed_by.get(fund, 0)),
            }
            for fund in funds
        },
    }


@clearing.command("dues")
@click.option("--through", type=DATE, help="Only what was posted up to this date (default: all).")
@click.pass_obj
def clearing_dues(obj: CliContext, through: dt.date | None) -> None:
    """What each region's books say it owes every other region and is owed by it for 异地就医,
    not yet cleared; one line per pair, from the first region's books (the relay runs first)."""
    relay_remote_care(obj.store)
    read = dues_reader(up_to_date)
    for first, second in unordered_pairs(obj.store):
        dues = read(obj.store.region(first), second, through or dt.date.max)
        click.echo(dumps({"first": first, "second": second, **_dues_fields(dues, first, second)}))


@clearing.command("relay")
@click.pass_obj
def clearing_relay(obj: CliContext) -> None:
    """Carry every remote settlement and reversal to its region of treatment, and every
    clearing to the other region of its pair. `claims settle`, `claims reverse`, `claims
    correct` and `clearing run` run it themselves; run it alone after a crash."""
    click.echo(_relayed(relay_remote_care(obj.store)))


def carry_remote_care(obj: CliContext) -> None:
    """After claims were settled, reversed or corrected: carry what is owed for members treated
    in another region there now. A failure here loses nothing (the next relay carries it), so
    it is reported, not raised."""
    if len(obj.store.region_codes()) < 2:
        return
    try:
        relay_remote_care(obj.store)
    except YibaoError as exc:
        click.echo(f"warning: {exc.reason}: {first_line(exc)}; `yibao clearing relay` carries it later", err=True)


def _relayed(report: RemoteReport) -> str:
    return f"relay: {len(report.settlements)} remote settlement steps, {len(report.clearings)} clearings mirrored"
