"""Cheap reads for the console's overview and hospitals page, straight from the region's log.

Approval requests and reconciliations are a handful of events among hundreds of thousands;
loading them as aggregates (`approval_requests()`, `reconciliations()`) means finding them first,
and that reads the whole log. Region migration 0031 indexes just their topics, so these queries
read only those events; their states are msgspec JSON (core.codec), which PostgreSQL reads as
jsonb. A request is pending while its stream holds no decision (core.approval: Approved or
Rejected is always its second and last event). Nothing here writes.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs
import msgspec
from psycopg import sql

from core.approval import RequestStatus

approvals_per_page = 100

_REQUESTS = sql.SQL(
    "SELECT r.notification_id AS position, r.recorded_at, convert_from(r.state, 'UTF8')::jsonb AS asked,"
    " d.topic AS decision, convert_from(d.state, 'UTF8')::jsonb AS decided"
    " FROM {events} AS r LEFT JOIN {events} AS d ON d.originator_id = r.originator_id AND d.originator_version = 2"
    " AND d.topic IN ('ApprovalRequest.Approved', 'ApprovalRequest.Rejected')"
    " WHERE r.topic = 'ApprovalRequest.Requested'"
)
_STATUS = {None: RequestStatus.PENDING, "ApprovalRequest.Approved": RequestStatus.APPROVED,
           "ApprovalRequest.Rejected": RequestStatus.REJECTED}  # fmt: skip


@attrs.frozen
class ApprovalRow:
    """An approval request as its events say, with the attributes of `core.approval.ApprovalRequest`
    that lists show, and when and where in the log it was asked."""

    request_id: str
    status: RequestStatus
    kind: str
    subject: str
    subject_version: int
    amount: int  # fen
    maker: str
    reason: str
    checker: str | None
    position: int
    recorded_at: dt.datetime


def _events(schema: str) -> sql.Identifier:
    return sql.Identifier(schema, "events")


def pending_summary(curs: Any, schema: str) -> tuple[int, int]:
    """(how many requests are pending, their amount in fen)."""
    query = sql.SQL(
        "SELECT count(*) AS n, coalesce(sum((asked->>'amount')::bigint), 0) AS amount FROM ({}) AS q"
        " WHERE decision IS NULL"
    ).format(_REQUESTS.format(events=_events(schema)))
    row = curs.execute(query).fetchone()
    return int(row["n"]), int(row["amount"])


def approval_rows(
    curs: Any, schema: str, *, status: str | None = None, after: int = 0, rows: int | None = None
) -> list[ApprovalRow]:
    """The requests (only those of `status` when given) asked after position `after`, in log
    order, at most `rows` (keyset paging: never OFFSET)."""
    where = {None: sql.SQL(""), "pending": sql.SQL(" AND d.topic IS NULL"),
             "approved": sql.SQL(" AND d.topic = 'ApprovalRequest.Approved'"),
             "rejected": sql.SQL(" AND d.topic = 'ApprovalRequest.Rejected'")}[status]  # fmt: skip
    limit = sql.SQL(" LIMIT {}").format(sql.Literal(rows)) if rows else sql.SQL("")
    query = sql.SQL("{} AND r.notification_id > %s{} ORDER BY r.notification_id{}").format(
        _REQUESTS.format(events=_events(schema)), where, limit
    )
    return [_approval(row) for row in curs.execute(query, (after,)).fetchall()]


def _approval(row: dict[str, Any]) -> ApprovalRow:
    asked, decided = row["asked"], row["decided"] or {}
    return ApprovalRow(
        request_id=asked["request_id"], status=_STATUS[row["decision"]], kind=asked["kind"], subject=asked["subject"],
        subject_version=asked["subject_version"], amount=asked["amount"], maker=asked["maker"],
        reason=asked["reason"], checker=decided.get("checker"), position=row["position"],
        recorded_at=row["recorded_at"],
    )  # fmt: skip


def newest_event_at(curs: Any, schema: str) -> dt.datetime | None:
    """When the region's last event was recorded (None for an empty log)."""
    query = sql.SQL("SELECT recorded_at FROM {} ORDER BY notification_id DESC LIMIT 1").format(_events(schema))
    row = curs.execute(query).fetchone()
    return row["recorded_at"] if row else None


class _Result(msgspec.Struct):
    stmt_rslt: str = ""


class _Reconciled(msgspec.Struct):
    """The fields of `core.reconciliation.Reconciliation.Recorded` (the key only on it) and
    `Rechecked` that the page shows; the rest of the state is skipped when decoded."""

    operator: str
    on_date: str
    result: _Result
    kind: str = ""
    hospital: str = ""
    begin: str = ""
    end: str = ""


_reconciled = msgspec.json.Decoder(_Reconciled)


def reconciliation_rows(curs: Any, schema: str, year: int) -> list[dict[str, Any]]:
    """Each reconciliation whose period touches `year`, as its latest event says (a rerun of the
    same file that changed the answer records `Rechecked`): hospital, kind, period, stmt_rslt,
    when and by whom, ordered by hospital and period."""
    query = sql.SQL(
        "SELECT originator_id, topic, state, recorded_at, notification_id FROM {} "
        "WHERE topic IN ('Reconciliation.Recorded', 'Reconciliation.Rechecked') ORDER BY notification_id"
    ).format(_events(schema))
    key: dict[Any, _Reconciled] = {}
    latest: dict[Any, tuple[_Reconciled, dt.datetime, int]] = {}
    for row in curs.execute(query, binary=True).fetchall():
        event = _reconciled.decode(row["state"])
        if row["topic"] == "Reconciliation.Recorded":
            key[row["originator_id"]] = event
        latest[row["originator_id"]] = (event, row["recorded_at"], row["notification_id"])
    found = []
    for originator_id, (event, recorded_at, position) in latest.items():
        k = key[originator_id]
        if k.begin[:4] <= str(year) <= k.end[:4]:
            found.append({
                "hospital": k.hospital, "kind": k.kind, "begin": k.begin, "end": k.end,
                "stmt_rslt": event.result.stmt_rslt, "on_date": event.on_date, "operator": event.operator,
                "recorded_at": recorded_at, "position": position,
            })  # fmt: skip
    return sorted(found, key=lambda r: (r["hospital"], r["begin"], r["end"], r["kind"]))
