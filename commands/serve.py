"""`yibao serve`: the web console for finance staff and auditors (docs/console.md)."""

from __future__ import annotations

import click

from commands.context import CliContext
from store.server import yibao_home


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.pass_obj
def serve(obj: CliContext, host: str, port: int) -> None:
    """Serve the console (read-only pages over the books; log in with a user of `yibao users add`)."""
    import uvicorn

    from web.app import create_app

    home = yibao_home()
    home.mkdir(parents=True, exist_ok=True)
    click.echo(f"console on http://{host}:{port}/ (Ctrl-C stops it)", err=True)
    uvicorn.run(create_app(obj.store, home), host=host, port=port, log_level="warning")
