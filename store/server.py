"""Where the PostgreSQL server is: `DATABASE_URL` when set, else an embedded server.

The embedded server comes from the `pgserver` wheel (PostgreSQL binaries shipped on PyPI). Its
data lives in `$YIBAO_HOME/pgdata`; it is started on first use and left running so that later
commands reuse it (`yibao db stop` stops it).
"""

from __future__ import annotations

import os
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path

import platformdirs
import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from store.errors import DatabaseUnavailable

DATABASE_NAME = "yibao"


def yibao_home() -> Path:
    """The folder for yibao's local state (embedded server data)."""
    configured = os.environ.get("YIBAO_HOME")
    home = Path(configured) if configured else Path(platformdirs.user_data_dir("yibao"))
    return home.expanduser().resolve()


@dataclass(frozen=True)
class ServerLocation:
    """How to reach the server: `url` is the admin (owner) connection to the yibao database."""

    kind: str  # "external" (DATABASE_URL) or "embedded"
    url: str
    pgdata: Path | None = None

    def describe(self) -> str:
        if self.kind == "external":
            params = conninfo_to_dict(self.url)
            where = params.get("host") or "localhost"
            return f"external server (DATABASE_URL) at {where}, database {params.get('dbname')}"
        return f"embedded server, data in {self.pgdata}"


def locate(*, start: bool = True) -> ServerLocation:
    """Find the server, starting the embedded one when `start` and no DATABASE_URL is set."""
    url = os.environ.get("DATABASE_URL")
    if url:
        return ServerLocation(kind="external", url=url)
    pgdata = yibao_home() / "pgdata"
    if not start and not embedded_is_running(pgdata):
        raise DatabaseUnavailable(f"the embedded server in {pgdata} is not running")
    return ServerLocation(kind="embedded", url=_start_embedded(pgdata), pgdata=pgdata)


def embedded_is_running(pgdata: Path) -> bool:
    pid_file = pgdata / "postmaster.pid"
    if not pid_file.exists():
        return False
    try:
        pid = int(pid_file.read_text().splitlines()[0])
        os.kill(pid, 0)
    except (ValueError, IndexError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def _start_embedded(pgdata: Path) -> str:
    with warnings.catch_warnings():  # pgserver warns at import when XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        import pgserver  # imported lazily: it is only needed without DATABASE_URL

    pgdata.mkdir(parents=True, exist_ok=True)
    try:
        server = pgserver.get_server(pgdata, cleanup_mode=None)
        admin_url = server.get_uri()
    except Exception as exc:  # pgserver raises plain exceptions; give them a name
        raise DatabaseUnavailable(f"could not start the embedded server in {pgdata}: {exc}") from exc
    _ensure_database(admin_url, DATABASE_NAME)
    return with_dbname(admin_url, DATABASE_NAME)


def stop_embedded(pgdata: Path) -> bool:
    """Stop the embedded server; False when it was not running."""
    if not embedded_is_running(pgdata):
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pgserver._commands import POSTGRES_BIN_PATH  # the wheel's own binaries

    pg_ctl = [str(POSTGRES_BIN_PATH / "pg_ctl"), "-w", "-D", str(pgdata), "stop", "-m", "fast"]
    if os.geteuid() == 0:  # pgserver runs the server as the 'pgserver' user when we are root
        pg_ctl = ["su", "pgserver", "-s", "/bin/sh", "-c", " ".join(pg_ctl)]
    subprocess.run(pg_ctl, check=True, capture_output=True, timeout=60)
    return True


def with_dbname(url: str, dbname: str) -> str:
    params = conninfo_to_dict(url)
    params["dbname"] = dbname
    return make_conninfo("", **params)


def _ensure_database(admin_url: str, dbname: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))


def create_database(url: str, dbname: str) -> str:
    """Create a fresh database next to `url`'s; returns its URL (used by tests)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    return with_dbname(url, dbname)


def drop_database(url: str, dbname: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))


def client_binary(name: str) -> str:
    """pg_dump / pg_restore: those shipped with the embedded server's wheel (PostgreSQL 16
    clients, which also serve older servers), else the ones on PATH."""
    import shutil

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            from pgserver._commands import POSTGRES_BIN_PATH

            candidate = Path(POSTGRES_BIN_PATH) / name
            if candidate.exists():
                return str(candidate)
        except ImportError:  # pragma: no cover - pgserver is a dependency
            pass
    found = shutil.which(name)
    if found is None:
        raise DatabaseUnavailable(f"{name} not found")
    return found


def dump(url: str, path: Path) -> None:
    """A consistent backup of the whole database (every region), pg_dump's custom format."""
    done = subprocess.run(
        [client_binary("pg_dump"), "--format=custom", "--file", str(path), "--dbname", url],
        capture_output=True, text=True, timeout=3600,
    )  # fmt: skip
    if done.returncode != 0:
        raise DatabaseUnavailable(f"pg_dump failed: {done.stderr.strip().splitlines()[-1:]}")


def restore(url: str, path: Path) -> None:
    """Restore a backup made by `dump` into the database at `url`, replacing what is there."""
    if not path.is_file():
        raise DatabaseUnavailable(f"no backup file {path}")
    done = subprocess.run(
        [client_binary("pg_restore"), "--clean", "--if-exists", "--single-transaction", "--exit-on-error",
         "--dbname", url, str(path)],
        capture_output=True, text=True, timeout=3600,
    )  # fmt: skip
    if done.returncode != 0:
        raise DatabaseUnavailable(f"pg_restore failed: {done.stderr.strip().splitlines()[-1:]}")
