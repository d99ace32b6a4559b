"""Sessions, CSRF tokens and the slowing down of failed logins.

A session is a signed cookie (itsdangerous TimestampSigner, key in YIBAO_HOME/console.key made
0600 on first use) holding the user's name; it is HttpOnly, SameSite=Strict and expires. Every
form carries a CSRF token equal to the one in a signed cookie of its own (double submit), the
login form included, so a page of another site cannot post in the user's name.
"""

from __future__ import annotations

import os
import secrets
import threading
from pathlib import Path

from itsdangerous import BadSignature, TimestampSigner

SESSION_COOKIE = "yibao_session"
CSRF_COOKIE = "yibao_csrf"
SESSION_SECONDS = 8 * 3600  # a working day
# A failed login waits 0.5 s, then twice as long after each further failure, at most 8 s.
DELAY_FIRST = 0.5
DELAY_MAX = 8.0


def secret_key(home: Path) -> bytes:
    """The key that signs the console's cookies, created once, readable by its owner only."""
    path = home / "console.key"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes()
    key = secrets.token_hex(32).encode()
    with os.fdopen(fd, "wb") as out:
        out.write(key)
    return key


class Cookies:
    """Signs and reads the session and CSRF cookies."""

    def __init__(self, key: bytes) -> None:
        self._session = TimestampSigner(key, salt="yibao.session")
        self._csrf = TimestampSigner(key, salt="yibao.csrf")

    def session(self, user_name: str) -> str:
        return self._session.sign(user_name).decode()

    def user_of(self, cookie: str | None) -> str | None:
        """The user a session cookie names, or None when it is missing, forged or expired."""
        return _unsigned(self._session, cookie)

    def new_csrf(self) -> tuple[str, str]:
        """A fresh token and the cookie that vouches for it."""
        token = secrets.token_urlsafe(24)
        return token, self._csrf.sign(token).decode()

    def csrf_of(self, cookie: str | None) -> str | None:
        return _unsigned(self._csrf, cookie)


def _unsigned(signer: TimestampSigner, cookie: str | None) -> str | None:
    if not cookie:
        return None
    try:
        return signer.unsign(cookie, max_age=SESSION_SECONDS).decode()
    except BadSignature:
        return None


class Throttle:
    """Consecutive failed logins per user name, and how long the next failure waits."""

    def __init__(self) -> None:
        self._failures: dict[str, int] = {}
        self._lock = threading.Lock()

    def failed(self, name: str) -> float:
        """Count a failure; the seconds to wait before answering it."""
        with self._lock:
            count = self._failures[name] = self._failures.get(name, 0) + 1
        return delay(count)

    def succeeded(self, name: str) -> None:
        with self._lock:
            self._failures.pop(name, None)


def delay(failures: int) -> float:
    return min(DELAY_FIRST * 2 ** (failures - 1), DELAY_MAX) if failures > 0 else 0.0
