"""`yibao`: the command line through which staff and their scripts drive the settlement core.

Every command parses its input, calls one application method and prints. Named errors
(`YibaoError`) become one line on stderr, `error: <reason>: <message>`, and exit status 1; an
interrupt becomes `error: interrupted: ...` and exit status 130; a usage error (a missing or bad
option) `error: usage: ...` and exit status 2 (SPEC 7: one named line on stderr).
"""

from __future__ import annotations

import sys
from typing import Any

import click
import psycopg
from eventsourcing.persistence import PersistenceError

from bulk import collector
from commands import (
    approvals,
    audit,
    checkpoint,
    clearing,
    db,
    demo,
    finance,
    funds,
    institutions,
    maternity,
    policy,
    reconcile,
    records,
    regions,
    reports,
    serve,
    transfers,
    users,
)
from commands.context import CliContext
from core.errors import YibaoError, first_line

# click >= 8.2 raises this (a UsageError) for a group given no command, to print its help.
_NO_ARGS_IS_HELP: Any = getattr(click.exceptions, "NoArgsIsHelpError", ())


class YibaoGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except YibaoError as exc:
            click.echo(f"error: {exc.reason}: {exc}", err=True)
            sys.exit(1)
        except (psycopg.OperationalError, PersistenceError) as exc:
            click.echo(f"error: database_error: {first_line(exc)}", err=True)
            sys.exit(1)
        except _NO_ARGS_IS_HELP:
            raise  # a group given no command: its help, as click prints it
        except click.UsageError as exc:  # a missing or bad option or argument: one line, not click's block
            where = exc.ctx.command_path if exc.ctx is not None else "yibao"
            message = " ".join(exc.format_message().split())  # click's choices come one per line
            click.echo(f"error: usage: {message} (`{where} --help` explains)", err=True)
            sys.exit(exc.exit_code)
        except click.FileError as exc:  # a file named on the command line that cannot be opened
            click.echo(f"error: cannot_open_file: {' '.join(exc.format_message().split())}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:  # Ctrl-C; SIGTERM and SIGHUP too where a command turns them into it
            click.echo(
                "error: interrupted: stopped before the end; what was committed stays, and the same "
                "command run again carries on without recording anything twice",
                err=True,
            )
            sys.exit(130)


@click.group(cls=YibaoGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.pass_context
def main(ctx: click.Context) -> None:
    """yibao — settlement core for medical-insurance funds (医保一站式结算).

    Every payment, refund, deduction and transfer is an immutable event in PostgreSQL.
    The database is $DATABASE_URL when set, otherwise an embedded server under $YIBAO_HOME.
    """
    collector.configure_for_bulk()
    cli_context = CliContext()
    ctx.obj = cli_context
    ctx.call_on_close(cli_context.close)


# Each module defines its own commands; the entry point gathers them (no module imports this one).
main.add_command(audit.trace)
main.add_command(audit.verify)
main.add_command(db.db)
main.add_command(demo.demo)
main.add_command(finance.finance)
main.add_command(funds.funds)
main.add_command(policy.policy)
main.add_command(records.members)
main.add_command(records.contributions)
main.add_command(records.claims)
main.add_command(regions.regions)
main.add_command(reports.projections)
main.add_command(reports.report)
main.add_command(transfers.transfers)
main.add_command(transfers.family)
main.add_command(checkpoint.checkpoint)
main.add_command(users.users)
main.add_command(approvals.approvals)
main.add_command(reconcile.reconcile)
main.add_command(serve.serve)
main.add_command(institutions.institutions)
main.add_command(maternity.maternity)
main.add_command(clearing.clearing)
