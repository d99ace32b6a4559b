"""`yibao db ...`: the database server and its schema."""

from __future__ import annotations

from pathlib import Path

import click

from commands.context import CliContext
from commands.params import OutputPath
from core.errors import YibaoError
from store.server import dump, embedded_is_running, locate, restore, stop_embedded, yibao_home


@click.group()
def db() -> None:
    """The database: create or migrate the schema, show status, print the URL, stop the server."""


@db.command("up")
@click.pass_obj
def db_up(obj: CliContext) -> None:
    """Create or migrate the schema of every region (idempotent). Prints the schema version."""
    status = obj.store.migrate()
    click.echo(status.describe())


@db.command("status")
@click.pass_obj
def db_status(obj: CliContext) -> None:
    """Which server is used, its PostgreSQL version, and the schema version of every region."""
    location = obj.location
    with obj.store.connect_admin() as conn:
        version_row = conn.execute("SHOW server_version").fetchone()
    status = obj.store.status()
    click.echo(f"server: {location.describe()}")
    click.echo(f"postgresql: {version_row[0] if version_row else '?'}")
    click.echo(status.describe() + ("" if status.is_current else " (behind: run `yibao db up`)"))


@db.command("url")
@click.pass_obj
def db_url(obj: CliContext) -> None:
    """Print the connection URL (for psql), starting the embedded server if needed."""
    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(obj.location.url)
    host = str(params.get("host") or "")
    user = str(params.get("user") or "")
    password = params.get("password")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    if host.startswith("/"):
        from urllib.parse import quote

        click.echo(f"postgresql://{auth}/{params.get('dbname', '')}?host={quote(host, safe='/')}")
    else:
        port = f":{params['port']}" if params.get("port") else ""
        click.echo(f"postgresql://{auth}{host}{port}/{params.get('dbname', '')}")


@db.command("stop")
def db_stop() -> None:
    """Stop the embedded server (nothing to do when DATABASE_URL is set)."""
    import os

    if os.environ.get("DATABASE_URL"):
        click.echo("DATABASE_URL is set: no embedded server to stop")
        return
    pgdata = yibao_home() / "pgdata"
    if stop_embedded(pgdata):
        click.echo(f"stopped the embedded server in {pgdata}")
    else:
        click.echo(f"the embedded server in {pgdata} was not running")


__all__ = ["db", "embedded_is_running", "locate"]


@db.command("dump")
@click.argument("file", type=OutputPath())
@click.pass_obj
def db_dump(obj: CliContext, file: Path) -> None:
    """Back up the whole store (every region, events, seals, read models) to FILE (pg_dump)."""
    dump(obj.location.url, file)
    click.echo(f"dumped to {file} ({file.stat().st_size:,} bytes)")


@db.command("restore")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--yes", is_flag=True, help="Confirm that the current contents are replaced.")
@click.pass_obj
def db_restore(obj: CliContext, file: Path, yes: bool) -> None:
    """Restore a backup made by `db dump`, replacing the current contents (pg_restore).
    Run `yibao verify` afterwards."""
    if not yes:
        raise YibaoError("restoring replaces every event in the store: add --yes", reason="confirmation_required")
    restore(obj.location.url, file)
    click.echo(f"restored from {file}")
