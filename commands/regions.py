"""`yibao regions ...`: pooling regions (统筹区), each with its own schema and event tables."""

from __future__ import annotations

import click

from commands.context import CliContext
from store.migrate import check_region_code, schema_name


@click.group()
def regions() -> None:
    """Pooling regions (统筹区): each keeps its events in its own PostgreSQL schema."""


@regions.command("add")
@click.argument("code")
@click.pass_obj
def regions_add(obj: CliContext, code: str) -> None:
    """Create region CODE (6 digits) with its schema and event tables."""
    check_region_code(code)
    created = obj.store.add_region(code)
    click.echo(f"{'created' if created else 'exists'}: region {code} (schema {schema_name(code)})")


@regions.command("list")
@click.pass_obj
def regions_list(obj: CliContext) -> None:
    """List the regions with their schema and schema version."""
    status = obj.store.status()
    for code, version in sorted(status.region_versions.items()):
        click.echo(f"{code}\t{schema_name(code)}\tv{version}")
