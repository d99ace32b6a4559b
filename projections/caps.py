"""Caps as they were (part of `yibao verify`).

Every settlement version that raised an accumulator of its member-year must have left it within
the cap of the policy version the settlement recorded, on the terms the member had on its date
(scheme and assistance category as the settlement recorded them; the chronic outpatient bonus only
for a member registered chronic on that date, by the records known when it was settled). A later
policy version with a lower cap, or a category with a lower limit from mid-year, does not make an
earlier settlement wrong; a settlement that raised nothing is held to no cap.

The log is read once in order: policy versions, member records, member-years, settlements, their
reversals and look-back assistance, so running totals are those each settlement saw.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from functools import lru_cache
from typing import Any

import attrs
from eventsourcing.persistence import StoredEvent
from psycopg import sql
from psycopg.rows import tuple_row

from app.region import RegionApplication
from core.codec import topic_of
from core.errors import first_line
from core.member import Member
from core.member_year import MemberYear
from core.policy import Policy, parse_policy
from core.policy_book import PolicyBook
from core.records import MemberRecord
from core.settlement import Settlement, SettlementFacts
from core.tiers import YearToDate
from store.recorder import datastore_of

scan_page_rows = 10_000
_TOPICS = {
    topic_of(PolicyBook.VersionLoaded): "policy",
    topic_of(Member.RecordAdded): "record",
    topic_of(Settlement.Settled): "settled",
    topic_of(Settlement.Resettled): "settled",
    topic_of(MemberYear.ClaimApplied): "applied",
    topic_of(MemberYear.ClaimReversed): "reversed",
    topic_of(MemberYear.AssistanceLookedBack): "lookback",
}


@attrs.frozen
class _Terms:
    """What a settlement version is held to: its policy version, scheme, category and date."""

    policy_hash: str
    insutype: str
    category: str
    on: dt.date


class _Books:
    """What the log has said so far: the running totals and what each settlement is held to.

    A settlement's event and its member-year's come in one transaction, in either order: the
    check runs when both have been read."""

    def __init__(self) -> None:
        self.policy_texts: dict[str, str] = {}  # content hash -> TOML
        self.records: dict[str, list[MemberRecord]] = {}
        self.totals: dict[tuple[str, int], YearToDate] = {}
        self.terms: dict[str, _Terms] = {}  # setl_id -> the terms of its latest version
        self.waiting_terms: dict[tuple[str, int], tuple[tuple[str, int], YearToDate, set[str]]] = {}
        self.waiting_totals: set[tuple[str, int]] = set()  # (setl_id, version) whose terms came first
        self.problems: list[str] = []
        self.settlements = 0

    def take(self, kind: str, event: Any) -> None:
        getattr(self, f"_{kind}")(event)

    def _policy(self, event: Any) -> None:
        self.policy_texts[event.content_hash] = event.toml_text

    def _record(self, event: Any) -> None:
        record = MemberRecord.from_dict(event.record)
        history = self.records.setdefault(record.psn_no, [])
        history.append(record)
        history.sort(key=lambda r: r.valid_from)

    def _settled(self, event: Any) -> None:
        facts: SettlementFacts = event.facts
        on = dt.date.fromisoformat(facts.claim["setl_time"][:10])
        self.terms[facts.setl_id] = _Terms(facts.policy_hash, facts.insutype, facts.assist_category, on)
        self.settlements += 1
        version = (facts.setl_id, facts.version)
        waiting = self.waiting_terms.pop(version, None)
        if waiting is None:
            self.waiting_totals.add(version)
        else:
            self._check(facts.setl_id, f"v{facts.version}", *waiting)

    def _applied(self, event: Any) -> None:
        key, total = (event.psn_no, event.year), self._add(event, 1)
        version = (event.setl_id, event.setl_version)
        if version in self.waiting_totals:
            self.waiting_totals.discard(version)
            self._check(event.setl_id, f"v{event.setl_version}", key, total, _raised(event.delta))
        else:
            self.waiting_terms[version] = (key, total, _raised(event.delta))

    def _reversed(self, event: Any) -> None:
        self._add(event, -1)

    def _lookback(self, event: Any) -> None:
        total = self._add(event, 1)
        self._check(event.setl_id, "look-back", (event.psn_no, event.year), total, _raised(event.delta))

    def _add(self, event: Any, sign: int) -> YearToDate:
        key = (event.psn_no, event.year)
        total = self.totals.get(key, YearToDate()).plus_all([(event.delta, sign)])
        self.totals[key] = total
        return total

    def _check(self, setl_id: str, what: str, key: tuple[str, int], total: YearToDate, raised: set[str]) -> None:
        terms = self.terms[setl_id]
        text = self.policy_texts.get(terms.policy_hash)
        where = f"member-year {key[0]}/{key[1]}: settlement {setl_id} {what} (policy {terms.policy_hash[:12]})"
        if text is None:
            self.problems.append(f"{where}: its policy version is not in the log")
            return
        chronic = self._chronic_on(key[0], terms.on)
        for problem in over_caps(_policy(text), total, raised, terms.insutype, terms.category, chronic):
            self.problems.append(f"{where}: {problem}")

    def _chronic_on(self, psn_no: str, on: dt.date) -> bool:
        in_force = None
        for record in self.records.get(psn_no, []):
            if record.valid_from <= on:
                in_force = record
        return in_force is not None and in_force.chronic


def _raised(delta: Mapping[str, Any]) -> set[str]:
    raised = {name for name, amount in delta.items() if isinstance(amount, int) and amount > 0}
    maternity = delta.get("maternity_paid") or {}
    return raised | {f"{MATERNITY}:{med_type}" for med_type, amount in maternity.items() if amount > 0}


MATERNITY = "maternity_paid"  # raised per med_type: "maternity_paid:52"


def _value(ytd: YearToDate, name: str) -> int:
    field, _, med_type = name.partition(":")
    return ytd.maternity_paid.get(med_type, 0) if field == MATERNITY else getattr(ytd, name)


@lru_cache(maxsize=16)
def _policy(text: str) -> Policy:
    return parse_policy(text.encode())


def cap_limits(policy: Policy, insutype: str, category: str, chronic: bool) -> dict[str, int | None]:
    """The cap of each accumulator under `policy`, on these terms (None: no cap)."""
    limits: dict[str, int | None] = {}
    scheme = policy.basic.get(insutype)
    if scheme is not None:
        limits["basic_paid"] = scheme.annual_cap
        outpatient = scheme.outpatient_annual_cap
        if outpatient is not None and chronic:
            outpatient += scheme.chronic_outpatient_bonus
        limits["basic_outpatient_paid"] = outpatient
    if policy.serious_illness is not None:
        limits["serious_illness_paid"] = policy.serious_illness.terms_for(category).annual_cap
    assistance = policy.assistance.get(category)
    if assistance is not None:
        limits["assistance_paid"] = assistance.annual_limit
        limits["assistance_outpatient_paid"] = assistance.outpatient_limit
    if policy.supplementary is not None:
        limits["supplementary_paid"] = policy.supplementary.terms_for(category).annual_cap
    for med_type, terms in policy.maternity.items():
        limits[f"{MATERNITY}:{med_type}"] = terms.annual_cap
    return limits


def over_caps(
    policy: Policy, ytd: YearToDate, raised: set[str], insutype: str, category: str, chronic: bool
) -> list[str]:
    """The caps of `policy` that the accumulators named in `raised` stand over, on these terms."""
    limits = cap_limits(policy, insutype, category, chronic)
    problems = []
    for name in sorted(raised & limits.keys()):
        cap, value = limits[name], _value(ytd, name)
        if cap is not None and value > cap:
            problems.append(f"{name} {value} over its cap {cap}")
    return problems


def _events(app: RegionApplication) -> Iterator[tuple[int, str, StoredEvent]]:
    """The events the check reads, in log order, a page at a time: (position, kind, stored)."""
    datastore = datastore_of(app)
    query = sql.SQL(
        "SELECT notification_id, originator_id, originator_version, topic, state FROM {} "
        "WHERE notification_id > %s AND topic = ANY(%s) ORDER BY notification_id LIMIT %s"
    ).format(sql.Identifier(datastore.schema, "events"))
    topics, after = list(_TOPICS), 0
    while True:
        with datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
            rows = curs.execute(query, (after, topics, scan_page_rows), binary=True).fetchall()
        if not rows:
            return
        for position, originator_id, version, topic, state in rows:
            yield position, _TOPICS[topic], StoredEvent(originator_id, version, topic, bytes(state))
        after = rows[-1][0]


def check_caps(app: RegionApplication) -> tuple[list[str], int]:
    """The problems found (each names the member-year, the settlement and the cap), and how many
    settlement versions were checked."""
    books = _Books()
    for position, kind, stored in _events(app):
        try:
            books.take(kind, app.mapper.to_domain_event(stored))
        except Exception as exc:  # an event changed outside yibao: the chain check names how
            books.problems.append(f"event at position {position} cannot be checked against the caps: {first_line(exc)}")
    return books.problems, books.settlements
