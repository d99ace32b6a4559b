"""The console's cookies and the slowing down of failed logins (web/auth.py)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from itsdangerous import TimestampSigner

from web import auth
from web.auth import Cookies, Throttle, delay, secret_key


def test_the_key_is_made_once_readable_by_its_owner_only(tmp_path: Path) -> None:
    key = secret_key(tmp_path)
    assert stat.S_IMODE(os.stat(tmp_path / "console.key").st_mode) == 0o600
    assert secret_key(tmp_path) == key and len(key) == 64


def test_a_session_names_its_user_until_it_expires_and_never_when_forged(monkeypatch: pytest.MonkeyPatch) -> None:
    cookies = Cookies(b"k" * 64)
    cookie = cookies.session("wang")
    assert cookies.user_of(cookie) == "wang"
    assert cookies.user_of(cookie.replace("wang", "zhao")) is None
    assert cookies.user_of(Cookies(b"x" * 64).session("wang")) is None
    assert cookies.user_of(None) is None
    monkeypatch.setattr(auth, "SESSION_SECONDS", -1)  # every session is older than this
    assert cookies.user_of(cookie) is None


def test_a_csrf_cookie_vouches_for_its_token_only() -> None:
    cookies = Cookies(b"k" * 64)
    token, cookie = cookies.new_csrf()
    assert cookies.csrf_of(cookie) == token
    assert cookies.csrf_of(TimestampSigner(b"k" * 64, salt="yibao.session").sign(token).decode()) is None


def test_failed_logins_wait_longer_each_time_up_to_a_bound() -> None:
    throttle = Throttle()
    assert [throttle.failed("wang") for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    assert throttle.failed("zhao") == 0.5  # per user name
    throttle.succeeded("wang")
    assert throttle.failed("wang") == 0.5
    assert delay(0) == 0.0
