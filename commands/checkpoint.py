"""`yibao checkpoint`: a signed witness of every region's log, for auditors to keep outside the database."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import click

from commands.context import CliContext
from commands.params import OutputPath
from core.errors import YibaoError
from projections.checkpoint import key_path, load_or_create_key, public_key_pem, region_head, signed


@click.command("checkpoint")
@click.option("--out", type=OutputPath(), help="Write it to FILE (default: stdout).")
@click.option(
    "--key",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The private key file (Ed25519, PEM); default $YIBAO_HOME/checkpoint-key.pem, created on first use.",
)
@click.option(
    "--public-key",
    "print_public_key",
    is_flag=True,
    help="Print the public key of the signing key (what auditors keep) and nothing else.",
)
@click.pass_obj
def checkpoint(obj: CliContext, out: Path | None, key: Path | None, print_public_key: bool) -> None:  # fmt: skip
    """Sign the head (position and chain hash of the last event) of every region with a key kept
    outside the database. `yibao verify --checkpoint FILE --public-key KEY.pem` later proves that the
    log still holds what the checkpoint saw: a tail of events deleted with its seals is found only so."""
    path = key_path(key)
    private, created = load_or_create_key(path)
    if created:
        click.echo(f"created the checkpoint key {path} (mode 0600); auditors keep its public key: "
                   f"`yibao checkpoint --public-key`", err=True)  # fmt: skip
    if print_public_key:
        click.echo(public_key_pem(private), nl=False)
        return
    heads = [region_head(obj.store.region(code)) for code in obj.store.region_codes()]
    text = json.dumps(signed(heads, private, dt.datetime.now(dt.UTC)), indent=2) + "\n"
    if out is None:
        click.echo(text, nl=False)
        return
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise YibaoError(f"cannot write {out}: {exc.strerror}", reason="cannot_write_file") from exc
    summary = ", ".join(f"{h.region} at position {h.position:,}" for h in heads) or "no region"
    click.echo(f"checkpoint written to {out}: {summary}")
