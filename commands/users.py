"""`yibao users ...`: the people who operate, approve, pay and audit, with their roles."""

from __future__ import annotations

import sys
from typing import IO

import click

from commands.context import CliContext
from core.roles import Role
from store.users import User


@click.group()
def users() -> None:
    """Users and their roles (operator, approver, finance, auditor), shared by the finance
    controls (who may approve what) and the console (who may log in). Passwords are kept as
    argon2id hashes; a user is disabled, never deleted."""


@users.command("add")
@click.argument("name")
@click.option("--role", required=True, type=click.Choice([r.value for r in Role]), help="What the user may do.")
@click.option(
    "--password-file", type=click.File("r", encoding="utf-8"),
    help="Read the password from the first line of this file ('-': standard input). Without it the "
    "password is asked for twice on a terminal, or read from standard input.",
)  # fmt: skip
@click.pass_obj
def users_add(obj: CliContext, name: str, role: str, password_file: IO[str] | None) -> None:
    """Register user NAME with a role. Prints the user."""
    password = _password(password_file)
    with obj.store.users() as registry:
        click.echo(_line(registry.add(name, Role(role), password)))


@users.command("list")
@click.pass_obj
def users_list(obj: CliContext) -> None:
    """Every user: name, role, since when, and whether disabled."""
    with obj.store.users() as registry:
        for user in registry.all():
            click.echo(_line(user))


@users.command("disable")
@click.argument("name")
@click.pass_obj
def users_disable(obj: CliContext, name: str) -> None:
    """Disable user NAME: they can no longer log in, act or approve; what they did stays theirs."""
    with obj.store.users() as registry:
        click.echo(_line(registry.disable(name)))


def _password(source: IO[str] | None) -> str:
    if source is not None:
        return source.readline().rstrip("\r\n")
    if sys.stdin.isatty():
        return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))
    return sys.stdin.readline().rstrip("\r\n")


def _line(user: User) -> str:
    state = f"disabled {user.disabled_at:%Y-%m-%d %H:%M}" if user.disabled_at else "active"
    return f"{user.name}\t{user.role}\tsince {user.created_at:%Y-%m-%d}\t{state}"
