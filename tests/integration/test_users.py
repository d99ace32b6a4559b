"""The users registry (store/users.py) and `yibao users`: roles, argon2 hashes, disabling, history."""

from __future__ import annotations

import psycopg
import pytest
from click.testing import CliRunner

from commands.cli import main
from core.roles import Action, BadUser, NotAllowed, Role, check_allowed
from store.app import Store
from store.users import UnknownUser, UserExists


def test_a_user_is_added_with_a_role_and_an_argon2id_hash_never_the_password(store: Store) -> None:
    with store.users() as users:
        user = users.add("u-hash", Role.APPROVER, "correct horse")
        assert (user.name, user.role, user.active) == ("u-hash", Role.APPROVER, True)
        with store.connect_admin() as conn:
            row = conn.execute("SELECT password_hash FROM yibao.users WHERE name = 'u-hash'").fetchone()
        assert row is not None and row[0].startswith("$argon2id$") and "correct horse" not in row[0]
        with pytest.raises(UserExists):
            users.add("u-hash", Role.OPERATOR, "another one")


def test_only_the_right_password_of_an_active_user_logs_in(store: Store) -> None:
    with store.users() as users:
        users.add("u-login", Role.FINANCE, "right password")
        assert users.authenticate("u-login", "right password") is not None
        assert users.authenticate("u-login", "wrong password") is None
        assert users.authenticate("u-nobody", "right password") is None
        users.disable("u-login")
        assert users.authenticate("u-login", "right password") is None


def test_every_change_is_kept_in_a_history_nobody_can_alter(store: Store) -> None:
    with store.users() as users:
        users.add("u-history", Role.OPERATOR, "a password")
        users.disable("u-history")
        users.disable("u-history")  # already disabled: nothing more recorded
    with store.connect_admin() as conn:
        changes = conn.execute(
            "SELECT change, role FROM yibao.user_changes WHERE name = 'u-history' ORDER BY id"
        ).fetchall()
        assert changes == [("added", "operator"), ("disabled", "operator")]
        with pytest.raises(psycopg.errors.IntegrityConstraintViolation, match="immutable"):
            conn.execute("DELETE FROM yibao.user_changes WHERE name = 'u-history'")


def test_names_and_passwords_are_checked_and_unknown_users_named(store: Store) -> None:
    with store.users() as users:
        with pytest.raises(BadUser, match="user name"):
            users.add("no spaces", Role.OPERATOR, "long enough")
        with pytest.raises(BadUser, match="at least 8"):
            users.add("u-short", Role.OPERATOR, "short")
        with pytest.raises(UnknownUser):
            users.disable("u-never")


def test_each_role_may_do_only_its_own_part() -> None:
    check_allowed("a", Role.APPROVER, Action.APPROVE)
    check_allowed("f", Role.FINANCE, Action.PAY)
    for role, action in [(Role.OPERATOR, Action.APPROVE), (Role.AUDITOR, Action.RECORD), (Role.APPROVER, Action.PAY)]:
        with pytest.raises(NotAllowed):
            check_allowed("x", role, action)


def test_the_cli_adds_lists_and_disables_users(cli_env: dict[str, str]) -> None:
    runner = CliRunner()
    assert runner.invoke(main, ["db", "up"], env=cli_env).exit_code == 0
    added = runner.invoke(main, ["users", "add", "u-cli", "--role", "auditor"], input="a long password\n", env=cli_env)
    assert added.exit_code == 0, added.output
    assert added.stdout.split("\t")[:2] == ["u-cli", "auditor"]
    again = runner.invoke(main, ["users", "add", "u-cli", "--role", "auditor"], input="a long password\n", env=cli_env)
    assert again.exit_code == 1
    assert again.stderr.strip() == "error: user_exists: user u-cli exists (users list shows them)"
    disabled = runner.invoke(main, ["users", "disable", "u-cli"], env=cli_env)
    assert disabled.exit_code == 0 and "\tdisabled " in disabled.stdout
    listed = [line.split("\t") for line in runner.invoke(main, ["users", "list"], env=cli_env).stdout.splitlines()]
    assert [(row[1], row[3].split()[0]) for row in listed if row[0] == "u-cli"] == [("auditor", "disabled")]
    bad_role = runner.invoke(main, ["users", "add", "u-x", "--role", "king"], input="a long password\n", env=cli_env)
    assert bad_role.exit_code == 2 and bad_role.stderr.startswith("error: usage:")
