"""The users registry (yibao.users), shared by the CLI's finance controls and the console.

Passwords are stored as argon2id hashes (argon2-cffi, the reference implementation's binding);
every change is also a row of yibao.user_changes, which nobody can alter.
"""

from __future__ import annotations

import datetime as dt
from functools import cache
from typing import TYPE_CHECKING, Any

import attrs
import psycopg

from core.errors import YibaoError
from core.roles import Role, check_name, check_password

if TYPE_CHECKING:
    from argon2 import PasswordHasher


@cache
def _hasher() -> PasswordHasher:
    """Imported on first use: argon2's binding (and cffi) add megabytes to every process that
    imports the CLI, and only adding a user or logging in hashes a password."""
    from argon2 import PasswordHasher

    return PasswordHasher()


@cache
def _dummy_hash() -> str:
    """Verifying against this when the name is unknown takes as long as a real check: a failed
    login does not tell whether the name exists. Made on first use: a hash costs argon2's 64 MiB
    and a quarter of a second, which no command but a login should pay."""
    return _hasher().hash("not a password of anyone")


class UnknownUser(YibaoError):
    reason = "unknown_user"


class UserExists(YibaoError):
    reason = "user_exists"


@attrs.frozen
class User:
    name: str
    role: Role
    created_at: dt.datetime
    disabled_at: dt.datetime | None

    @property
    def active(self) -> bool:
        return self.disabled_at is None


class Users:
    """The registry over an autocommit connection of the store's owner."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def add(self, name: str, role: Role, password: str, *, changed_by: str | None = None) -> User:
        check_name(name)
        digest = _hasher().hash(check_password(password))
        with self._conn.transaction():
            try:
                self._conn.execute(
                    "INSERT INTO yibao.users (name, role, password_hash) VALUES (%s, %s, %s)", (name, role, digest)
                )
            except psycopg.errors.UniqueViolation:
                raise UserExists(f"user {name} exists (users list shows them)") from None
            self._changed(name, "added", role, changed_by)
        return self.get(name)

    def disable(self, name: str, *, changed_by: str | None = None) -> User:
        user = self.get(name)
        if user.active:
            with self._conn.transaction():
                self._conn.execute("UPDATE yibao.users SET disabled_at = now() WHERE name = %s", (name,))
                self._changed(name, "disabled", user.role, changed_by)
        return self.get(name)

    def get(self, name: str) -> User:
        row = self._conn.execute(
            "SELECT name, role, created_at, disabled_at FROM yibao.users WHERE name = %s", (name,)
        ).fetchone()
        if row is None:
            raise UnknownUser(f"no user {name} (yibao users add {name} --role ...)")
        return User(row[0], Role(row[1]), row[2], row[3])

    def find(self, name: str) -> User | None:
        try:
            return self.get(name)
        except UnknownUser:
            return None

    def all(self) -> list[User]:
        rows = self._conn.execute("SELECT name, role, created_at, disabled_at FROM yibao.users ORDER BY name")
        return [User(r[0], Role(r[1]), r[2], r[3]) for r in rows]

    def any_registered(self) -> bool:
        return self._conn.execute("SELECT EXISTS (SELECT FROM yibao.users)").fetchone() == (True,)

    def authenticate(self, name: str, password: str) -> User | None:
        """The active user with this name and password, or None (the same time either way)."""
        row = self._conn.execute("SELECT password_hash FROM yibao.users WHERE name = %s", (name,)).fetchone()
        from argon2.exceptions import InvalidHashError, VerificationError

        try:
            _hasher().verify(row[0] if row else _dummy_hash(), password)
        except (VerificationError, InvalidHashError):
            return None
        user = self.find(name) if row else None
        return user if user is not None and user.active else None

    def _changed(self, name: str, change: str, role: Role, changed_by: str | None) -> None:
        """`changed_by`: who made the change, by default the database role that connected."""
        self._conn.execute(
            "INSERT INTO yibao.user_changes (name, change, role, changed_by) "
            "VALUES (%s, %s, %s, coalesce(%s, session_user))",
            (name, change, role, changed_by),
        )
