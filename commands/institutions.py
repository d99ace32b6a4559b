"""`yibao institutions ...`: the 定点 registry of each region (core.institution).

Each change is an event of the region's registry. A region with no institution registered
settles claims at any institution; from its first registration a claim must name one of its
institutions, in force on the claim's date, at its registered level.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import IO, Any

import click

from app.region import RegionApplication
from bulk.lines import dumps, read_lines
from commands.context import CliContext
from commands.identity import acting_user
from commands.params import DATE, required_options
from core.errors import YibaoError
from core.institution import Institution, InstitutionRegistry, standing
from core.records import RecordRejected, decode_line, parse_institution
from core.roles import Action
from store.app import Store


@click.group()
def institutions() -> None:
    """The 定点 registry: hospitals and pharmacies with an agreement, their suspensions (暂停医保结算)
    and terminations (解除协议)."""


@institutions.command("import")
@click.argument("file", type=click.File("rb"))
@click.option("--operator", required=True, help="Who records the registrations.")
@click.pass_obj
def institutions_import(obj: CliContext, file: IO[bytes], operator: str) -> None:
    """Register the institutions of FILE (JSON lines: fixmedins_code, fixmedins_name,
    fixmedins_type hospital|pharmacy, hosp_lv 1-3 (a pharmacy may leave it out), admdvs: the
    region it is registered in, valid_from). One result line per line: recorded, unchanged (its
    latest registration already) or rejected with its reason. Running the file again records
    nothing. Exits 1 when a line was rejected."""
    required_options(operator=operator)
    operator = acting_user(obj.store, operator, Action.RECORD)
    known = set(obj.store.region_codes())
    results: dict[int, dict[str, Any]] = {}
    by_region: dict[str, list[tuple[int, Institution]]] = {}
    for line_no, raw in read_lines(file):
        try:
            made = parse_institution(decode_line(raw))
        except RecordRejected as exc:
            results[line_no] = {"line": line_no, "status": "rejected", "reason": exc.reason, "detail": str(exc)}
            continue
        if made.admdvs not in known:
            detail = f"region {made.admdvs} is not set up (yibao regions add)"
            results[line_no] = _line(line_no, made, "rejected", reason="unknown_region", detail=detail)
            continue
        by_region.setdefault(made.admdvs, []).append((line_no, made))
    for region, lines in by_region.items():
        recorded = obj.store.region(region).register_institutions([i for _, i in lines], operator=operator)
        for (line_no, made), new in zip(lines, recorded, strict=True):
            results[line_no] = _line(line_no, made, "recorded" if new else "unchanged")
    for line_no in sorted(results):
        click.echo(dumps(results[line_no]))
    if any(r["status"] == "rejected" for r in results.values()):
        raise SystemExit(1)


def _line(line_no: int, made: Institution, status: str, **why: str) -> dict[str, Any]:
    return {"line": line_no, "fixmedins_code": made.fixmedins_code, "admdvs": made.admdvs, "status": status, **why}


def _holding_region(store: Store, code: str, region: str | None) -> str:
    """The region whose registry holds `code` (named, or the only one that does)."""
    if region is not None:
        return region
    holding = [r for r in store.region_codes() if _registry_holds(store.region(r).institution_registry(), code)]
    if not holding:
        raise YibaoError(f"no region has registered {code}", reason="unknown_institution")
    if len(holding) > 1:
        raise YibaoError(f"regions {', '.join(holding)} all registered {code}: name one with --region",
                         reason="unknown_institution")  # fmt: skip
    return holding[0]


def _registry_holds(registry: InstitutionRegistry | None, code: str) -> bool:
    return registry is not None and code in registry.entries


def _change_options(command: Callable[..., None]) -> Callable[..., None]:
    """The options every change of an institution takes: why, who, and where (optional)."""
    for option in reversed((
        click.option("--reason", required=True),
        click.option("--operator", required=True),
        click.option("--region", help="The region whose registry holds CODE (default: the one that does)."),
    )):  # fmt: skip
        command = option(command)
    return command


def _change(
    obj: CliContext, code: str, region: str | None, reason: str, operator: str, change: str,
    act: Callable[[RegionApplication, str], bool],
) -> None:  # fmt: skip
    """Check who acts, find the registry that holds CODE, make the change, print what it did."""
    required_options(operator=operator, reason=reason)
    operator = acting_user(obj.store, operator, Action.RECORD)
    done = act(obj.store.region(_holding_region(obj.store, code, region)), operator)
    click.echo(dumps({"fixmedins_code": code, "change": change, "status": "recorded" if done else "unchanged"}))


@institutions.command("suspend")
@click.argument("code")
@click.option("--from", "begin", type=DATE, required=True, help="First day settlement is suspended.")
@click.option("--to", "end", type=DATE, help="Last day suspended (default: until resumed).")
@_change_options
@click.pass_obj
def institutions_suspend(
    obj: CliContext, code: str, begin: dt.date, end: dt.date | None, reason: str, operator: str, region: str | None
) -> None:
    """Suspend settlement (暂停医保结算) at CODE: its claims dated in the period are rejected as
    institution_suspended."""

    def act(app: RegionApplication, who: str) -> bool:
        return app.suspend_institution(code, begin=begin, end=end, reason=reason, operator=who)

    _change(obj, code, region, reason, operator, "suspended", act)


@institutions.command("resume")
@click.argument("code")
@click.option("--on", "on_date", type=DATE, required=True, help="First day settlement is allowed again.")
@_change_options
@click.pass_obj
def institutions_resume(
    obj: CliContext, code: str, on_date: dt.date, reason: str, operator: str, region: str | None
) -> None:
    """End the suspension of CODE in force on --on (it then ends the day before); refused as
    no_suspension when none is in force then."""
    _change(obj, code, region, reason, operator, "resumed",
            lambda app, who: app.resume_institution(code, on_date=on_date, reason=reason, operator=who))  # fmt: skip


@institutions.command("terminate")
@click.argument("code")
@click.option("--on", "on_date", type=DATE, required=True, help="First day without an agreement.")
@_change_options
@click.pass_obj
def institutions_terminate(
    obj: CliContext, code: str, on_date: dt.date, reason: str, operator: str, region: str | None
) -> None:
    """End CODE's agreement (解除协议) from --on: its claims dated then or later are rejected as
    institution_terminated (a registration valid from a later date is a new agreement)."""
    _change(obj, code, region, reason, operator, "terminated",
            lambda app, who: app.terminate_institution(code, on_date=on_date, reason=reason, operator=who))  # fmt: skip


@institutions.command("list")
@click.option("--region", help="Only this region (default: all).")
@click.option("--on", "on_date", type=DATE, help="Standing on this date (default today).")
@click.pass_obj
def institutions_list(obj: CliContext, region: str | None, on_date: dt.date | None) -> None:
    """One JSON line per registered institution: its latest registration and its standing on
    --on (active, institution_suspended, institution_terminated, or unknown_institution before
    it is valid), with why."""
    day = on_date or dt.date.today()
    for code in [region] if region else obj.store.region_codes():
        registry = obj.store.region(code).institution_registry()
        if registry is None:
            continue
        for fixmedins_code, entry in sorted(registry.entries.items()):
            found, why = standing(registry, fixmedins_code, day)
            line = {**entry.registrations[-1].to_dict(), "standing": found.value}
            click.echo(dumps({**line, "why": why} if why else line))
