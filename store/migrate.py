"""Schema migrations: numbered SQL files applied in order, each in its own transaction.

`migrations/global/NNNN_name.sql` build the shared `yibao` schema (region registry, roles);
`migrations/region/NNNN_name.sql` build one pooling region's schema and run with `search_path`
set to it, so the same files serve every region. Applied files are recorded with their checksum
in `yibao.schema_migrations`; a recorded file whose text changed is refused.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

import psycopg
from psycopg import sql

from core.errors import InvalidInput
from store.errors import MigrationChanged

GLOBAL_SCOPE = "global"
# One advisory lock key serialises every migration (several `db up` at once are safe).
MIGRATION_LOCK_KEY = 0x59494241  # "YIBA"
REGION_CODE = re.compile(r"[0-9]{6}")  # matched whole: `$` lets a final line end through


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    text: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()


@dataclass(frozen=True)
class SchemaStatus:
    global_version: int
    region_versions: dict[str, int]
    latest_global: int
    latest_region: int

    @property
    def is_current(self) -> bool:
        return self.global_version == self.latest_global and all(
            v == self.latest_region for v in self.region_versions.values()
        )

    def describe(self) -> str:
        regions = ", ".join(f"{c} v{v}" for c, v in sorted(self.region_versions.items()))
        return f"schema version {self.global_version}; regions: {regions or 'none'}"


def schema_name(region: str) -> str:
    check_region_code(region)
    return f"region_{region}"


def check_region_code(region: str) -> str:
    if not REGION_CODE.fullmatch(region):
        raise InvalidInput(f"region code must be 6 digits, got {region!r}", reason="bad_region_code")
    return region


def load_migrations(scope: str) -> list[Migration]:
    folder = resources.files("migrations") / scope
    found = []
    for entry in folder.iterdir():
        match = re.match(r"^(\d{4})_(\w+)\.sql$", entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    # Numbers may be reserved for work on other branches (a gap), never used twice.
    if len(set(versions)) != len(versions) or (versions and versions[0] != 1):
        raise AssertionError(f"migrations/{scope} must be numbered from 0001, each number once")
    return found


def migrate(conn: psycopg.Connection[Any]) -> SchemaStatus:
    """Bring the shared schema and every region's schema up to date; idempotent."""
    with _migration_lock(conn):
        _bootstrap(conn)
        _apply(conn, GLOBAL_SCOPE, load_migrations("global"), search_path=None)
        for region in _regions(conn):
            _apply(conn, region, load_migrations("region"), search_path=schema_name(region))
    return status(conn)


def add_region(conn: psycopg.Connection[Any], region: str) -> bool:
    """Create a region's schema and event tables; False when it already existed."""
    check_region_code(region)
    with _migration_lock(conn):
        _bootstrap(conn)
        _apply(conn, GLOBAL_SCOPE, load_migrations("global"), search_path=None)
        with conn.transaction():
            created = conn.execute(
                "INSERT INTO yibao.regions (code, schema_name) VALUES (%s, %s) "
                "ON CONFLICT (code) DO NOTHING RETURNING code",
                (region, schema_name(region)),
            ).fetchone()
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema_name(region))))
        _apply(conn, region, load_migrations("region"), search_path=schema_name(region))
    return created is not None


def status(conn: psycopg.Connection[Any]) -> SchemaStatus:
    latest_global = _latest(load_migrations("global"))
    latest_region = _latest(load_migrations("region"))
    has_table = conn.execute("SELECT to_regclass('yibao.schema_migrations') IS NOT NULL").fetchone()
    if not has_table or not has_table[0]:
        return SchemaStatus(0, {}, latest_global, latest_region)
    rows = conn.execute("SELECT scope, max(version) FROM yibao.schema_migrations GROUP BY scope").fetchall()
    versions = {scope: version for scope, version in rows}
    regions = {r: versions.get(r, 0) for r in _regions(conn)}
    return SchemaStatus(versions.get(GLOBAL_SCOPE, 0), regions, latest_global, latest_region)


def _latest(migrations: list[Migration]) -> int:
    return migrations[-1].version if migrations else 0


def _regions(conn: psycopg.Connection[Any]) -> list[str]:
    exists = conn.execute("SELECT to_regclass('yibao.regions') IS NOT NULL").fetchone()
    if not exists or not exists[0]:
        return []
    return [r for (r,) in conn.execute("SELECT code FROM yibao.regions ORDER BY code")]


class _migration_lock:
    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    def __enter__(self) -> None:
        self.conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))

    def __exit__(self, *exc: object) -> None:
        self.conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))


def _bootstrap(conn: psycopg.Connection[Any]) -> None:
    with conn.transaction():
        conn.execute("CREATE SCHEMA IF NOT EXISTS yibao")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS yibao.schema_migrations ("
            " scope text NOT NULL, version integer NOT NULL, name text NOT NULL,"
            " checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now(),"
            " PRIMARY KEY (scope, version))"
        )


def _apply(conn: psycopg.Connection[Any], scope: str, migrations: list[Migration], *, search_path: str | None) -> None:
    applied = {
        version: checksum
        for version, checksum in conn.execute(
            "SELECT version, checksum FROM yibao.schema_migrations WHERE scope = %s", (scope,)
        )
    }
    for migration in migrations:
        if migration.version in applied:
            if applied[migration.version] != migration.checksum:
                raise MigrationChanged(
                    f"migration {migration.version:04d}_{migration.name} ({scope}) was applied "
                    "with different text; write a new migration instead of editing an applied one"
                )
            continue
        with conn.transaction():
            if search_path is not None:
                conn.execute(sql.SQL("SET LOCAL search_path TO {}, yibao").format(sql.Identifier(search_path)))
            conn.execute(migration.text)  # several statements, no parameters
            conn.execute(
                "INSERT INTO yibao.schema_migrations (scope, version, name, checksum) VALUES (%s, %s, %s, %s)",
                (scope, migration.version, migration.name, migration.checksum),
            )
