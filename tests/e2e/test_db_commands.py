"""`yibao db ...` and `yibao regions ...` through the real command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
from click.testing import CliRunner

from commands.cli import main
from store.migrate import load_migrations

GLOBAL_VERSION = max(m.version for m in load_migrations("global"))


def run(args: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, args, env=env)
    return result.exit_code, result.stdout, result.stderr


def test_db_up_is_idempotent_and_prints_the_schema_version(cli_env: dict[str, str]) -> None:
    code, first, _ = run(["db", "up"], cli_env)
    assert code == 0 and first.startswith(f"schema version {GLOBAL_VERSION};")
    code, second, _ = run(["db", "up"], cli_env)
    assert code == 0 and second == first


def test_regions_are_added_once_listed_and_migrated_by_db_up(cli_env: dict[str, str]) -> None:
    assert run(["regions", "add", "330109"], cli_env)[1].startswith("created: region 330109")
    assert run(["regions", "add", "330109"], cli_env)[1].startswith("exists: region 330109")
    assert run(["regions", "add", "110105"], cli_env)[0] == 0
    code, listing, _ = run(["regions", "list"], cli_env)
    assert code == 0
    latest = load_migrations("region")[-1].version
    assert listing.splitlines() == [f"110105\tregion_110105\tv{latest}", f"330109\tregion_330109\tv{latest}"]
    assert f"110105 v{latest}, 330109 v{latest}" in run(["db", "up"], cli_env)[1]


def test_a_bad_region_code_is_a_named_one_line_error(cli_env: dict[str, str]) -> None:
    code, out, err = run(["regions", "add", "33-01"], cli_env)
    assert code == 1 and out == ""
    assert err.strip() == "error: bad_region_code: region code must be 6 digits, got '33-01'"
    code, out, err = run(["regions", "add", "330109\n"], cli_env)  # `$` matched before the line end
    assert code == 1 and err.strip() == "error: bad_region_code: region code must be 6 digits, got '330109\\n'"


def test_db_status_url_and_stop_with_database_url(cli_env: dict[str, str]) -> None:
    code, status, _ = run(["db", "status"], cli_env)
    assert code == 0
    assert "external server (DATABASE_URL)" in status and "postgresql: " in status
    code, url, _ = run(["db", "url"], cli_env)
    assert code == 0
    with psycopg.connect(url.strip()) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    code, stopped, _ = run(["db", "stop"], cli_env)
    assert code == 0 and "no embedded server" in stopped


def test_the_embedded_server_starts_on_first_use_is_reused_and_stops(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["YIBAO_HOME"] = str(tmp_path / "home")

    def yibao(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "commands", *args], env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert yibao("db", "up").startswith(f"schema version {GLOBAL_VERSION};")
    pid_file = tmp_path / "home" / "pgdata" / "postmaster.pid"
    first_pid = pid_file.read_text().splitlines()[0]
    assert "embedded server, data in" in yibao("db", "status")
    url = yibao("db", "url").strip()
    assert pid_file.read_text().splitlines()[0] == first_pid  # reused, not restarted
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == ("yibao",)
    assert "stopped the embedded server" in yibao("db", "stop")
    assert not pid_file.exists()
    assert "was not running" in yibao("db", "stop")
