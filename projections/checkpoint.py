"""Signed checkpoints: a witness of each region's log kept outside the database.

A database superuser can delete the newest events together with their seals (and rebuild the read
model): what is left is a shorter log that is whole, and nothing in the database tells. A
checkpoint records, for every region, the position and chain hash of its last event (the chain
hash covers every event before it) and the seal of the digests of events older than migration
0015, signed with an Ed25519 key kept in a file outside the database. Auditors keep checkpoints
and the public key; `yibao verify --checkpoint FILE` then proves that the log still contains, and
agrees with, what the checkpoint saw.

The file is JSON: `{"checkpoint": {...}, "public_key": hex, "signature": hex}`, the signature
being over the canonical JSON of `checkpoint` (sorted keys, no spaces, ASCII).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from psycopg import sql
from psycopg.rows import tuple_row

from app.region import RegionApplication
from core.errors import YibaoError
from store.chain import GENESIS_HASH
from store.server import yibao_home

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

# cryptography is imported by the functions that sign or check: its OpenSSL binding adds
# megabytes to every process that imports the CLI (each settling worker too), and only
# `checkpoint` and `verify --checkpoint` use it.

FORMAT = "yibao-checkpoint/1"
KEY_FILE_NAME = "checkpoint-key.pem"


class CheckpointError(YibaoError):
    reason = "bad_checkpoint"


@dataclass(frozen=True)
class RegionHead:
    """What a checkpoint saw of one region: its last event and the seal of migration 0015."""

    region: str
    position: int  # 0: the log was empty
    chain_hash: bytes
    digests_through: int
    digests: int
    digests_digest: bytes

    def to_json(self) -> dict[str, Any]:
        return {
            "region": self.region, "position": self.position, "chain_hash": self.chain_hash.hex(),
            "digests_through": self.digests_through, "digests": self.digests,
            "digests_digest": self.digests_digest.hex(),
        }  # fmt: skip

    @classmethod
    def from_json(cls, obj: Any) -> RegionHead:
        try:
            return cls(
                str(obj["region"]), int(obj["position"]), bytes.fromhex(obj["chain_hash"]),
                int(obj["digests_through"]), int(obj["digests"]), bytes.fromhex(obj["digests_digest"]),
            )  # fmt: skip
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"a region of the checkpoint is not readable: {exc!r}") from exc


_HEAD = (
    "SELECT (SELECT notification_id FROM {events} ORDER BY notification_id DESC LIMIT 1), "
    "(SELECT chain_hash FROM {events} ORDER BY notification_id DESC LIMIT 1), "
    "(SELECT notification_id FROM {seals} ORDER BY notification_id DESC LIMIT 1), "
    "(SELECT chain_hash FROM {seals} ORDER BY notification_id DESC LIMIT 1), "
    "(SELECT through_position FROM {digests}), (SELECT events FROM {digests}), (SELECT digest FROM {digests})"
)


def region_head(app: RegionApplication) -> RegionHead:
    """The region's head, read in one statement (one snapshot: an event and its seal commit together).
    Refused when the last event is not the last seal's: a checkpoint must not witness a log that
    `yibao verify` would already find tampered with."""
    datastore = app.factory.datastore  # type: ignore[attr-defined]
    names = {t: sql.Identifier(datastore.schema, t) for t in ("events", "seals")}
    query = sql.SQL(_HEAD).format(digests=sql.Identifier(datastore.schema, "event_digests_seal"), **names)
    with datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
        row = curs.execute(query).fetchone()
    assert row is not None
    position, chain_hash, sealed, sealed_hash, through, count, digest = row
    if (position, chain_hash) != (sealed, sealed_hash) or digest is None:
        raise YibaoError(
            f"region {app.region}: the last event ({position}) is not the one the last seal names ({sealed}), or the "
            "seal of migration 0015 is missing: run `yibao verify` first",
            reason="checkpoint_refused",
        )
    return RegionHead(
        app.region, position or 0, bytes(chain_hash) if chain_hash else GENESIS_HASH, through, count, bytes(digest)
    )


def canonical(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def signed(heads: list[RegionHead], key: Ed25519PrivateKey, taken_at: dt.datetime) -> dict[str, Any]:
    from cryptography.hazmat.primitives import serialization

    payload = {"format": FORMAT, "taken_at": taken_at.isoformat(), "regions": [h.to_json() for h in heads]}
    public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {"checkpoint": payload, "public_key": public.hex(), "signature": key.sign(canonical(payload)).hex()}


@dataclass(frozen=True)
class Opened:
    """A checkpoint file read back: its heads (empty when its signature failed) and what is wrong."""

    taken_at: str
    heads: list[RegionHead]
    problems: list[str]


def open_checkpoint(data: bytes, trusted: Ed25519PublicKey) -> Opened:
    """Check the signature against the key the auditors keep; only a signed checkpoint is compared."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import serialization

    try:
        document = json.loads(data)
        payload, public_hex, signature = document["checkpoint"], document["public_key"], document["signature"]
        taken_at, regions = str(payload["taken_at"]), list(payload["regions"])
        signature_bytes = bytes.fromhex(signature)
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"the file is not a checkpoint: {exc!r}") from exc
    if payload.get("format") != FORMAT:
        raise CheckpointError(f"not a checkpoint of this format ({payload.get('format')!r}, expected {FORMAT})")
    trusted_hex = trusted.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()
    if public_hex != trusted_hex:
        problem = (
            f"checkpoint was signed by another key ({str(public_hex)[:16]}...), not the given one ({trusted_hex[:16]})"
        )
        return Opened(taken_at, [], [problem])
    try:
        trusted.verify(signature_bytes, canonical(payload))
    except InvalidSignature:
        return Opened(taken_at, [], ["checkpoint signature does not verify: the file was changed after it was signed"])
    return Opened(taken_at, [RegionHead.from_json(r) for r in regions], [])


# --- the signing key, a file outside the database ------------------------------------------------


def key_path(given: Path | None) -> Path:
    return given if given is not None else yibao_home() / KEY_FILE_NAME


def load_or_create_key(path: Path) -> tuple[Ed25519PrivateKey, bool]:
    """The private key in `path`, created there (mode 0600) if there is none; True when created."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    if not path.exists():
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as exc:
            raise YibaoError(f"cannot create the key file {path}: {exc.strerror}", reason="cannot_write_file") from exc
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
        return key, True
    return _private_key(path), False


def _private_key(path: Path) -> Ed25519PrivateKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise YibaoError(
            f"the key file {path} can be read by others (mode {mode:04o}): `chmod 600 {path}`",
            reason="key_file_exposed",
        )
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise YibaoError(f"cannot read the key file {path}: {exc}", reason="bad_key_file") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise YibaoError(f"the key file {path} is not an Ed25519 private key", reason="bad_key_file")
    return key


def public_key_pem(key: Ed25519PrivateKey) -> str:
    from cryptography.hazmat.primitives import serialization

    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def trusted_public_key(given: bytes | None) -> Ed25519PublicKey:
    """The public key to check a checkpoint against: the one given (what auditors keep), else that
    of the default key file under YIBAO_HOME."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    if given is None:
        path = key_path(None)
        if not path.exists():
            raise YibaoError(
                f"no public key to check the checkpoint with: give --public-key FILE (no key file at {path})",
                reason="no_public_key",
            )
        return _private_key(path).public_key()
    try:
        key = serialization.load_pem_public_key(given)
    except (ValueError, TypeError) as exc:
        raise YibaoError(f"--public-key is not a PEM public key: {exc}", reason="bad_key_file") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise YibaoError("--public-key is not an Ed25519 public key", reason="bad_key_file")
    return key


__all__ = [
    "CheckpointError", "Opened", "RegionHead", "key_path", "load_or_create_key", "open_checkpoint",
    "public_key_pem", "region_head", "signed", "trusted_public_key",
]  # fmt: skip
