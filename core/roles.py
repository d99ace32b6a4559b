"""Who may do what (the users registry's roles, SPEC finance controls and console).

A role is registered with each user (`yibao users add NAME --role ROLE`). Operators record
facts and ask for what needs a second pair of eyes; approvers approve or reject what someone
else asked (复核); finance staff reconcile, clear and pay; auditors read everything and change
nothing. The maker of a request never approves it, whatever their role.
"""

from __future__ import annotations

import re
from enum import StrEnum

from core.errors import YibaoError


class Role(StrEnum):
    OPERATOR = "operator"
    APPROVER = "approver"
    FINANCE = "finance"
    AUDITOR = "auditor"


class Action(StrEnum):
    RECORD = "record"  # settle, reverse, correct, import: facts entered by an operator
    APPROVE = "approve"  # approve or reject a request someone else made
    PAY = "pay"  # reconcile, clear, pay hospitals and members
    READ = "read"  # reports, trace, verify, the console


ALLOWED: dict[Role, frozenset[Action]] = {
    Role.OPERATOR: frozenset({Action.RECORD, Action.READ}),
    Role.APPROVER: frozenset({Action.APPROVE, Action.READ}),
    Role.FINANCE: frozenset({Action.PAY, Action.RECORD, Action.READ}),
    Role.AUDITOR: frozenset({Action.READ}),
}

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")
password_chars_min = 8


class NotAllowed(YibaoError):
    reason = "not_allowed"


class BadUser(YibaoError):
    reason = "invalid_user"


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise BadUser(
            f"user name {name!r}: 1 to 64 letters, digits, '_', '.', '@' or '-', starting with a letter or digit"
        )
    return name


def check_password(password: str) -> str:
    if len(password) < password_chars_min:
        raise BadUser(f"a password needs at least {password_chars_min} characters")
    return password


def check_allowed(name: str, role: Role, action: Action) -> None:
    if action not in ALLOWED[role]:
        raise NotAllowed(f"{name} is registered as {role}, which may not {action}")
