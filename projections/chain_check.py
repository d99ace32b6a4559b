"""The tamper evidence of one region's log: which rows of `events` and `seals` were changed, and how.

`ChainCheck` takes the stored events in position order (one pass, no query per event) and names
what a database superuser with the triggers off did (the hashes are those of store/chain.py):
- an event changed (any stored column): its own digest no longer matches;
- an event deleted: the next event is intact but does not chain from the one now before it;
- an event inserted: the event after it chains from the one before it, or it has no digest where
  migration 0015 sealed one for every older event;
- two events swapped (their positions exchanged): each one's digest matches the other's position;
- a seal deleted (in the middle, or the last one) or added: the event's digest matches only with
  its `sealed` bit the other way; a seal naming an event that is gone, or another hash;
- events with no seal after the last one (appended by hand);
- the digests migration 0015 sealed for older events changed, deleted or added.
A deleted tail together with its seals leaves a shorter log that is whole: only a signed
checkpoint kept outside the database tells (projections/checkpoint.py).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from eventsourcing.persistence import StoredEvent

from store.chain import GENESIS_HASH, content, legacy_chain_hash, legacy_digest, link_digest, own_digest

suspects_max = 200  # rows kept for the pairing of swapped or moved events; the first ones say enough
digest_block_bits = 16  # the blocks of migration 0015's seal: 65,536 positions each


class Row(NamedTuple):
    """One stored event: its position, columns, time of recording (µs), stored chain hash, and the
    digest migration 0015 sealed of it (events written before it) or None."""

    position: int
    event: StoredEvent
    recorded_us: int
    stored: bytes
    digest: bytes | None


@dataclass(frozen=True)
class DigestSeal:
    """The one row of `event_digests_seal`: the last position it covers, its count and digest."""

    through: int
    events: int
    digest: bytes


@dataclass(slots=True)
class _Seen:
    row: Row
    body: bytes  # its `content`, hashed by every check
    legacy: bool
    own_ok: bool  # its own columns match (with the sealed bit the seals table gives)
    link_ok: bool  # it chains from the stored hash of the row before it
    seal_flipped: bool  # its own columns match only with the sealed bit the other way
    before_hash: bytes  # the stored hash of the row before it
    before_position: int


class _DigestSum:
    """The digest of migration 0015's seal, recomputed from the stored digests in position order."""

    def __init__(self) -> None:
        self.outer = hashlib.sha256()
        self.block: Any = None
        self.block_no = -1
        self.count = 0

    def add(self, position: int, digest: bytes) -> None:
        block_no = position >> digest_block_bits
        if block_no != self.block_no:
            self._close()
            self.block, self.block_no = hashlib.sha256(), block_no
        self.block.update(digest)
        self.count += 1

    def _close(self) -> None:
        if self.block is not None:
            self.outer.update(self.block.digest())
            self.block = None

    def digest(self) -> bytes:
        self._close()
        return self.outer.digest()


@dataclass
class ChainCheck:
    """Feed every row in position order (`add`), then `finish` for the findings, (position, text)."""

    seals: dict[int, tuple[bytes, dt.datetime]]
    digest_seal: DigestSeal | None
    through: int  # the last position written before migration 0015 (its rows carry the old hash)
    orphans: list[tuple[int, bytes]]  # digests of 0015 whose event is gone, in position order
    watch: set[int] = field(default_factory=set)  # positions whose stored hash the caller wants
    found: list[tuple[int, str]] = field(default_factory=list)
    hash_at: dict[int, bytes] = field(default_factory=dict)
    head: int = 0
    head_hash: bytes = GENESIS_HASH
    events: int = 0
    _pending: _Seen | None = None
    _suspects: list[_Seen] = field(default_factory=list)
    _sealed_seen: dict[int, bytes] = field(default_factory=dict)
    _digests: _DigestSum = field(default_factory=_DigestSum)
    _orphan_index: int = 0
    _flagged_at: int = -1  # the last row named changed or inserted: the broken link after it follows from it

    def add(self, row: Row) -> None:
        p = row.position
        self.events += 1
        if row.digest is not None or self.orphans:
            self._feed_digests(p, row.digest)
        sealed = p in self.seals
        if sealed:
            self._sealed_seen[p] = row.stored
        if p in self.watch:
            self.hash_at[p] = row.stored
        legacy = p <= self.through
        body = content(row.event)
        own_ok = self._own(row, body, legacy, sealed)
        flipped = not own_ok and self._own(row, body, legacy, not sealed)
        links = self._links(self.head_hash, row, body, legacy)
        seen = _Seen(row, body, legacy, own_ok, links, flipped, self.head_hash, self.head)
        if self._pending is not None:
            self._judge(self._pending, seen)
        self._pending = seen
        self.head, self.head_hash = p, row.stored

    def finish(self) -> list[tuple[int, str]]:
        if self._pending is not None:
            self._judge(self._pending, None)
            self._pending = None
        self._feed_digests(None, None)
        self._pair_suspects()
        self._check_seals()
        self._check_digest_seal()
        return sorted(self.found, key=lambda f: f[0])

    # --- one row -------------------------------------------------------------------------------

    @staticmethod
    def _own(row: Row, body: bytes, legacy: bool, sealed: bool) -> bool:
        if legacy:
            return row.digest == legacy_digest(body, row.position, row.recorded_us, sealed, row.stored)
        return own_digest(body, row.position, row.recorded_us, sealed) == row.stored[16:]

    @staticmethod
    def _links(previous: bytes, row: Row, body: bytes, legacy: bool) -> bool:
        if legacy:
            return legacy_chain_hash(previous, body) == row.stored
        return link_digest(previous, row.stored[16:]) == row.stored[:16]

    def _judge(self, seen: _Seen, after: _Seen | None) -> None:
        """Name what happened to a row, knowing the row after it (None at the end of the log)."""
        p = seen.row.position
        if self._inserted(seen, after):
            assert after is not None
            self._flagged_at = p
            self._fail(p, f"event at position {p} ({_what(seen.row)}) was inserted: the event after it "
                          f"(position {after.row.position}) chains from the one before it")  # fmt: skip
            return
        if seen.seal_flipped:
            self._seal_mismatch(p)
        elif seen.legacy and seen.row.digest is None and seen.link_ok:
            self._fail(p, f"digest of the event at position {p} sealed by migration 0015 was deleted (the event "
                          "still chains)")  # fmt: skip
        elif not seen.own_ok:
            self._flagged_at = p
            if after is None and p > max(self.seals, default=0):
                self._fail(p, f"event at position {p} ({_what(seen.row)}) was inserted after the last seal: "
                              "its hash is not one the recorder wrote")  # fmt: skip
            elif len(self._suspects) < suspects_max:
                self._suspects.append(seen)  # changed, or swapped/moved: told once all are known
            else:
                self._changed(seen)
            return
        if not seen.link_ok and not self._follows_flagged(seen):
            self._broken_link(seen)

    def _inserted(self, seen: _Seen, after: _Seen | None) -> bool:
        """The row after this one is intact and chains from the row before it, and this one does not
        belong after it either (two neighbours swapped look alike, but each belongs at the other's
        position; and after a row already named, the chain there says nothing)."""
        if after is None or after.link_ok or not (after.own_ok or after.seal_flipped):
            return False
        if seen.before_position == self._flagged_at:
            return False
        if not self._links(seen.before_hash, after.row, after.body, after.legacy):
            return False
        return seen.own_ok or not self._belongs(seen, after)

    def _follows_flagged(self, seen: _Seen) -> bool:
        """The row before this one was already named (its hash or place changed): not a second finding."""
        return seen.before_position == self._flagged_at

    def _broken_link(self, seen: _Seen) -> None:
        p, before = seen.row.position, seen.before_position
        if p - before > 1:
            where = f"position {before + 1}" if p - before == 2 else f"positions {before + 1} to {p - 1}"
            self._fail(p, f"event(s) deleted between positions {before} and {p} ({where} missing): the event at "
                          f"position {p} is intact but does not chain from the one before it")  # fmt: skip
        else:
            self._fail(p, f"event at position {before} was replaced: the event at position {p} does not chain "
                          "from it (its hash was recomputed)")  # fmt: skip

    def _seal_mismatch(self, p: int) -> None:
        if p in self.seals:
            self._fail(p, f"seal of position {p} was added: the event there does not end its transaction")
        else:
            last = " (the last seal)" if p > max(self.seals, default=0) else ""
            self._fail(p, f"seal of position {p} was deleted{last}: the event there ended its transaction")

    def _changed(self, seen: _Seen) -> None:
        p = seen.row.position
        if seen.legacy and seen.row.digest is None:
            self._fail(p, f"event at position {p} ({_what(seen.row)}) was inserted: migration 0015 sealed a digest "
                          "of every event before it, and none of this one")  # fmt: skip
        else:
            self._fail(p, f"event at position {p} ({_what(seen.row)}) was changed: its stored columns no longer "
                          "match its hash")  # fmt: skip

    # --- after the last row --------------------------------------------------------------------

    def _pair_suspects(self) -> None:
        """Swapped events (each belongs at the other's position) and events moved to a new position."""
        paired: set[int] = set()
        by_position = {s.row.position: s for s in self._suspects}
        for x in self._suspects:
            for y in self._suspects:
                xp, yp = x.row.position, y.row.position
                if xp < yp and xp not in paired and yp not in paired and self._belongs(y, x) and self._belongs(x, y):
                    paired |= {xp, yp}
                    self._fail(xp, f"events at positions {xp} and {yp} were swapped ({_what(y.row)} belongs at "
                                   f"{xp}, {_what(x.row)} at {yp})")  # fmt: skip
        for q, digest in self.orphans:
            for s in self._suspects:
                row = s.row
                if (
                    row.position not in paired
                    and s.legacy
                    and digest == legacy_digest(s.body, q, row.recorded_us, q in self.seals, row.stored)
                ):
                    paired.add(row.position)
                    self._fail(q, f"event at position {q} ({_what(row)}) was moved to position {row.position}")
        for position, seen in by_position.items():
            if position not in paired:
                self._changed(seen)

    def _belongs(self, row_seen: _Seen, at: _Seen) -> bool:
        """Row `row_seen` is intact if it stood at `at`'s position (its position was exchanged)."""
        row, p = row_seen.row, at.row.position
        sealed = p in self.seals
        if at.legacy:
            return at.row.digest == legacy_digest(row_seen.body, p, row.recorded_us, sealed, row.stored)
        return own_digest(row_seen.body, p, row.recorded_us, sealed) == row.stored[16:]

    def _check_seals(self) -> None:
        tail_named = False
        for position, (sealed_hash, sealed_at) in sorted(self.seals.items()):
            found = self._sealed_seen.get(position)
            if found is None and position > self.head:
                if not tail_named:
                    tail_named = True
                    self._fail(position, f"log ends at position {self.head} but a seal names position {position} "
                                         f"(sealed {sealed_at.isoformat()}): events after position {self.head} "
                                         "were deleted")  # fmt: skip
            elif found is None:
                self._fail(position, f"event at position {position} was deleted: its seal remains")
            elif found != sealed_hash:
                self._fail(position, f"seal of position {position} differs from the event's chain hash: the hash "
                                     "was rewritten")  # fmt: skip
        last_seal = max(self.seals, default=0)
        if self.head > last_seal and not any(f[0] == self.head for f in self.found):
            self._fail(self.head, f"events after position {last_seal} (the last sealed) up to position {self.head} "
                                  "have no seal: the recorder did not write them")  # fmt: skip

    def _feed_digests(self, position: int | None, digest: bytes | None) -> None:
        """Stored digests in position order: the rows' (joined to them) and the orphans' (merged)."""
        orphans, i = self.orphans, self._orphan_index
        while i < len(orphans) and (position is None or orphans[i][0] < position):
            self._digests.add(*orphans[i])
            i += 1
        self._orphan_index = i
        if position is not None and digest is not None:
            self._digests.add(position, digest)

    def _check_digest_seal(self) -> None:
        for q, _ in self.orphans:
            if not any(f[0] == q and "moved" in f[1] for f in self.found):
                self._fail(q, f"event at position {q} was deleted: migration 0015 sealed a digest of it")
        seal = self.digest_seal
        if seal is None:
            self._fail(0, "seal of the digests of events before migration 0015 (event_digests_seal) is missing")
        elif (seal.events, seal.digest) != (self._digests.count, self._digests.digest()):
            self._fail(seal.through, f"digests of the events before migration 0015 (through position {seal.through}) "
                                     f"differ from their seal: {self._digests.count} digests against "
                                     f"{seal.events} sealed")  # fmt: skip

    def _fail(self, position: int, text: str) -> None:
        self.found.append((position, text))


def _what(row: Row) -> str:
    return f"{row.event.topic}, aggregate {row.event.originator_id} v{row.event.originator_version}"


def digest_seal(rows: Iterable[tuple[Any, ...]]) -> DigestSeal | None:
    """The seal of migration 0015 from its table's rows (one; None if it was deleted)."""
    found = [DigestSeal(int(r[0]), int(r[1]), bytes(r[2])) for r in rows]
    return found[0] if found else None


__all__ = ["ChainCheck", "DigestSeal", "Row", "digest_seal"]
