"""`yibao trace` and `yibao verify`: what auditors use."""

from __future__ import annotations

import datetime as dt
import getpass
import sys
from typing import IO

import click
import psycopg

from bulk.lines import dumps
from commands.context import CliContext
from commands.identity import acting_user
from commands.params import DATE
from commands.reports import up_to_date
from core.errors import YibaoError, first_line
from core.ledger import ACCOUNTS, FUNDS
from core.roles import Action
from projections.checkpoint import RegionHead, open_checkpoint, trusted_public_key
from projections.region_dues import verify_region_dues
from projections.trace import trace_account, trace_settlement, trace_treated_here, treated_elsewhere
from projections.verify import Findings, check_checkpoint, verify_region, verify_transfers
from store.app import Store
from store.verify_runs import VerifyRuns


@click.command("trace")
@click.argument("setl_id", required=False)
@click.option("--account", help="A balance-sheet line as FUND:ACCOUNT, e.g. 390100:payable_to_hospitals.")
@click.option("--as-of", "as_of", type=DATE, help="With --account: postings up to this date (default today).")
@click.option("--region", help="With --account: the region (required when there are several).")
@click.option("--json", "as_json", is_flag=True, help="JSON lines instead of a readable listing.")
@click.pass_obj
def trace(
    obj: CliContext, setl_id: str | None, account: str | None, as_of: dt.date | None, region: str | None,
    as_json: bool,
) -> None:  # fmt: skip
    """Every event behind settlement SETL_ID (position, time, type, operator, reason, policy hash,
    breakdown, postings), or with --account every posting behind one balance-sheet line."""
    if (setl_id is None) == (account is None):
        raise YibaoError("give a SETL_ID or --account FUND:ACCOUNT", reason="missing_argument")
    if account is not None:
        fund, _, name = account.partition(":")
        if fund not in FUNDS or name not in ACCOUNTS:
            raise YibaoError(f"unknown account {account!r}", reason="unknown_account")
        codes = [region] if region else obj.store.region_codes()
        if len(codes) != 1:
            raise YibaoError("several regions: give --region", reason="missing_region")
        app = obj.store.region(codes[0])
        up_to_date(app)
        for line in trace_account(app, fund, name, as_of or dt.date.today()):
            click.echo(dumps(line) if as_json else _line(line))
        return
    assert setl_id is not None
    codes = obj.store.region_codes()
    for code in codes:
        app = obj.store.region(code)
        events = trace_settlement(app, setl_id)
        if events is None:
            continue
        for there, hospital in treated_elsewhere(app, setl_id):  # 异地就医: what each region of treatment recorded
            if there in codes:
                events += [{"region": there, **e} for e in trace_treated_here(obj.store.region(there), code, setl_id,
                                                                               hospital)]  # fmt: skip
        for event in events:
            shown = {"region": code, **event}
            text = _event(shown) if shown["region"] == code else f"[region {shown['region']}] {_event(shown)}"
            click.echo(dumps(shown) if as_json else text)
        return
    raise YibaoError(f"no settlement {setl_id}", reason="unknown_settlement")


def _line(line: dict[str, object]) -> str:
    return "\t".join(str(line[k]) for k in ("position", "posted_on", "kind", "ref", "party", "amount"))


def _event(event: dict[str, object]) -> str:
    head = f"#{event['position']} {event['recorded_at']} {event['type']}"
    who = f" by {event['operator']}: {event['reason']}" if event.get("operator") else ""
    lines = [head + who]
    if event.get("policy"):
        lines.append(f"    policy {event['policy']} version {event.get('version')}")
    if event.get("amounts"):
        amounts = event["amounts"]
        assert isinstance(amounts, dict)
        lines.append("    " + ", ".join(f"{k} {v}" for k, v in amounts.items() if v != "0.00"))
    for posting in event.get("postings") or []:  # type: ignore[attr-defined]
        lines.append(
            f"    {posting['fund']:>8} {posting['account']:<26} {posting['party']:<16} {posting['amount']:>14}"
        )
    return "\n".join(lines)


@click.command("verify")
@click.option("--region", help="Only this region (default: all).")
@click.option("--json", "as_json", is_flag=True)
@click.option(
    "--checkpoint",
    "checkpoint_file",
    type=click.File("rb"),
    help="Also prove the log still holds what this signed checkpoint (`yibao checkpoint`) saw.",
)
@click.option(
    "--public-key",
    "public_key_file",
    type=click.File("rb"),
    help="With --checkpoint: the public key it must be signed with (default: that of the local key).",
)
@click.option("--operator", help="Who runs it, recorded with the result (default: the login name).")
@click.pass_obj
def verify(
    obj: CliContext, region: str | None, as_json: bool, checkpoint_file: IO[bytes] | None,
    public_key_file: IO[bytes] | None, operator: str | None,
) -> None:  # fmt: skip
    """Check the whole store: events untampered (hash chain, seals), postings balanced, read models
    equal to a fresh replay, no member-year over a cap. Exit status 1 when anything is wrong.
    Each region's result is recorded (who, when, what was found; the console shows the latest)."""
    codes = [region] if region else obj.store.region_codes()
    results: list[Findings] = []
    heads: dict[str, RegionHead] = {}
    witness: Findings | None = None
    if checkpoint_file is not None:
        trusted = trusted_public_key(public_key_file.read() if public_key_file else None)
        witness, heads = check_checkpoint(open_checkpoint(checkpoint_file.read(), trusted), obj.store.region_codes(),
                                          region)  # fmt: skip
        results.append(witness)
    # Every check runs before anything is printed: the checkpoint's line, first, says OK only
    # when every region still holds what it saw.
    results += [verify_region(obj.store.region(code), heads.get(code), witness) for code in codes]
    if len(codes) > 1:  # transfers are checked across regions, so only when all are verified
        results.append(verify_transfers([obj.store.region(code) for code in codes]))
        results.append(verify_region_dues(obj.store))
    failed = False
    for findings in results:
        failed = failed or bool(findings.problems)
        if as_json:
            click.echo(dumps({"region": findings.region, "ok": not findings.problems, "checked": findings.checked,
                              "problems": findings.problems}))  # fmt: skip
        else:
            checked = ", ".join(f"{n:,} {what}" for what, n in findings.checked.items())
            click.echo(f"{_label(findings.region)}: {'OK' if not findings.problems else 'PROBLEMS'} ({checked})")
            for problem in findings.problems:
                click.echo(f"  - {problem}")
    record_runs(obj.store, operator, results)
    if failed:
        sys.exit(1)


def record_runs(store: Store, operator: str | None, results: list[Findings]) -> None:
    """Append each result to yibao.verify_runs. Verify only reads: a record that cannot be made
    is a warning on stderr, never a change of what it reported or of its exit status."""
    try:
        claimed = operator or getpass.getuser()
    except (OSError, KeyError):  # no login name (a container's bare uid): the run is still recorded
        claimed = "unknown"
    try:
        try:
            ran_by, known = acting_user(store, claimed, Action.READ), True
        except YibaoError:  # not a registered user (or not allowed): kept as given, and said so
            ran_by, known = claimed, False
        with store.connect_admin() as conn:
            runs = VerifyRuns(conn)
            for f in results:
                runs.record(ran_by=ran_by, ran_by_known=known, region=f.region, problems=f.problems,
                            position=f.position, checked=f.checked)  # fmt: skip
    except (YibaoError, psycopg.Error) as exc:
        click.echo(f"warning: verify_not_recorded: {first_line(exc)}", err=True)


def _label(name: str) -> str:
    if name == "transfers":
        return "transfers between regions"
    if name == "remote_care":
        return "异地就医 between regions"
    return name if name.startswith("checkpoint") else f"region {name}"
