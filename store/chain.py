"""The tamper-evidence hashes of a region's events: what the recorder writes and `verify` recomputes.

Since migration 0015 every event's `chain_hash` (32 bytes) is two halves:
- `own` (bytes 16-31): a digest of every stored column of the row itself (position, time of
  recording, whether its transaction's seal names it, aggregate id, version, topic, payload);
- `link` (bytes 0-15): a digest of the previous row's whole `chain_hash` and this row's `own`.
So `verify` can tell a row whose own columns changed (its `own` fails) from a row that is intact
but no longer follows the row before it (its `link` fails: something between was deleted or
inserted). The `sealed` bit makes a deleted seal visible on the event it sealed.

Events written before 0015 keep their old hash (`legacy_chain_hash`: the chain over aggregate id,
version, topic and payload); 0015 sealed a digest of all their stored columns (`legacy_digest`,
computed by the migration in SQL, the same bytes as here) in the table `event_digests`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from uuid import UUID

from eventsourcing.persistence import StoredEvent

GENESIS_HASH = bytes(32)
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICROSECOND = dt.timedelta(microseconds=1)
_SEALED = (b"\x00", b"\x01")


def micros(recorded_at: dt.datetime) -> int:
    """A stored `timestamptz` as whole microseconds since 1970 (UTC): exact, as PostgreSQL keeps it."""
    return (recorded_at - EPOCH) // _MICROSECOND


def content(event: StoredEvent) -> bytes:
    """The columns both hashes cover: aggregate id, version (8 bytes, big-endian), topic, a zero byte, payload."""
    originator_id = event.originator_id
    return b"".join(
        (
            originator_id.bytes if isinstance(originator_id, UUID) else str(originator_id).encode(),
            event.originator_version.to_bytes(8, "big", signed=True),
            event.topic.encode(),
            b"\x00",
            event.state,
        )
    )


def own_digest(body: bytes, position: int, recorded_us: int, sealed: bool) -> bytes:
    """The 16-byte digest of one row's own columns (`body`: its `content`)."""
    head = position.to_bytes(8, "big", signed=True) + recorded_us.to_bytes(8, "big", signed=True) + _SEALED[sealed]
    return hashlib.sha256(head + body).digest()[:16]


def link_digest(previous: bytes, own: bytes) -> bytes:
    """The 16-byte link of a row to the whole chain hash of the row before it."""
    return hashlib.sha256(previous + own).digest()[:16]


def event_hash(previous: bytes, event: StoredEvent, position: int, recorded_us: int, sealed: bool) -> bytes:
    """The chain hash the recorder stores with an event (since migration 0015)."""
    own = own_digest(content(event), position, recorded_us, sealed)
    return link_digest(previous, own) + own


def legacy_chain_hash(previous: bytes, body: bytes) -> bytes:
    """The chain hash of an event written before migration 0015: sha256 of the previous hash and
    the event's `content` (aggregate id, version, topic, payload)."""
    return hashlib.sha256(previous + body).digest()


def legacy_digest(body: bytes, position: int, recorded_us: int, sealed: bool, stored_hash: bytes) -> bytes:
    """The digest migration 0015 sealed of an older event: every stored column (`event_digests`)."""
    head = position.to_bytes(8, "big", signed=True) + recorded_us.to_bytes(8, "big", signed=True) + _SEALED[sealed]
    return hashlib.sha256(head + stored_hash + body).digest()


__all__ = [
    "GENESIS_HASH", "content", "event_hash", "legacy_chain_hash", "legacy_digest", "link_digest", "micros",
    "own_digest",
]  # fmt: skip
