"""`yibao policy load`: record a region-year policy version."""

from __future__ import annotations

from pathlib import Path

import click

from commands.context import CliContext
from core.policy import parse_policy


@click.group()
def policy() -> None:
    """Policy parameters (政策参数), one TOML file per region and year, versioned by hash."""


@policy.command("load")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_obj
def policy_load(obj: CliContext, file: Path) -> None:
    """Validate FILE and record it as the region-year's current policy. Prints its hash.

    The region is created if this is its first policy. Loading the same file again changes
    nothing; a different file for the same region and year is a new version, used from now on.
    """
    raw = file.read_bytes()
    parsed = parse_policy(raw)
    app = obj.store.ensure_region(parsed.region)
    app.record_policy(parsed.year, parsed.content_hash, raw.decode("utf-8"))
    click.echo(parsed.content_hash)
