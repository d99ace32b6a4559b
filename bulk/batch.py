"""Streaming a file of records through the regions, a bounded batch at a time.

Lines are read one at a time, parsed into typed records (bad lines get a named rejection with
their line number), grouped into batches of at most `batch_records_max`, routed to the member's
insured region at the record's date, and settled region by region in one transaction each.
Results come back in input order (but a member file's lines that name a `family_of`: those come
last, bound once the whole file is recorded). Memory stays bounded by the batch size, whatever
the file.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Protocol, TypeVar

import msgspec

from app import stages
from app.outcomes import Outcome
from app.region import RegionApplication
from bulk.kept import keep_recent
from bulk.save_behind import SaveInFlight, SettlingBehind
from core.claim_line import claim_of_line
from core.member import FamilyStatement
from core.records import (
    Claim,
    Contribution,
    Echoed,
    MemberRecord,
    RecordRejected,
    claim_ids,
    decode_line,
    insured_elsewhere,
    parse_contribution,
    parse_member,
)
from core.results import pending_result, rejected_result, settlement_result

batch_records_max = 500
R = TypeVar("R")
T = TypeVar("T")


class RegionDirectory(Protocol):
    def region_codes(self) -> list[str]: ...
    def region(self, code: str) -> RegionApplication: ...


def _region(directory: RegionDirectory, code: str) -> RegionApplication:
    """The region's application, keeping the aggregates it used between batches (`bulk.kept`)."""
    return keep_recent(directory.region(code))


class LineResult:
    """The answer for one input line. The output object is built only when asked for: a bulk
    run that only counts statuses does not format every amount."""

    __slots__ = ("_output", "_render", "line_no", "outcome", "rejected")

    def __init__(
        self,
        line_no: int,
        output: dict[str, Any] | Callable[[], dict[str, Any]],
        rejected: bool,
        outcome: Outcome | None = None,
    ) -> None:
        self.line_no = line_no
        self.rejected = rejected
        self.outcome = outcome
        self._output = output if isinstance(output, dict) else None
        self._render = None if isinstance(output, dict) else output

    @property
    def status(self) -> str:
        return str(self.outcome.status) if self.outcome is not None else str(self.output["status"])

    @property
    def output(self) -> dict[str, Any]:
        if self._output is None:
            assert self._render is not None
            self._output = self._render()
        return self._output


def batched(lines: Iterable[T], size: int) -> Iterator[list[T]]:
    batch: list[T] = []
    for item in lines:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def route(directory: RegionDirectory, keys: Sequence[tuple[str, dt.date]]) -> list[str | None]:
    """The region each (psn_no, date) is insured in; for a member with no record on that date,
    a region that knows them (it names the date); None for an unknown member."""
    codes = directory.region_codes()
    if len(codes) == 1:  # one region: it answers for every member (and rejects unknown ones)
        return [codes[0]] * len(keys)
    routed: list[str | None] = [None] * len(keys)
    seen_elsewhere: list[str | None] = [None] * len(keys)
    for code in codes:
        records = _region(directory, code).members_at([k[0] for k in keys], [k[1] for k in keys])
        for i, record in enumerate(records):
            if record is None:
                continue
            if record.insuplc_admdvs == code:
                routed[i] = code
            elif routed[i] is None:
                seen_elsewhere[i] = code
    # A member known only to a region that says they are insured elsewhere: let that region
    # answer (it rejects the claim as member_transferred_out).
    routed = [r if r is not None else s for r, s in zip(routed, seen_elsewhere, strict=True)]
    unrouted = list(dict.fromkeys(key[0] for key, r in zip(keys, routed, strict=True) if r is None))
    if unrouted:  # no record on the date anywhere: a region that knows the member names the date
        known = {}
        for code in reversed(codes):
            histories = _region(directory, code).member_histories(unrouted)
            known.update({p: code for p, history in zip(unrouted, histories, strict=True) if history})
        routed = [r if r is not None else known.get(key[0]) for key, r in zip(keys, routed, strict=True)]
    return routed


def settle_lines(
    directory: RegionDirectory,
    lines: Iterable[tuple[int, bytes]],
    *,
    operator: str | None = None,
    reason: str | None = None,
    batch_size: int = batch_records_max,
    source: str | None = None,
    after_batch: Callable[[], None] | None = None,
    on_date: dt.date | None = None,
) -> Iterator[LineResult]:
    """Settle (or, with operator and reason, correct) every claim line, in input order.
    `on_date` is a correction's business date (its reversal's and new version's; default today).
    `source` (the sha256 of a claims file) is recorded with each settlement or correction with
    its line (running the file again answers each line as its first run did);
    `after_batch` runs after each batch is saved (the CLI's memory housekeeping).

    Settling in batches (`batch_size` > 1) keeps one batch's save in flight: batch N+1 is
    parsed, routed and computed while PostgreSQL commits batch N, and N's results are given
    only once its commit has returned (a result line always names a committed settlement)."""
    behind: dict[str, SettlingBehind] | None = {} if operator is None and batch_size > 1 else None
    try:
        yield from _settle_batches(
            directory, lines, operator, reason, batch_size, source, after_batch, behind, on_date=on_date
        )
    finally:
        for settling in (behind or {}).values():
            settling.close()


def _settle_batches(
    directory: RegionDirectory,
    lines: Iterable[tuple[int, bytes]],
    operator: str | None,
    reason: str | None,
    batch_size: int,
    source: str | None,
    after_batch: Callable[[], None] | None,
    behind: dict[str, SettlingBehind] | None,
    on_date: dt.date | None = None,
) -> Iterator[LineResult]:
    in_flight_batch = None
    for batch in batched(lines, batch_size):
        with stages.stage("parse"):
            results, claims = _parsed_claims(batch)
        regions = route(directory, [(c.psn_no, c.setl_time) for _, c in claims])
        by_region: dict[str, list[tuple[int, Claim]]] = {}
        for (line_no, claim), region in zip(claims, regions, strict=True):
            if region is None:
                results[line_no] = LineResult(
                    line_no, rejected_result(claim.setl_id, claim.psn_no, "unknown_member"), True
                )
            else:
                by_region.setdefault(region, []).append((line_no, claim))
        settling = []
        for region, items in by_region.items():
            app = _region(directory, region)
            batch_claims = [c for _, c in items]
            origins = [f"{source}:{line_no}" for line_no, _ in items] if source else None
            if operator is not None:
                outcomes = app.correct_claims(
                    batch_claims, operator=operator, reason=reason or "", origins=origins, on_date=on_date
                )
                settling.append((items, SaveInFlight.done(outcomes)))
                continue
            if behind is not None:
                settler = behind.get(region) or behind.setdefault(region, SettlingBehind(app))
                settling.append((items, settler.settle(batch_claims, origins=origins)))
            else:
                settling.append((items, SaveInFlight.done(app.settle_claims(batch_claims, origins=origins))))
        if in_flight_batch is not None:
            yield from _committed(*in_flight_batch, after_batch)
            in_flight_batch = None
        if behind is not None:
            in_flight_batch = (batch, results, settling)
        else:
            yield from _committed(batch, results, settling, after_batch)
    if in_flight_batch is not None:
        yield from _committed(*in_flight_batch, after_batch)


def _parsed_claims(batch: list[tuple[int, bytes]]) -> tuple[dict[int, LineResult], list[tuple[int, Claim]]]:
    """The claims of a batch's lines, and the rejections of the lines that are not claims."""
    results: dict[int, LineResult] = {}
    claims: list[tuple[int, Claim]] = []
    for line_no, raw in batch:
        try:
            claims.append((line_no, claim_of_line(raw)))
        except RecordRejected as exc:
            results[line_no] = LineResult(line_no, rejected_result(*_echoed_ids(raw), exc.reason, str(exc)), True)
    return results, claims


def _echoed_ids(raw: bytes) -> tuple[Echoed, Echoed]:
    """A rejected line's setl_id and psn_no as given, when it is a JSON object at all."""
    try:
        return claim_ids(decode_line(raw))
    except RecordRejected:
        return None, None


def _committed(
    batch: list[tuple[int, bytes]],
    results: dict[int, LineResult],
    settling: list[tuple[list[tuple[int, Claim]], SaveInFlight]],
    after_batch: Callable[[], None] | None,
) -> Iterator[LineResult]:
    """A batch's results in input order, once each region's save of it has committed."""
    for items, in_flight in settling:
        for (line_no, claim), outcome in zip(items, in_flight.outcomes(), strict=True):
            results[line_no] = _claim_line(line_no, claim, outcome)
    if after_batch is not None:
        after_batch()
    for line_no, _ in batch:
        yield results[line_no]


def _claim_line(line_no: int, claim: Claim, outcome: Outcome) -> LineResult:
    if outcome.status == "rejected":
        return LineResult(
            line_no,
            rejected_result(claim.setl_id, claim.psn_no, outcome.reason or "rejected", outcome.detail),
            True,
            outcome,
        )
    if outcome.status == "pending_approval":
        return LineResult(line_no, pending_result(claim.psn_no, outcome.extra["request"]), False, outcome)
    facts = outcome.facts
    assert facts is not None
    return LineResult(line_no, lambda: settlement_result(facts, outcome.status), False, outcome)


def _import_lines(
    directory: RegionDirectory,
    lines: Iterable[tuple[int, bytes]],
    parse: Callable[[dict[str, Any]], R],
    route_records: Callable[[list[R]], Sequence[str | RecordRejected | None]],
    apply: Callable[[RegionApplication, list[R]], list[Outcome]],
    describe: Callable[[R], dict[str, Any]],
    batch_size: int,
    hold: Callable[[R, LineResult], bool] = lambda record, result: False,
) -> Iterator[LineResult]:
    """Each line's result in input order, except those `hold` takes (the caller answers them later)."""
    known = set(directory.region_codes())
    for batch in batched(lines, batch_size):
        results: dict[int, LineResult] = {}
        by_region: dict[str, list[tuple[int, R]]] = {}
        parsed: list[tuple[int, R]] = []
        for line_no, raw in batch:
            try:
                parsed.append((line_no, parse(decode_line(raw))))
            except RecordRejected as exc:
                results[line_no] = LineResult(
                    line_no, {"status": "rejected", "reason": exc.reason, "detail": str(exc)}, True
                )
        for (line_no, record), region in zip(parsed, route_records([r for _, r in parsed]), strict=True):
            if isinstance(region, RecordRejected):
                results[line_no] = LineResult(
                    line_no,
                    {**describe(record), "status": "rejected", "reason": region.reason, "detail": str(region)},
                    True,
                )
                continue
            if region is None or region not in known:
                results[line_no] = LineResult(
                    line_no,
                    {
                        **describe(record),
                        "status": "rejected",
                        "reason": "unknown_region" if region else "unknown_member",
                    },
                    True,
                )
                continue
            by_region.setdefault(region, []).append((line_no, record))
        for region, items in by_region.items():
            outcomes = apply(_region(directory, region), [r for _, r in items])
            for (line_no, record), outcome in zip(items, outcomes, strict=True):
                output = {**describe(record), "status": outcome.status, **outcome.extra}
                if outcome.reason:
                    output["reason"] = outcome.reason
                if outcome.detail:
                    output["detail"] = outcome.detail
                result = LineResult(line_no, output, outcome.status == "rejected", outcome)
                if not hold(record, result):
                    results[line_no] = result
        for line_no, _ in batch:
            if line_no in results:
                yield results[line_no]


def insured_regions(directory: RegionDirectory, records: Sequence[MemberRecord]) -> list[str | RecordRejected]:
    """The region of each member record, or its refusal: a member file never moves a member to
    another region (SPEC 5: only relationship transfers cross regions, and the account balance
    goes with them). A record of region R from date d holds until R's next record of the member;
    it is refused when R's own record in force on d says the member was transferred out, or when
    another region insures the member on any day of that span (by its records, or by records
    accepted earlier in the batch)."""
    codes = directory.region_codes()
    if len(codes) < 2:  # one region: nowhere else to be insured
        return [r.insuplc_admdvs for r in records]
    psn_nos = list(dict.fromkeys(r.psn_no for r in records))
    histories: dict[tuple[str, str], list[MemberRecord]] = {}  # (region, psn_no) -> its records
    for code in codes:
        for psn_no, history in zip(psn_nos, _region(directory, code).member_histories(psn_nos), strict=True):
            histories[(code, psn_no)] = history
    out: list[str | RecordRejected] = []
    for record in records:
        region, since = record.insuplc_admdvs, record.valid_from
        if region not in codes:
            out.append(region)  # unknown_region, named by the caller
            continue
        own = histories[(region, record.psn_no)]
        until = min((r.valid_from for r in own if r.valid_from > since), default=None)
        in_force = [r for r in own if r.valid_from <= since]
        clash: tuple[str, dt.date] | None = None
        if in_force and in_force[-1].insuplc_admdvs != region:  # transferred out of its own region
            clash = (in_force[-1].insuplc_admdvs, since)  # (the import checks it again in its transaction)
        for code in codes:
            if clash is not None or code == region:
                continue
            for start, end in _insured_spans(histories[(code, record.psn_no)], code):
                if (until is None or start < until) and (end is None or since < end):
                    clash = (code, max(start, since))
                    break
        if clash is not None:
            out.append(insured_elsewhere(record.psn_no, *clash))
            continue
        own[:] = sorted([r for r in own if r.valid_from != since] + [record], key=lambda r: r.valid_from)
        out.append(region)
    return out


def _insured_spans(history: list[MemberRecord], region: str) -> Iterator[tuple[dt.date, dt.date | None]]:
    """[start, end) of each record of `history` that insures the member in `region` (end None: still)."""
    for i, record in enumerate(history):
        if record.insuplc_admdvs == region:
            yield record.valid_from, history[i + 1].valid_from if i + 1 < len(history) else None


def import_members(
    directory: RegionDirectory, lines: Iterable[tuple[int, bytes]], *, batch_size: int = batch_records_max
) -> Iterator[LineResult]:
    """Record every line, then bind the `family_of` of the lines that name one (SPEC 3.1: the
    employee may come anywhere in the file). Those lines are answered last, in input order,
    each with its `binding` (`app.region.RegionApplication.bind_from_member_file`)."""
    with _HeldLines() as held:
        yield from _import_lines(
            directory,
            lines,
            parse_member,
            lambda records: insured_regions(directory, records),
            lambda app, records: app.import_members(records, bind=False),
            lambda r: {"psn_no": r.psn_no, "valid_from": r.valid_from.isoformat()},
            batch_size,
            held.take,
        )
        yield from _bind_held(directory, held, batch_size)


class _Held(msgspec.Struct, array_like=True):
    """A member-file line whose `family_of` waits for the end of the file, with its output so far."""

    line_no: int
    region: str
    psn_no: str
    valid_from: dt.date
    family_of: str
    recorded: bool  # the line recorded its record (False: it was there already)
    output: dict[str, Any]


_HELD_ENCODER = msgspec.json.Encoder()
_HELD_DECODER = msgspec.json.Decoder(_Held)


class _HeldLines:
    """The member-file lines with a `family_of`, recorded (or found recorded) and waiting for the
    end of the file to be bound. Spooled to a temporary file past `held_bytes_max`: a file of a
    million dependents is not held in memory."""

    held_bytes_max = 8 << 20

    def __init__(self) -> None:
        self._file = tempfile.SpooledTemporaryFile(max_size=self.held_bytes_max, mode="w+b")  # noqa: SIM115

    def __enter__(self) -> _HeldLines:
        return self

    def __exit__(self, *_: object) -> None:
        self._file.close()

    def take(self, record: MemberRecord, result: LineResult) -> bool:
        if record.family_of is None or result.status not in ("recorded", "unchanged"):
            return False
        held = _Held(result.line_no, record.insuplc_admdvs, record.psn_no, record.valid_from, record.family_of,
                     result.status == "recorded", result.output)  # fmt: skip
        self._file.write(_HELD_ENCODER.encode(held) + b"\n")
        return True

    def lines(self) -> Iterator[_Held]:
        self._file.seek(0)
        for raw in self._file:
            yield _HELD_DECODER.decode(raw)


def _bind_held(directory: RegionDirectory, held: _HeldLines, batch_size: int) -> Iterator[LineResult]:
    for chunk in batched(held.lines(), batch_size):
        by_region: dict[str, list[_Held]] = {}
        for line in chunk:
            by_region.setdefault(line.region, []).append(line)
        for region, lines in by_region.items():
            statements = [FamilyStatement(h.psn_no, h.valid_from, h.family_of, h.recorded) for h in lines]
            for line, binding in zip(lines, _region(directory, region).bind_from_member_file(statements), strict=True):
                if binding is not None:
                    line.output["binding"] = binding
        for line in chunk:
            yield LineResult(line.line_no, line.output, False)


def import_contributions(
    directory: RegionDirectory, lines: Iterable[tuple[int, bytes]], *, batch_size: int = batch_records_max
) -> Iterator[LineResult]:
    def by_payment_date(contributions: list[Contribution]) -> list[str | None]:
        return route(directory, [(c.psn_no, c.paid_date) for c in contributions])

    return _import_lines(
        directory,
        lines,
        parse_contribution,
        by_payment_date,
        lambda app, records: app.import_contributions(records),
        lambda c: {"contrib_id": c.contrib_id, "psn_no": c.psn_no},
        batch_size,
    )


__all__ = ["LineResult", "RegionDirectory", "import_contributions", "import_members", "route", "settle_lines"]
