"""`yibao verify`: check the whole store and name what is wrong.

1. Tamper evidence (projections/chain_check.py): every event's hashes are recomputed in log order,
   and each event changed, deleted, inserted or swapped, each seal deleted or added, is named
   with its position; with a signed checkpoint (`--checkpoint`), a log shorter than it or
   different from it too (projections/checkpoint.py).
2. Postings: every money-moving event's postings balance, and in total per fund; no fund's bank
   balance is below zero at the end of any day (unless its policy allows an overdraft).
3. Projections: the read model equals a fresh replay of the log (journal, settlements, usage,
   transfers); each row changed, missing or added is named.
4. Limits: no member-year exceeds a cap or limit of its year's policy.
5. Snapshots: each equals the replay of its aggregate's events up to its version.
6. Transfers, across regions: every arrival matches a released transfer out of its region, every
   completed transfer has its arrival, and the inter-region balances net to what is in flight.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from eventsourcing.persistence import StoredEvent, Tracking
from psycopg import sql
from psycopg.rows import tuple_row

from app.region import RegionApplication
from core import snapshot
from core.errors import YibaoError, first_line
from core.funds import lowest_bank_balance
from core.ledger import BANK, DUE_TO_REGIONS, INDIVIDUAL_ACCOUNT_FUND
from core.money import format_yuan
from core.policy import parse_policy
from core.tiers import YearToDate
from core.transfer import COMPLETED, RELEASED
from projections.caps import check_caps
from projections.chain_check import ChainCheck, Row, digest_seal
from projections.checkpoint import Opened, RegionHead
from projections.read_model import SETTLEMENT_COLUMNS as _SETTLEMENT_COLUMNS
from projections.read_model import (
    TRANSFER_COLUMNS,
    USAGE_COLUMNS,
    Page,
    ReadModelInconsistent,
    RegionReadModel,
    catch_up,
    open_view,
)
from store.chain import micros
from store.recorder import datastore_of

scan_page_rows = 5000
rows_named_max = 10  # rows of one read-model table named; then how many more differ


@dataclass
class Findings:
    region: str
    problems: list[str] = field(default_factory=list)
    checked: dict[str, int] = field(default_factory=dict)
    position: int = 0  # the last position of the log that was checked (recorded by the command)

    def fail(self, text: str) -> None:
        if len(self.problems) < 100:  # a limit on everything: the first hundred say enough
            self.problems.append(text)


def _scan(app: RegionApplication) -> Iterator[Row]:
    """Every stored event in log order with its stored hashes, a page at a time."""
    datastore = datastore_of(app)
    query = sql.SQL(
        "SELECT e.notification_id, e.originator_id, e.originator_version, e.topic, e.state, e.recorded_at, "
        "e.chain_hash, d.digest FROM {} AS e LEFT JOIN {} AS d ON d.notification_id = e.notification_id "
        # the bound on d too: else each page's merge join reads the digests from the first one
        "AND d.notification_id > %(after)s WHERE e.notification_id > %(after)s ORDER BY e.notification_id LIMIT %(n)s"
    ).format(sql.Identifier(datastore.schema, "events"), sql.Identifier(datastore.schema, "event_digests"))
    after = 0
    while True:
        with datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
            rows = curs.execute(query, {"after": after, "n": scan_page_rows}, binary=True).fetchall()
        if not rows:
            return
        for position, originator_id, version, topic, state, recorded_at, stored_hash, digest in rows:
            event = StoredEvent(originator_id, version, topic, bytes(state))
            digest = None if digest is None else bytes(digest)
            yield Row(position, event, micros(recorded_at), bytes(stored_hash), digest)
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


def verify_region(
    app: RegionApplication, checkpoint: RegionHead | None = None, witness: Findings | None = None
) -> Findings:
    """Check one region; with `checkpoint` (a signed head of it), also that its log still holds it,
    told in `witness` (the checkpoint's own findings, so that its verdict covers every region)."""
    findings = Findings(app.region)
    try:
        catch_up(app)
    except ReadModelInconsistent as exc:  # its rows are compared below, row by row
        findings.fail(f"read model: {exc}")
    fresh = RegionReadModel(view=None)  # type: ignore[arg-type]  # replays into memory only
    journal_digest: list[tuple[Any, ...]] = []
    chain = _chain_check(app, {checkpoint.position} if checkpoint else set())
    replay = Findings(app.region)  # told after the tamper evidence, which says what was done
    for row in _scan(app):
        chain.add(row)
        notification_id, stored = row.position, row.event
        findings.position = notification_id
        try:
            event = app.mapper.to_domain_event(stored)
        except Exception as exc:  # a row that no longer decodes is itself a finding
            replay.fail(f"event at position {notification_id} does not decode: {exc}")
            continue
        try:
            fresh.handle(event, Tracking(app.name, notification_id))
        except YibaoError as exc:
            replay.fail(f"event at position {notification_id}: {exc}")
        except Exception as exc:  # not named: an event changed outside yibao that no longer replays
            replay.fail(f"event at position {notification_id} does not replay: {first_line(exc)}")
        if len(fresh.page.journal) > 50_000:
            journal_digest.extend(fresh.page.journal)
            fresh.page.journal = []
    journal_digest.extend(fresh.page.journal)
    for _, text in chain.finish():
        findings.fail(text)
    for text in replay.problems:
        findings.fail(text)
    findings.checked["events"] = chain.events
    findings.checked["seals"] = len(chain.seals)
    if checkpoint is not None:
        _check_checkpoint(checkpoint, chain, witness or findings)
    _check_position(app, chain.head, findings)
    _check_totals(journal_digest, findings)
    _check_bank_balances(app, journal_digest, findings)
    _check_projection(app, fresh.page, journal_digest, findings, log_intact=not findings.problems)
    problems, settlements = check_caps(app)
    for problem in problems:
        findings.fail(problem)
    findings.checked["settlements_against_caps"] = settlements
    findings.checked["member_years"] = len(fresh.page.usage)
    _check_snapshots(app, findings)
    return findings


def _chain_check(app: RegionApplication, watch: set[int]) -> ChainCheck:
    """The chain check of a region, given its seals, migration 0015's seal and its orphaned digests."""
    datastore = datastore_of(app)
    events, seals, digests, digests_seal = (
        sql.Identifier(datastore.schema, t) for t in ("events", "seals", "event_digests", "event_digests_seal")
    )
    with datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
        sealed = {
            position: (bytes(hash_), sealed_at)
            for position, hash_, sealed_at in curs.execute(
                sql.SQL("SELECT notification_id, chain_hash, sealed_at FROM {}").format(seals)
            )
        }
        seal = digest_seal(curs.execute(
            sql.SQL("SELECT through_position, events, digest FROM {} ORDER BY sealed_at").format(digests_seal)
        ).fetchall())  # fmt: skip
        orphans = [
            (position, bytes(digest))
            for position, digest in curs.execute(
                sql.SQL(
                    "SELECT d.notification_id, d.digest FROM {} AS d WHERE NOT EXISTS "
                    "(SELECT FROM {} AS e WHERE e.notification_id = d.notification_id) ORDER BY 1"
                ).format(digests, events)
            )
        ]
        if seal is not None:
            through = seal.through
        else:
            row = curs.execute(sql.SQL("SELECT coalesce(max(notification_id), 0) FROM {}").format(digests)).fetchone()
            through = row[0] if row is not None else 0
    return ChainCheck(seals=sealed, digest_seal=seal, through=through, orphans=orphans, watch=watch)


def check_checkpoint(opened: Opened, regions: list[str], only: str | None) -> tuple[Findings, dict[str, RegionHead]]:
    """The checkpoint's own findings (its signature, regions gone) and its head of each region to check."""
    findings = Findings(f"checkpoint taken {opened.taken_at}", list(opened.problems), {"regions": len(opened.heads)})
    heads = {h.region: h for h in opened.heads if only in (None, h.region)}
    for code in sorted(heads.keys() - set(regions)):
        findings.fail(f"region {code} is in the checkpoint but not in the store: it was deleted")
    return findings, heads


def _check_checkpoint(expected: RegionHead, chain: ChainCheck, findings: Findings) -> None:
    """The log still holds the event the checkpoint saw last, with the same chain hash."""
    p, region = expected.position, f"region {expected.region}: "
    if p and chain.head < p:
        findings.fail(f"{region}log ends at position {chain.head}, before the checkpoint's position {p}: events "
                      f"after position {chain.head} were deleted (with their seals)")  # fmt: skip
    elif p and p not in chain.hash_at:
        findings.fail(f"{region}event at the checkpoint's position {p} is missing: it was deleted")
    elif p and chain.hash_at[p] != expected.chain_hash:
        findings.fail(f"{region}chain hash at position {p} differs from the checkpoint's: the log up to it was "
                      "rewritten")  # fmt: skip
    seal = chain.digest_seal
    if seal is not None and (seal.through, seal.events, seal.digest) != (
        expected.digests_through,
        expected.digests,
        expected.digests_digest,
    ):
        findings.fail(f"{region}seal of the digests of events before migration 0015 differs from the checkpoint's")


def _check_position(app: RegionApplication, head: int, findings: Findings) -> None:
    """A read model that has followed the log further than its last event saw events now gone."""
    position = open_view(app).max_tracking_id(app.name) or 0
    if position > head:
        findings.fail(f"read model has followed the log to position {position}, but the log ends at position "
                      f"{head}: events after position {head} were deleted")  # fmt: skip


def _check_snapshots(app: RegionApplication, findings: Findings) -> None:
    """Every snapshot equals the replay of its aggregate's events up to its version."""
    datastore = datastore_of(app)
    query = sql.SQL(
        "SELECT originator_id, originator_version, topic, state FROM {} ORDER BY originator_id, originator_version"
    ).format(sql.Identifier(datastore.schema, "snapshots"))
    with datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
        rows = curs.execute(query, binary=True).fetchall()
    for originator_id, version, topic, state in rows:
        where = f"snapshot of aggregate {originator_id} at version {version}"
        try:
            restored: Any = app.mapper.to_domain_event(StoredEvent(originator_id, version, topic, bytes(state)))
            restored = restored.mutate(None)
        except Exception as exc:  # a snapshot that no longer decodes is itself a finding
            findings.fail(f"{where} does not decode: {exc}")
            continue
        replayed = None
        for stored in app.recorder.select_events(originator_id, lte=version):
            event: Any = app.mapper.to_domain_event(stored)
            replayed = event.mutate(replayed)
        if replayed is None or snapshot.state_of(replayed) != snapshot.state_of(restored):
            findings.fail(f"{where} differs from its events")
    findings.checked["snapshots"] = len(rows)


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
    # Before a year's policy is loaded, the latest earlier year's controls hold (as for payments).
    book = next((b for b in map(app.policy_book, range(year, year - 10, -1)) if b is not None), None)
    return book is not None and fund in parse_policy(book.current[1].encode()).controls.overdraft_allowed


_JOURNAL_COLUMNS = ("notification_id", "leg", "posted_on", "kind", "ref", "fund", "account", "party", "amount")


def _check_projection(
    app: RegionApplication, page: Page, journal: list[tuple[Any, ...]], findings: Findings, *, log_intact: bool
) -> None:
    """Each read-model table against a fresh replay of the log: every row changed, missing or added
    (by hand when the log is intact; else the replay of a changed log may be what differs)."""
    name_rows = partial(_name_rows, findings, log_intact)
    datastore = datastore_of(app)
    schema = datastore.schema
    with datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
        stored_journal = curs.execute(
            sql.SQL(
                "SELECT notification_id, leg, posted_on::text, kind, ref, fund, account, party, amount FROM {}"
            ).format(sql.Identifier(schema, "journal"))
        ).fetchall()
        if _digest(iter(stored_journal)) != _digest(iter(_normal(journal))):  # rows compared only when they differ
            name_rows("journal", _JOURNAL_COLUMNS, {(r[0], r[1]): tuple(r) for r in stored_journal},
                       {(r[0], r[1]): r for r in _normal(journal)})  # fmt: skip
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
        name_rows("settlements", _SETTLEMENT_COLUMNS, stored_settlements, replayed)
        usage_columns = ("psn_no", "year", *(f.name for f in _usage_fields()))
        stored_usage = {
            (row[0], row[1]): tuple(row)
            for row in curs.execute(
                sql.SQL("SELECT {} FROM {}").format(
                    sql.SQL(", ").join(map(sql.Identifier, usage_columns)), sql.Identifier(schema, "member_usage")
                )
            )
        }
        replayed_usage = {key: (*key, *(dict(zip(USAGE_COLUMNS, sums, strict=True))[c] for c in usage_columns[2:]))
                          for key, sums in page.usage.items()}  # fmt: skip
        name_rows("member_usage", usage_columns, stored_usage, replayed_usage)
        stored_transfers = {
            (row[0], row[1], row[3]): tuple(row)
            for row in curs.execute(
                sql.SQL("SELECT {} FROM {}").format(
                    sql.SQL(", ").join(map(sql.Identifier, TRANSFER_COLUMNS)), sql.Identifier(schema, "transfers")
                )
            )
        }
        replayed_transfers = {(row[0], row[1], row[3]): tuple(row) for row in page.transfers.values()}
        name_rows("transfers", TRANSFER_COLUMNS, stored_transfers, replayed_transfers)
    findings.checked["settlements"] = len(replayed)


def _name_rows(
    findings: Findings, log_intact: bool, table: str, columns: tuple[str, ...], stored: dict[Any, tuple[Any, ...]],
    replayed: dict[Any, tuple[Any, ...]],
) -> None:  # fmt: skip
    """Name each row of `table` that differs from the replay: changed (which columns), missing or added."""
    differing = sorted(k for k in stored.keys() | replayed.keys() if stored.get(k) != replayed.get(k))
    for key in differing[:rows_named_max]:
        row, fresh = stored.get(key), replayed.get(key)
        where = f"read model '{table}': row {_row_name(table, key)}"
        if row is None:
            findings.fail(f"{where} is missing{' (deleted)' if log_intact else ''}: a fresh replay of the log has it")
        elif fresh is None:
            how = "added by hand" if log_intact else "added by hand, or its event deleted"
            findings.fail(f"{where} is not in a fresh replay of the log ({how})")
        else:
            changes = ", ".join(
                f"{c} {a!s} where a fresh replay gives {b!s}" for c, a, b in zip(columns, row, fresh, strict=True)
                if a != b
            )  # fmt: skip
            findings.fail(f"{where} {'was changed' if log_intact else 'differs from a fresh replay'}: {changes}")
    if len(differing) > rows_named_max:
        findings.fail(f"read model '{table}': {len(differing) - rows_named_max} more rows differ from a fresh replay")


def _row_name(table: str, key: Any) -> str:
    if table == "journal":
        return f"(position {key[0]}, leg {key[1]})"
    if table == "member_usage":
        return f"{key[0]}/{key[1]}"
    if table == "transfers":
        return f"{key[0]} {key[1]} (from {key[2]})"
    return str(key)


def _normal(journal: list[tuple[Any, ...]]) -> Iterator[tuple[Any, ...]]:
    for row in journal:
        yield (row[0], row[1], str(row[2]), *row[3:])


def _settlement_row(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return (row[0], row[1], row[2], row[3], row[4], str(row[5]), *row[6:])


def _usage_fields() -> list[Any]:
    import attrs

    return [f for f in attrs.fields(YearToDate) if f.name not in ("basic_deductible_used", "maternity_paid")]


__all__ = ["Findings", "check_checkpoint", "verify_region", "verify_transfers"]


_TRANSFER_ROWS = sql.SQL("SELECT transfer_id, direction, psn_no, from_region, to_region, balance, status FROM {}")
# A transfer's entries only: 异地就医's are checked by projections.region_dues.
_DUE_TO_REGIONS = sql.SQL(
    "SELECT coalesce(sum(amount), 0) FROM {} WHERE fund = %s AND account = %s "
    "AND kind IN ('transfer_in', 'transfer_completed')"
)


def verify_transfers(apps: list[RegionApplication]) -> Findings:
    """Check the transfers between regions against each other (after each region's own checks)."""
    findings = Findings("transfers")
    outs: dict[tuple[str, str], tuple[Any, ...]] = {}  # (transfer id, releasing region)
    arrivals: dict[tuple[str, str], tuple[Any, ...]] = {}
    due_total = 0
    for app in apps:
        catch_up(app)
        datastore = datastore_of(app)
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
