"""`yibao verify`: check the whole store and name what is wrong.

1. Tamper evidence: every event's chain hash is recomputed in log order; the first row whose
   stored hash no longer matches (edited, inserted or deleted rows) is named.
2. Postings: every money-moving event's postings balance, and in total per fund; no fund's bank
   balance is below zero at the end of any day (unless its policy allows an overdraft).
3. Projections: the read model equals a fresh replay of the log (journal, settlements, usage).
4. Limits: no member-year exceeds a cap or limit of its year's policy.
5. Snapshots: each equals the replay of its aggregate's events up to its version.
6. Transfers, across regions: every arrival matches a released transfer out of its region, every
   completed transfer has its arrival, and the inter-region balances net to what is in flight.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from eventsourcing.persistence import StoredEvent, Tracking
from psycopg import sql
from psycopg.rows import tuple_row

from app.region import RegionApplication
from core import snapshot
from core.errors import YibaoError
from core.funds import lowest_bank_balance
from core.ledger import BANK, DUE_TO_REGIONS, INDIVIDUAL_ACCOUNT_FUND
from core.money import format_yuan
from core.policy import Policy, parse_policy
from core.tiers import YearToDate
from core.transfer import COMPLETED, RELEASED
from projections.read_model import SETTLEMENT_COLUMNS as _SETTLEMENT_COLUMNS
from projections.read_model import TRANSFER_COLUMNS, USAGE_COLUMNS, Page, RegionReadModel, catch_up
from store.recorder import GENESIS_HASH, chain_hash

scan_page_rows = 5000


@dataclass
class Findings:
    region: str
    problems: list[str] = field(default_factory=list)
    checked: dict[str, int] = field(default_factory=dict)

    def fail(self, text: str) -> None:
        if len(self.problems) < 100:  # a limit on everything: the first hundred say enough
            self.problems.append(text)


def _scan(app: RegionApplication) -> Iterator[tuple[int, StoredEvent, bytes]]:
    """Every stored event in log order with its stored chain hash, a page at a time."""
    datastore = app.factory.datastore  # type: ignore[attr-defined]
    query = sql.SQL(
        "SELECT notification_id, originator_id, originator_version, topic, state, chain_hash FROM {} "
        "WHERE notification_id > %s ORDER BY notification_id LIMIT %s"
    ).format(sql.Identifier(datastore.schema, "events"))
    after = 0
    while True:
        with datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
            rows = curs.execute(query, (after, scan_page_rows), binary=True).fetchall()
        if not rows:
            return
        for notification_id, originator_id, version, topic, state, stored_hash in rows:
            yield notification_id, StoredEvent(originator_id, version, topic, bytes(state)), bytes(stored_hash)
        after = rows[-1][0]


def _digest(rows: Iterator[tuple[Any, ...]]) -> tuple[int, int]:
    """An order-independent digest of a set of rows: (count, sum of row hashes mod 2**64)."""
    count, total = 0, 0
    for row in rows:
        count += 1
        total = (total + int.from_bytes(hashlib.blake2b(repr(tuple(row)).encode(), digest_size=8).digest(), "big")) % (
            1 << 64
        )
    return count, total


def verify_region(app: RegionApplication) -> Findings:
    findings = Findings(app.region)
    catch_up(app)
    fresh = RegionReadModel(view=None)  # type: ignore[arg-type]  # replays into memory only
    journal_digest: list[tuple[Any, ...]] = []
    previous = GENESIS_HASH
    chain_broken = False
    events = 0
    sealed = _seals(app)
    seen_hashes: dict[int, bytes] = {}
    for notification_id, stored, stored_hash in _scan(app):
        events += 1
        previous = chain_hash(previous, stored)
        if notification_id in sealed:
            seen_hashes[notification_id] = previous
        if previous != stored_hash and not chain_broken:
            chain_broken = True
            findings.fail(
                f"event chain broken at position {notification_id} ({stored.topic}, aggregate "
                f"{stored.originator_id} v{stored.originator_version}): content or order changed"
            )
        try:
            event = app.mapper.to_domain_event(stored)
        except Exception as exc:  # a row that no longer decodes is itself a finding
            findings.fail(f"event at position {notification_id} does not decode: {exc}")
            continue
        try:
            fresh.handle(event, Tracking(app.name, notification_id))
        except YibaoError as exc:
            findings.fail(f"event at position {notification_id}: {exc}")
        if len(fresh.page.journal) > 50_000:
            journal_digest.extend(fresh.page.journal)
            fresh.page.journal = []
    journal_digest.extend(fresh.page.journal)
    findings.checked["events"] = events
    _check_seals(app, seen_hashes, findings)
    _check_totals(journal_digest, findings)
    _check_bank_balances(app, journal_digest, findings)
    _check_projection(app, fresh.page, journal_digest, findings)
    _check_limits(app, fresh.page, findings)
    _check_snapshots(app, findings)
    return findings


def _check_snapshots(app: RegionApplication, findings: Findings) -> None:
    """Every snapshot equals the replay of its aggregate's events up to its version."""
    datastore = app.factory.datastore  # type: ignore[attr-defined]
    query = sql.SQL(
        "SELECT originator_id, originator_version, topic, state FROM {} ORDER BY originator_id, originator_version"
    ).format(sql.Identifier(datastore.schema, "snapshots"))
    with datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
        rows = curs.execute(query, binary=True).fetchall()
    for originator_id, version, topic, state in rows:
        where = f"snapshot of aggregate {originator_id} at version {version}"
        try:
            restored = app.mapper.to_domain_event(StoredEvent(originator_id, version, topic, bytes(state))).mutate(None)
        except Exception as exc:  # a snapshot that no longer decodes is itself a finding
            findings.fail(f"{where} does not decode: {exc}")
            continue
        replayed = None
        for stored in app.recorder.select_events(originator_id, lte=version):
            replayed = app.mapper.to_domain_event(stored).mutate(replayed)
        if replayed is None or snapshot.state_of(replayed) != snapshot.state_of(restored):
            findings.fail(f"{where} differs from its events")
    findings.checked["snapshots"] = len(rows)


def _seals(app: RegionApplication) -> dict[int, tuple[bytes, Any]]:
    datastore = app.factory.datastore  # type: ignore[attr-defined]
    with datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
        rows = curs.execute(
            sql.SQL("SELECT notification_id, chain_hash, sealed_at FROM {}").format(
                sql.Identifier(datastore.schema, "seals")
            )
        ).fetchall()
    return {notification_id: (bytes(hash_), sealed_at) for notification_id, hash_, sealed_at in rows}


def _check_seals(app: RegionApplication, seen: dict[int, bytes], findings: Findings) -> None:
    """Every seal must name an event that is still there, with the chain hash it had then."""
    for notification_id, (sealed_hash, sealed_at) in sorted(_seals(app).items()):
        found = seen.get(notification_id)
        if found is None:
            findings.fail(
                f"sealed event at position {notification_id} (sealed {sealed_at.isoformat()}) is missing: "
                "events were deleted from the end of the log"
            )
            return
        if found != sealed_hash:
            findings.fail(f"chain hash at sealed position {notification_id} differs from its seal")
            return
    findings.checked["seals"] = len(seen)


def _check_totals(journal: list[tuple[Any, ...]], findings: Findings) -> None:
    by_event: dict[int, int] = {}
    by_fund: dict[str, int] = {}
    for row in journal:
        by_event[row[0]] = by_event.get(row[0], 0) + row[8]
        by_fund[row[5]] = by_fund.get(row[5], 0) + row[8]
    for position, total in by_event.items():
        if total != 0:
            findings.fail(f"postings of the event at position {position} do not balance ({total} fen)")
    for fund, total in by_fund.items():
        if total != 0:
            findings.fail(f"postings of fund {fund} do not balance in total ({total} fen)")
    findings.checked["postings"] = len(journal)


def _check_bank_balances(app: RegionApplication, journal: list[tuple[Any, ...]], findings: Findings) -> None:
    """No fund's bank account is overdrawn at the end of any day, unless the policy of that
    year lets the fund overdraw (payments and transfers are refused before they would be; this
    finds what came in otherwise, such as events recorded before that rule)."""
    days: dict[str, list[tuple[str, int]]] = {}
    for row in journal:
        if row[6] == BANK:
            days.setdefault(row[5], []).append((str(row[2]), row[8]))
    for fund, moves in sorted(days.items()):
        lowest = lowest_bank_balance(moves)
        if lowest is not None and not _may_overdraw(app, fund, int(lowest[0][:4])):
            on, balance = lowest
            findings.fail(f"fund {fund}: bank balance {format_yuan(balance)} on {on}, below zero")


def _may_overdraw(app: RegionApplication, fund: str, year: int) -> bool:
    book = app.policy_book(year)
    return book is not None and fund in _policy(book.current[1]).overdraft_allowed


def _check_projection(app: RegionApplication, page: Page, journal: list[tuple[Any, ...]], findings: Findings) -> None:
    datastore = app.factory.datastore  # type: ignore[attr-defined]
    schema = datastore.schema
    with datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
        stored_journal = curs.execute(
            sql.SQL(
                "SELECT notification_id, leg, posted_on::text, kind, ref, fund, account, party, amount FROM {}"
            ).format(sql.Identifier(schema, "journal"))
        ).fetchall()
        if _digest(iter(stored_journal)) != _digest(iter(_normal(journal))):
            findings.fail("read model 'journal' differs from a fresh replay of the log")
        stored_settlements = {
            row[0]: tuple(row)
            for row in curs.execute(
                sql.SQL("SELECT {} FROM {}").format(
                    sql.SQL(", ").join(
                        sql.SQL("{}::text").format(sql.Identifier(c)) if c == "setl_time" else sql.Identifier(c)
                        for c in _SETTLEMENT_COLUMNS
                    ),
                    sql.Identifier(schema, "settlements"),
                )
            )
        }
        replayed = {k: _settlement_row(v) for k, v in page.settlements.items()}
        for setl_id in sorted(set(stored_settlements) | set(replayed)):
            if stored_settlements.get(setl_id) != replayed.get(setl_id):
                findings.fail(f"read model 'settlements' differs from a fresh replay for {setl_id}")
                break
        usage_columns = [f.name for f in _usage_fields()]
        stored_usage = {
            (row[0], row[1]): row[2:]
            for row in curs.execute(
                sql.SQL("SELECT psn_no, year, {} FROM {}").format(
                    sql.SQL(", ").join(map(sql.Identifier, usage_columns)), sql.Identifier(schema, "member_usage")
                )
            )
        }
        replayed_usage = {key: tuple(dict(zip(USAGE_COLUMNS, sums, strict=True))[c] for c in usage_columns)
                          for key, sums in page.usage.items()}  # fmt: skip
        for key in sorted(set(stored_usage) | set(replayed_usage)):
            if stored_usage.get(key) != replayed_usage.get(key):
                findings.fail(f"read model 'member_usage' differs from a fresh replay for {key[0]}/{key[1]}")
                break
        stored_transfers = {
            (row[0], row[1], row[3]): tuple(row)
            for row in curs.execute(
                sql.SQL("SELECT {} FROM {}").format(
                    sql.SQL(", ").join(map(sql.Identifier, TRANSFER_COLUMNS)), sql.Identifier(schema, "transfers")
                )
            )
        }
        if stored_transfers != {(row[0], row[1], row[3]): tuple(row) for row in page.transfers.values()}:
            findings.fail("read model 'transfers' differs from a fresh replay of the log")
    findings.checked["settlements"] = len(replayed)


def _normal(journal: list[tuple[Any, ...]]) -> Iterator[tuple[Any, ...]]:
    for row in journal:
        yield (row[0], row[1], str(row[2]), *row[3:])


def _settlement_row(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return (row[0], row[1], row[2], row[3], row[4], str(row[5]), *row[6:])


def _usage_fields() -> list[Any]:
    import attrs

    return [f for f in attrs.fields(YearToDate) if f.name != "basic_deductible_used"]


@lru_cache(maxsize=16)
def _policy(text: str) -> Policy:
    return parse_policy(text.encode())


def _check_limits(app: RegionApplication, page: Page, findings: Findings) -> None:
    """No member-year over a cap: checked with the most generous terms the member had that year."""
    terms: dict[tuple[str, int], set[tuple[str, str]]] = {}
    for row in page.settlements.values():
        terms.setdefault((row[3], row[4]), set()).add((row[7], row[8]))  # insutype, category
    for (psn_no, year), sums in page.usage.items():
        ytd = YearToDate.from_dict(dict(zip(USAGE_COLUMNS, sums, strict=True)))
        book = app.policy_book(year)
        if book is None:
            continue
        policy = _policy(book.current[1])
        for problem in _over_limits(policy, ytd, terms.get((psn_no, year), set())):
            findings.fail(f"member-year {psn_no}/{year}: {problem}")
    findings.checked["member_years"] = len(page.usage)


def _most(values: list[int | None]) -> int | None:
    return None if any(v is None for v in values) else max(v for v in values if v is not None)


def _over_limits(policy: Policy, ytd: YearToDate, terms: set[tuple[str, str]]) -> list[str]:
    problems = []
    schemes = [policy.basic[insutype] for insutype, _ in terms if insutype in policy.basic]
    if schemes:
        cap = _most([s.annual_cap for s in schemes])
        if cap is not None and ytd.basic_paid > cap:
            problems.append(f"basic_paid {ytd.basic_paid} over the annual cap {cap}")
        sub = _most(
            [
                None if s.outpatient_annual_cap is None else s.outpatient_annual_cap + s.chronic_outpatient_bonus
                for s in schemes
            ]
        )
        if sub is not None and ytd.basic_outpatient_paid > sub:
            problems.append(f"basic_outpatient_paid {ytd.basic_outpatient_paid} over the sub-cap {sub}")
    if policy.serious_illness is not None and terms:
        cap = _most([policy.serious_illness.terms_for(category).annual_cap for _, category in terms])
        if cap is not None and ytd.serious_illness_paid > cap:
            problems.append(f"serious_illness_paid {ytd.serious_illness_paid} over the cap {cap}")
    assisted = [policy.assistance[c] for _, c in terms if c in policy.assistance]
    if assisted:
        limit = _most([a.annual_limit for a in assisted])
        if limit is not None and ytd.assistance_paid > limit:
            problems.append(f"assistance_paid {ytd.assistance_paid} over the annual limit {limit}")
    if policy.supplementary is not None and terms:
        cap = _most([policy.supplementary.terms_for(c).annual_cap for _, c in terms])
        if cap is not None and ytd.supplementary_paid > cap:
            problems.append(f"supplementary_paid {ytd.supplementary_paid} over the cap {cap}")
    return problems


__all__ = ["Findings", "verify_region"]


_TRANSFER_ROWS = sql.SQL("SELECT transfer_id, direction, psn_no, from_region, to_region, balance, status FROM {}")
_DUE_TO_REGIONS = sql.SQL("SELECT coalesce(sum(amount), 0) FROM {} WHERE fund = %s AND account = %s")


def verify_transfers(apps: list[RegionApplication]) -> Findings:
    """Check the transfers between regions against each other (after each region's own checks)."""
    findings = Findings("transfers")
    outs: dict[str, tuple[Any, ...]] = {}
    arrivals: dict[str, tuple[Any, ...]] = {}
    due_total = 0
    for app in apps:
        catch_up(app)
        datastore = app.factory.datastore  # type: ignore[attr-defined]
        with datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
            for row in curs.execute(_TRANSFER_ROWS.format(sql.Identifier(datastore.schema, "transfers"))):
                (outs if row[1] == "out" else arrivals)[(row[0], row[3])] = row  # (id, releasing region)
            journal = sql.Identifier(datastore.schema, "journal")
            due = curs.execute(_DUE_TO_REGIONS.format(journal), (INDIVIDUAL_ACCOUNT_FUND, DUE_TO_REGIONS)).fetchone()
            due_total += int(due[0]) if due else 0
    unacknowledged = 0
    for key, (transfer, _, psn_no, source, target, balance, _) in arrivals.items():
        out = outs.get(key)
        if out is None or out[6] not in (RELEASED, COMPLETED):
            findings.fail(f"transfer {transfer} arrived in {target} but is not released by {source}")
        elif (out[2], out[3], out[4], out[5]) != (psn_no, source, target, balance):
            findings.fail(f"transfer {transfer}: the arrival in {target} differs from the transfer out of {source}")
        elif out[6] == RELEASED:
            unacknowledged += balance
    in_flight = 0
    for key, (transfer, _, _, source, target, _, status) in outs.items():
        if status == COMPLETED and key not in arrivals:
            findings.fail(f"transfer {transfer} is completed in {source} but never arrived in {target}")
        in_flight += status == RELEASED and key not in arrivals
    if due_total != unacknowledged:
        findings.fail(
            f"inter-region balances net to {due_total} fen; arrivals not yet acknowledged amount to {unacknowledged}"
        )
    findings.checked["transfers"] = len(outs)
    findings.checked["in flight"] = in_flight
    return findings
