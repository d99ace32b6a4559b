"""`yibao members ...`, `contributions import`, `claims ...`: the record files of SPEC 3 and 5."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import os
from collections.abc import Iterator
from typing import IO, Any, cast

import click

from bulk import batch, claims_file
from bulk.lines import dumps, read_lines, reject_line
from bulk.mode import choose_mode
from commands.approvals import request_line
from commands.clearing import carry_remote_care
from commands.context import CliContext
from commands.identity import acting_user
from commands.params import DATE, OutputFile
from commands.progress import Progress, track
from core.approval import ApprovalRequest
from core.errors import YibaoError
from core.money import format_yuan
from core.results import rejected_result, settlement_result
from core.roles import Action
from core.tiers import YearToDate


@click.group()
def members() -> None:
    """Members (参保人): import records and changes, show a member-year's usage."""


@click.group()
def contributions() -> None:
    """Contributions (征缴) to the funds; employees' account share goes to the account."""


@click.group()
def claims() -> None:
    """Claims: settle (一站式结算), reverse (撤销) and correct (更正) settlements."""


@members.command("import")
@click.argument("file", type=click.File("rb"))
@click.pass_obj
def members_import(obj: CliContext, file: IO[bytes]) -> None:
    """Record members and their changes from FILE (JSON lines; '-' reads stdin).

    Rejected lines go to stderr with their line number. A `family_of` binds once the whole file
    is recorded, whatever the line order; a binding refused (not an employee insured here on the
    record's date) goes to stderr with its line, the member's record being kept (`family bind`
    can bind later). Look-back assistance granted to newly recognised illness_poverty members is
    printed as one JSON line per member. Ends with a count line.
    """
    _run_import("members", batch.import_members(obj.store, track(read_lines(file), Progress("members"))))


@contributions.command("import")
@click.argument("file", type=click.File("rb"))
@click.pass_obj
def contributions_import(obj: CliContext, file: IO[bytes]) -> None:
    """Record contributions from FILE (idempotent by contrib_id). Ends with a count line."""
    results = batch.import_contributions(obj.store, track(read_lines(file), Progress("contributions")))
    _run_import("contributions", results)


def _run_import(what: str, results: Iterator[batch.LineResult]) -> None:
    """Rejected lines and refused bindings to stderr with their number, look-back grants to
    stdout, then counts."""
    counts: dict[str, int] = {}
    refused = 0
    for result in results:
        counts[result.status] = counts.get(result.status, 0) + 1
        binding_refused = result.output.get("binding", {}).get("status") == "refused"
        refused += binding_refused
        if result.rejected or binding_refused:
            click.echo(reject_line(result.line_no, result.output), err=True)  # UTF-8 bytes, as written
        if "lookback" in result.output:
            click.echo(dumps(result.output))
    click.echo(_count_line(what, counts, refused))


def _count_line(what: str, counts: dict[str, int], bindings_refused: int = 0) -> str:
    """`members: 5 lines: 4 recorded, 1 unchanged`, and `; 1 binding refused` when one was."""
    total = sum(counts.values())
    parts = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    refused = f"; {bindings_refused} binding{'s' if bindings_refused > 1 else ''} refused" if bindings_refused else ""
    return f"{what}: {total} lines: {parts or 'none'}{refused}"


def _refuse_same_file(file: IO[bytes], out: IO[str], rejects: IO[str] | None) -> None:
    """--out, --rejects and FILE must be three files: results written over the claims being read,
    or reject lines over the results, would leave neither."""
    given = (("FILE", file), ("--out", out), ("--rejects", rejects))
    named = [(option, _named_path(opened)) for option, opened in given]
    for index, (option, path) in enumerate(named):
        for other, other_path in named[index + 1 :]:
            if path is not None and other_path is not None and _same_file(path, other_path):
                raise click.UsageError(f"{other} names the same file as {option}: {other_path}")


def _named_path(opened: IO[Any] | None) -> str | None:
    name = getattr(opened, "name", None)
    return name if isinstance(name, str) and name not in ("-", "<stdin>", "<stdout>") else None


def _same_file(a: str, b: str) -> bool:
    if os.path.exists(a) and os.path.exists(b):
        return os.path.samefile(a, b)
    return os.path.realpath(a) == os.path.realpath(b)


class _ResultFiles:
    """`claims_file.Write` to the command's output and --rejects files (their binary buffers)."""

    def __init__(self, results: IO[bytes], rejected: IO[bytes] | None, *, each_line: bool) -> None:
        self._results, self._rejected, self._each_line = results, rejected, each_line

    def line(self, output: bytes, reject: bytes | None) -> None:
        self._results.write(output + b"\n")
        if reject is not None and self._rejected is not None:
            self._rejected.write(reject + b"\n")
        if self._each_line:
            self._results.flush()

    def lines(self, outputs: bytes, rejects: bytes) -> None:
        self._results.write(outputs)
        if rejects and self._rejected is not None:
            self._rejected.write(rejects)
        if self._each_line:
            self._results.flush()


def _settle_command(
    obj: CliContext,
    file: IO[bytes],
    out: IO[str],
    rejects: IO[str] | None,
    operator: str | None,
    reason: str | None,
    batch_size: int = batch.batch_records_max,
    workers: int = 1,
    grouped: bool = False,
    on_date: dt.date | None = None,
) -> None:
    _refuse_same_file(file, out, rejects)
    results, rejected = _binary(out), _binary(rejects) if rejects is not None else None
    # A terminal shows each result as it comes (OutputFile keeps its line buffering); bytes
    # written beneath the text layer would otherwise wait for a block to fill.
    write = _ResultFiles(results, rejected, each_line=bool(getattr(out, "line_buffering", False)))
    named = getattr(out, "name", None)
    beside = os.path.dirname(os.path.abspath(named)) if isinstance(named, str) and os.path.isfile(named) else None
    try:
        try:
            claims_file.settle_file(
                obj.store, obj.location, file, write, operator=operator, reason=reason, batch_size=batch_size,
                workers=workers, grouped=grouped, held_in=beside, progress=Progress("claims"), on_date=on_date,
            )  # fmt: skip
        finally:
            results.flush()
            if rejected is not None:
                rejected.flush()
        carry_remote_care(obj)
    except OSError as exc:  # the output was checked writable when the command line was read; a disk can fill
        for opened in (out, rejects):
            if opened is not None and os.path.exists(getattr(opened, "name", None) or "-"):  # a named file, not stdout
                with contextlib.suppress(OSError):
                    opened.close()  # closed now, so that click's closing it does not fail the same way again
        raise YibaoError(
            f"{exc.strerror or exc} ({exc.filename or 'writing the results'}): the run stopped there; every "
            "claim settled before it is recorded, and the same file run again answers each line as this run did",
            reason="file_error",
        ) from None


def _binary(text: IO[str]) -> IO[bytes]:
    """The bytes under a UTF-8 text file (click's, or its lazy stand-in that opens on first use):
    results are written as they were encoded, UTF-8 JSON. Flushed first, so that nothing
    written as text before comes after them."""
    text.flush()
    return cast(IO[bytes], cast(io.TextIOWrapper, text).buffer)


@claims.command("settle")
@click.argument("file", type=click.File("rb"))
@click.option("--out", type=OutputFile(), default="-", help="Results file (default stdout).")
@click.option("--rejects", type=OutputFile(), help="Also write rejected lines here, with line numbers.")
@click.option(
    "--batch-size", type=click.IntRange(1, 10_000), default=None,
    help="Claims per transaction [default: 500 in one process, 1,250 a worker]: larger is faster, smaller holds "
    "fewer locks and retries less work.",
)  # fmt: skip
@click.option(
    "--workers", type=click.IntRange(1, 16), default=None,
    help="Processes settling the file, split by account owner (results are those of one process) [default: one "
    "per core for a named file of 4 MiB or more, else 1]. More than one per core gains nothing; each holds about "
    "two database connections per region. `--workers 1` alone streams through one process.",
)  # fmt: skip
@click.option(
    "--grouped/--no-grouped", default=None,
    help="Settle each account owner's claims close together, in file order among themselves [default: on for a "
    "named file of 4 MiB or more]: in a large file whose members have several claims, their aggregates are read "
    "about once a bucket of 2,000 lines, not once a claim. The same results, in input order, but written only "
    "when the run ends (held meanwhile in a temporary file of about half a kilobyte a line beside --out, or in "
    "TMPDIR); a run that fails writes only the lines before the first one without a result: run the file again "
    "for the rest. Needs a named file; settles in worker processes, one unless --workers says more.",
)  # fmt: skip
@click.pass_obj
def claims_settle(
    obj: CliContext,
    file: IO[bytes],
    out: IO[str],
    rejects: IO[str] | None,
    batch_size: int | None,
    workers: int | None,
    grouped: bool | None,
) -> None:
    """Settle every claim of FILE (JSON lines; '-' reads stdin) through the payer tiers.

    Prints one result object per input line, in input order. Re-submitting a settled claim
    returns it as `duplicate` and pays nothing; every rejection has a named reason. Without
    options, a large named file is settled the fastest safe way (one worker per core, each
    account owner's claims together); standard input and small files stream through one process.
    """
    mode = choose_mode(_file_bytes(file), workers=workers, grouped=grouped, batch_size=batch_size)
    _settle_command(obj, file, out, rejects, None, None, mode.batch_size, mode.workers, mode.grouped)


def _file_bytes(file: IO[bytes]) -> int | None:
    """The size of a regular file named on the command line; None for stdin or a pipe."""
    name = getattr(file, "name", None)
    return os.path.getsize(name) if isinstance(name, str) and os.path.isfile(name) else None


@claims.command("correct")
@click.argument("file", type=click.File("rb"))
@click.option("--reason", required=True, help="Why the settlements are corrected (recorded).")
@click.option("--operator", required=True, help="Who corrects them (recorded).")
@click.option("--out", type=OutputFile(), default="-", help="Results file (default stdout).")
@click.option("--rejects", type=OutputFile(), help="Also write rejected lines here.")
@click.option("--date", "on_date", type=DATE, help="Business date of the reversal and new version (default today).")
@click.pass_obj
def claims_correct(
    obj: CliContext, file: IO[bytes], reason: str, operator: str, out: IO[str], rejects: IO[str] | None,
    on_date: dt.date | None,
) -> None:  # fmt: skip
    """Correct settlements: each line of FILE is a full claim with an existing setl_id.

    The current version is reversed and the claim settled again as a new version, linked to
    the reversal, with operator and reason. A correction of a settlement whose fund payments
    are above the policy's `[controls] approval_above` is held for a second person's approval
    (`yibao approvals approve`): its line has status `pending_approval` and its `request_id`.
    """
    _require_text(operator=operator, reason=reason)
    operator = acting_user(obj.store, operator, Action.RECORD)
    _settle_command(obj, file, out, rejects, operator, reason, on_date=on_date)


@claims.command("reverse")
@click.argument("setl_id", required=False)
@click.option("--reason", required=True, help="Why the settlement is reversed (recorded).")
@click.option("--operator", required=True, help="Who reverses it (recorded).")
@click.option("--date", "on_date", type=DATE, help="Business date of the reversal (default today).")
@click.option("--file", "file", type=click.File("rb"), help="Reverse every setl_id of FILE, one a line.")
@click.pass_obj
def claims_reverse(
    obj: CliContext, setl_id: str | None, reason: str, operator: str, on_date: dt.date | None, file: IO[bytes] | None
) -> None:
    """Reverse (撤销) settlement SETL_ID, or every setl_id of --file: every payer, accumulator
    and the account get back exactly what it took. Prints the reversal line (amounts negated,
    `refd_setl_flag` "1", `setl_time` the reversal's date); or, when its fund payments are above
    the policy's `[controls] approval_above`, the request recorded for a second person (`yibao
    approvals approve`), status `pending_approval`. With --file, one line per setl_id: an
    unknown or already reversed one is a rejected line with its reason, and nothing is recorded."""
    _require_text(operator=operator, reason=reason)
    if (setl_id is None) == (file is None):
        raise YibaoError("give one SETL_ID or --file", reason="setl_id_or_file")
    operator = acting_user(obj.store, operator, Action.RECORD)
    day = on_date or dt.date.today()
    if setl_id is not None:
        click.echo(dumps(_reverse_one(obj, setl_id, operator, reason, day)))
        carry_remote_care(obj)
        return
    assert file is not None
    for raw in file:
        wanted = raw.decode("utf-8", errors="replace").strip()
        if not wanted:
            continue
        try:
            line = _reverse_one(obj, wanted, operator, reason, day)
        except YibaoError as exc:
            line = rejected_result(wanted[:64], None, exc.reason, str(exc))
        click.echo(dumps(line))
    carry_remote_care(obj)


def _reverse_one(obj: CliContext, setl_id: str, operator: str, reason: str, day: dt.date) -> dict[str, Any]:
    for code in obj.store.region_codes():
        app = obj.store.region(code)
        if app.settlement(setl_id) is not None:
            done = app.reverse(setl_id, operator=operator, reason=reason, on_date=day)
            if isinstance(done, ApprovalRequest):
                return request_line(done, code)
            return settlement_result(done, "reversed", sign=-1, dated=day.isoformat())
    raise YibaoError(f"no settlement {setl_id}", reason="unknown_settlement")


def _require_text(**values: str) -> None:
    for name, value in values.items():
        if not value.strip():
            raise YibaoError(f"--{name} must not be empty", reason=f"missing_{name}")


USAGE_FIELDS = (
    "basic_paid",
    "basic_outpatient_paid",
    "serious_illness_base",
    "serious_illness_paid",
    "assistance_paid",
    "assistance_outpatient_paid",
    "supplementary_paid",
    "out_of_pocket",
    "charity_paid",
)


@members.command("usage")
@click.argument("psn_no")
@click.option("--year", type=int, required=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object (yuan strings).")
@click.pass_obj
def members_usage(obj: CliContext, psn_no: str, year: int, as_json: bool) -> None:
    """The member-year accumulators of PSN_NO in YEAR."""
    ytd = YearToDate()
    found = False
    for code in obj.store.region_codes():
        member_year = obj.store.region(code).member_year(psn_no, year)
        if member_year is not None:
            ytd, found = ytd.plus(member_year.ytd), True
        elif obj.store.region(code).member(psn_no) is not None:
            found = True
    if not found:
        raise YibaoError(f"no member {psn_no}", reason="unknown_member")
    values = {name: format_yuan(getattr(ytd, name)) for name in USAGE_FIELDS}
    if as_json:
        click.echo(dumps({"psn_no": psn_no, "year": year, **values}))
    else:
        for name, value in values.items():
            click.echo(f"{name:28} {value:>14}")
