"""Who is acting: the operator a command names, checked against the users registry.

With no user registered, any name is taken as given (stores and scripts from before the registry
keep working). Once users are registered, the operator must be an active user whose role allows
the action; and where DATABASE_URL logs in as a person's own database role that is a registered
user, that person is the operator and no flag can claim another.
"""

from __future__ import annotations

from core.errors import YibaoError
from core.roles import Action, check_allowed
from store.app import Store


class OperatorMismatch(YibaoError):
    reason = "operator_mismatch"


class UserDisabled(YibaoError):
    reason = "user_disabled"


def acting_user(store: Store, claimed: str, action: Action) -> str:
    with store.users() as users:
        if not users.any_registered():
            return claimed
        with store.connect_admin() as conn:
            row = conn.execute("SELECT session_user").fetchone()
        logged_in = users.find(row[0]) if row else None
        if logged_in is not None and claimed != logged_in.name:
            detail = f"connected to the database as {logged_in.name}: --operator {claimed} cannot act for them"
            raise OperatorMismatch(detail)
        user = users.get(claimed)
    if not user.active:
        raise UserDisabled(f"user {claimed} is disabled")
    check_allowed(claimed, user.role, action)
    return claimed
