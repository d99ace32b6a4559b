"""The audit trace (SPEC 6): every event behind a settlement, or behind a balance-sheet line.

For a settlement: its own stream (versions, reversals, look-backs), the member-year events that
applied or gave back its accumulators, the account movements it caused, and the hospital
deductions made on it, in log order, each with its global position, time, type, operator,
reason, policy hash, computation breakdown and postings.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from psycopg import sql

from app.region import RegionApplication
from core.ids import (
    account_id,
    hospital_id,
    member_year_id,
    remote_care_id,
    settlement_id,
    transfer_id,
    transfer_in_id,
)
from core.money import format_yuan
from core.remote_care import RemoteCare
from core.settlement import SettlementFacts
from core.transfer import TransferFacts
from store.chain import GENESIS_HASH, content, legacy_digest, link_digest, micros, own_digest
from store.recorder import datastore_of


def _rows(curs: Any, schema: str, ids: list[UUID]) -> list[dict[str, Any]]:
    curs.execute(
        sql.SQL(
            "SELECT notification_id, recorded_at, originator_id, originator_version, topic, state FROM {} "
            "WHERE originator_id = ANY(%s) ORDER BY notification_id"
        ).format(sql.Identifier(schema, "events")),
        (ids,),
    )
    return list(curs.fetchall())


def _postings(event: Any) -> list[dict[str, str]]:
    postings = getattr(event, "postings", None)
    if postings is None and hasattr(event, "facts"):
        postings = event.facts.postings
    return [
        {"fund": p.fund, "account": p.account, "party": p.party, "amount": format_yuan(p.amount)}
        for p in postings or []
    ]


def trace_settlement(app: RegionApplication, setl_id: str) -> list[dict[str, Any]] | None:
    datastore = datastore_of(app)
    schema = datastore.schema
    with datastore.transaction(commit=False) as curs:
        own = _rows(curs, schema, [settlement_id(setl_id)])
        if not own:
            return None
        events = [(row, app.mapper.to_domain_event(_stored(row))) for row in own]
        related: set[UUID] = {remote_care_id(setl_id)}  # what a region of treatment is owed for it
        for _, event in events:
            facts = getattr(event, "facts", None)
            if facts is not None:
                related.add(member_year_id(facts.psn_no, facts.year))
                related.add(account_id(facts.psn_no))
                if facts.account_psn:
                    related.add(account_id(facts.account_psn))
                related.add(hospital_id(facts.claim["fixmedins_code"]))
        for row in _rows(curs, schema, sorted(related)):
            event = app.mapper.to_domain_event(_stored(row))
            if _concerns(event, setl_id):
                events.append((row, event))
    events.sort(key=lambda pair: pair[0]["notification_id"])
    return [_describe(row, event) for row, event in events]


def treated_elsewhere(app: RegionApplication, setl_id: str) -> list[tuple[str, str]]:
    """(region of treatment, institution) of every version of a settlement of `app`'s member
    that was owed to another region (异地就医), in the order first owed."""
    datastore = datastore_of(app)
    with datastore.transaction(commit=False) as curs:
        rows = _rows(curs, datastore.schema, [remote_care_id(setl_id)])
    places: list[tuple[str, str]] = []
    for row in rows:
        event = app.mapper.to_domain_event(_stored(row))
        place = (getattr(event, "treated_in", ""), getattr(event, "fixmedins_code", ""))
        if isinstance(event, RemoteCare.Owed) and place not in places:
            places.append(place)
    return places


def trace_treated_here(app: RegionApplication, insured_in: str, setl_id: str, hospital: str) -> list[dict[str, Any]]:
    """The events of region `app` (of treatment) for a settlement of region `insured_in`'s member
    treated at its `hospital` (异地就医): what it owes the hospital for each version, and each
    reversal."""
    datastore = datastore_of(app)
    with datastore.transaction(commit=False) as curs:
        rows = _rows(curs, datastore.schema, [hospital_id(hospital)])
    out = []
    for row in rows:
        event = app.mapper.to_domain_event(_stored(row))
        if getattr(event, "insured_in", None) == insured_in and getattr(event, "setl_id", None) == setl_id:
            out.append(_describe(row, event))
    return out


def trace_transfer(apps: list[RegionApplication], transfer: str, psn_no: str, from_region: str) -> list[dict[str, Any]]:
    """Every event of a relationship transfer in every region it touched (the transfer, its
    arrival, and the account movements it caused), each region's in its log order."""
    out: list[dict[str, Any]] = []
    for app in apps:
        datastore = datastore_of(app)
        with datastore.transaction(commit=False) as curs:
            rows = _rows(
                curs,
                datastore.schema,
                [transfer_id(transfer), transfer_in_id(transfer, from_region), account_id(psn_no)],
            )
        for row in rows:
            event = app.mapper.to_domain_event(_stored(row))
            if row["originator_id"] == account_id(psn_no) and getattr(event, "ref", None) != f"transfer:{transfer}":
                continue  # the account's other movements
            out.append({"region": app.region, **_describe(row, event)})
    return out


def _stored(row: dict[str, Any]) -> StoredEvent:
    return StoredEvent(row["originator_id"], row["originator_version"], row["topic"], bytes(row["state"]))


def _concerns(event: Any, setl_id: str) -> bool:
    if getattr(event, "setl_id", None) == setl_id:
        return True
    ref = getattr(event, "ref", "")
    return isinstance(ref, str) and ref.startswith((f"settlement:{setl_id}:v", f"reversal:{setl_id}:v"))


def _describe(row: dict[str, Any], event: Any) -> dict[str, Any]:
    facts = getattr(event, "facts", None)
    out: dict[str, Any] = {
        "position": row["notification_id"],
        "recorded_at": row["recorded_at"].isoformat(),
        "type": row["topic"],
        "aggregate_version": row["originator_version"],
        "operator": getattr(event, "operator", None) or getattr(facts, "operator", None),
        "reason": getattr(event, "reason", None) or getattr(facts, "reason", None),
    }
    approved_by = getattr(event, "approved_by", None) or getattr(facts, "approved_by", None)
    if approved_by:
        out["approved_by"] = approved_by  # the second person (复核), besides the operator who asked
    if isinstance(facts, SettlementFacts):
        out["version"] = facts.version
        out["policy"] = facts.policy_hash
        out["amounts"] = {k: format_yuan(v) for k, v in facts.amounts.items()}
        out["breakdown"] = facts.breakdown
    elif isinstance(facts, TransferFacts):
        out["transfer"] = {
            "transfer_id": facts.transfer_id, "psn_no": facts.psn_no, "from_region": facts.from_region,
            "to_region": facts.to_region, "transfer_date": facts.transfer_date, "balance": format_yuan(facts.balance),
            "contribution_years": facts.contribution_years,
        }  # fmt: skip
    for name in ("setl_version", "on_date", "kind", "amount", "fund", "delta", "breakdown"):
        value = getattr(event, name, None)
        if value is not None and name not in out:
            out[name] = format_yuan(value) if name == "amount" else value
    out["postings"] = _postings(event)
    return out


def trace_account(
    app: RegionApplication, fund: str, account: str, as_of: dt.date, *, page_rows: int = 10_000
) -> Iterator[dict[str, Any]]:
    """The postings behind one balance-sheet line (fund and account), up to a date: all of them,
    read a page at a time after the last one given (a city's line has millions)."""
    datastore = datastore_of(app)
    after = (0, -1)  # (position, leg) of the last posting given
    while True:
        with datastore.transaction(commit=False) as curs:
            rows = postings_page(curs, datastore.schema, fund, account, None, as_of, after, page_rows)
        yield from (_journal_line(row) for row in rows)
        if len(rows) < page_rows:
            return
        after = (rows[-1]["notification_id"], rows[-1]["leg"])


def postings_page(
    curs: Any, schema: str, fund: str, account: str, since: dt.date | None, as_of: dt.date,
    after: tuple[int, int], rows: int,
) -> list[dict[str, Any]]:  # fmt: skip
    """Up to `rows` postings of a fund's account dated `since`..`as_of`, after (position, leg):
    paged by position (keyset), never by OFFSET, so the last page costs what the first does."""
    curs.execute(
        sql.SQL(
            "SELECT notification_id, leg, posted_on, kind, ref, party, amount FROM {} "
            "WHERE fund = %s AND account = %s AND posted_on >= %s AND posted_on <= %s "
            "AND (notification_id, leg) > (%s, %s) ORDER BY notification_id, leg LIMIT %s"
        ).format(sql.Identifier(schema, "journal")),
        (fund, account, since or dt.date.min, as_of, *after, rows),
    )
    return list(curs.fetchall())


def describe_event(app: RegionApplication, position: int) -> dict[str, Any] | None:
    """One event of the region's log by its position, described as in a trace (with the
    settlement it belongs to, when it belongs to one)."""
    datastore = datastore_of(app)
    with datastore.transaction(commit=False) as curs:
        curs.execute(
            sql.SQL(
                "SELECT notification_id, recorded_at, originator_id, originator_version, topic, state FROM {} "
                "WHERE notification_id = %s"
            ).format(sql.Identifier(datastore.schema, "events")),
            (position,),
        )
        row = curs.fetchone()
    if row is None:
        return None
    event = app.mapper.to_domain_event(_stored(row))
    facts = getattr(event, "facts", None)
    setl_id = getattr(event, "setl_id", None) or (facts.setl_id if isinstance(facts, SettlementFacts) else None)
    ref = getattr(event, "ref", None)
    if setl_id is None and isinstance(ref, str) and ref.startswith(("settlement:", "reversal:")):
        setl_id = ref.split(":")[1]
    return {**_describe(row, event), "setl_id": setl_id}


def _journal_line(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "position": row["notification_id"],
        "posted_on": row["posted_on"].isoformat(),
        "kind": row["kind"],
        "ref": row["ref"],
        "party": row["party"],
        "amount": format_yuan(int(row["amount"])),
    }


def chain_status(app: RegionApplication, positions: list[int]) -> dict[int, tuple[bool, str]]:
    """Per event, whether its row is as written and still follows the row before it (the checks
    of `yibao verify` on these rows alone; `verify` checks the whole log and its seals)."""
    datastore = datastore_of(app)
    with datastore.transaction(commit=False) as curs:
        curs.execute(
            sql.SQL(
                "SELECT e.notification_id, e.originator_id, e.originator_version, e.topic, e.state, e.recorded_at, "
                "e.chain_hash, s.notification_id IS NOT NULL AS sealed, d.digest AS legacy, "
                "(SELECT p.chain_hash FROM {events} AS p WHERE p.notification_id < e.notification_id "
                " ORDER BY p.notification_id DESC LIMIT 1) AS previous "
                "FROM {events} AS e LEFT JOIN {seals} AS s USING (notification_id) "
                "LEFT JOIN {digests} AS d USING (notification_id) WHERE e.notification_id = ANY(%s)"
            ).format(
                events=sql.Identifier(datastore.schema, "events"),
                seals=sql.Identifier(datastore.schema, "seals"),
                digests=sql.Identifier(datastore.schema, "event_digests"),
            ),
            (positions,),
        )
        rows = curs.fetchall()
    return {row["notification_id"]: _chain_of(row) for row in rows}


def _chain_of(row: dict[str, Any]) -> tuple[bool, str]:
    body = content(_stored(row))
    position, recorded_us, stored = row["notification_id"], micros(row["recorded_at"]), bytes(row["chain_hash"])
    if row["legacy"] is not None:  # written before migration 0015: its sealed digest covers every column
        ok = bytes(row["legacy"]) == legacy_digest(body, position, recorded_us, row["sealed"], stored)
        return ok, "digest sealed by migration 0015 matches" if ok else "CHANGED: its sealed digest does not match"
    own = own_digest(body, position, recorded_us, row["sealed"])
    if own != stored[16:]:
        return False, "CHANGED: its own digest does not match its columns"
    previous = bytes(row["previous"]) if row["previous"] is not None else GENESIS_HASH
    if link_digest(previous, own) != stored[:16]:
        return False, "BROKEN: it does not follow the event before it (one deleted or inserted)"
    return True, "intact: its own digest and its link to the event before it match"
