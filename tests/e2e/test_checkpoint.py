"""`yibao checkpoint` and `yibao verify --checkpoint`: a signed witness kept outside the database.

A database superuser who deletes the newest events together with their seals, and rebuilds the
read model, leaves a log that is whole: `verify` alone passes, as it must, and only a checkpoint
signed before tells. So does one that rewrote the log and recomputed every hash and seal.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner, Result
from eventsourcing.persistence import StoredEvent

from commands.cli import main
from store.app import Store
from store.chain import event_hash, micros
from tests.conftest import EXAMPLES
from tests.integration.test_projections_and_verify import triggers_off
from tests.integration.test_tamper_evidence import put_back, rows

REGION, EMPTY = "330109", "110105"
POLICY_FILE = EXAMPLES / "policy-330109-2023.toml"
MEMBER = (
    '{{"psn_no": "{0}", "insuplc_admdvs": "330109", "insutype": "390", "assist_category": "none", "chronic": false, '
    '"supplementary": [], "valid_from": "2023-01-01"}}\n'
)
CLAIM = (
    '{{"setl_id": "{0}", "psn_no": "{1}", "fixmedins_code": "H001", "hosp_lv": 1, "med_type": "21", '
    '"setl_time": "2023-02-01", "medfee_sumamt": "1000.00", "fulamt_ownpay_amt": "0.00", "overlmt_selfpay": "0.00", '
    '"preselfpay_amt": "0.00", "inscp_scp_amt": "1000.00"}}\n'
)


def yibao(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def settle(env: dict[str, str], folder: Path, *names: str) -> None:
    members, claims = folder / "m.jsonl", folder / "c.jsonl"
    members.write_text("".join(MEMBER.format(n) for n in names), encoding="utf-8")
    claims.write_text("".join(CLAIM.format(f"S-{n}", n) for n in names), encoding="utf-8")
    for command in (["members", "import", str(members)], ["claims", "settle", str(claims)]):
        assert yibao(env, *command).exit_code == 0


@pytest.fixture(scope="module")
def store_env(database_url: str, store: Store, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    env = {"DATABASE_URL": database_url}
    folder = tmp_path_factory.mktemp("checkpoint")
    assert yibao(env, "policy", "load", str(POLICY_FILE)).exit_code == 0
    assert yibao(env, "regions", "add", EMPTY).exit_code == 0
    settle(env, folder, "P-1", "P-2", "P-3")
    return env


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, Path]:
    return {"key": tmp_path / "keys" / "signing.pem", "public": tmp_path / "public.pem", "file": tmp_path / "cp.json"}


def take(env: dict[str, str], keys: dict[str, Path]) -> dict[str, Any]:
    public = yibao(env, "checkpoint", "--public-key", "--key", str(keys["key"]))
    keys["public"].write_text(public.stdout, encoding="utf-8")
    written = yibao(env, "checkpoint", "--out", str(keys["file"]), "--key", str(keys["key"]))
    assert written.exit_code == 0, written.stderr
    return json.loads(keys["file"].read_text(encoding="utf-8"))


def verify(env: dict[str, str], keys: dict[str, Path], *, checkpoint: bool = True) -> tuple[int, list[dict[str, Any]]]:
    extra = ["--checkpoint", str(keys["file"]), "--public-key", str(keys["public"])] if checkpoint else []
    result = yibao(env, "verify", "--json", *extra)
    return result.exit_code, [json.loads(line) for line in result.stdout.splitlines()]


def problems(report: list[dict[str, Any]]) -> list[str]:
    return [p for part in report for p in part["problems"]]


@pytest.fixture
def owner(store: Store) -> Iterator[psycopg.Connection[Any]]:
    with triggers_off(store) as conn:
        yield conn


def test_a_signed_checkpoint_of_every_region_verifies(store_env: dict[str, str], keys: dict[str, Path]) -> None:
    document = take(store_env, keys)

    assert stat.S_IMODE(keys["key"].stat().st_mode) == 0o600
    assert keys["public"].read_text(encoding="utf-8").startswith("-----BEGIN PUBLIC KEY-----")
    heads = {r["region"]: r for r in document["checkpoint"]["regions"]}
    assert heads[EMPTY]["position"] == 0
    assert heads[REGION]["position"] > 0 and len(heads[REGION]["chain_hash"]) == 64
    code, report = verify(store_env, keys)
    assert (code, problems(report)) == (0, [])
    assert report[0]["region"] == f"checkpoint taken {document['checkpoint']['taken_at']}"
    assert report[0]["checked"] == {"regions": 2}


def test_the_key_is_created_once_with_mode_0600_and_its_public_key_printed(
    store_env: dict[str, str], keys: dict[str, Path]
) -> None:
    first = yibao(store_env, "checkpoint", "--public-key", "--key", str(keys["key"]))
    again = yibao(store_env, "checkpoint", "--public-key", "--key", str(keys["key"]))

    assert first.stderr.startswith(f"created the checkpoint key {keys['key']} (mode 0600)")
    assert (again.stderr, again.stdout) == ("", first.stdout)
    assert stat.S_IMODE(keys["key"].stat().st_mode) == 0o600


def test_the_default_key_lives_under_yibao_home_and_verifies_without_public_key(
    store_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**store_env, "YIBAO_HOME": str(tmp_path / "home")}
    out = tmp_path / "cp.json"
    no_key = yibao(env, "verify", "--checkpoint", "/dev/null")  # no key yet, so not even read
    assert no_key.exit_code == 1
    assert no_key.stderr.startswith("error: no_public_key: no public key to check the checkpoint with")

    assert yibao(env, "checkpoint", "--out", str(out)).exit_code == 0
    assert stat.S_IMODE((tmp_path / "home" / "checkpoint-key.pem").stat().st_mode) == 0o600
    assert yibao(env, "verify", "--checkpoint", str(out)).exit_code == 0


def test_a_key_file_others_can_read_is_refused(store_env: dict[str, str], keys: dict[str, Path]) -> None:
    take(store_env, keys)
    keys["key"].chmod(0o644)

    result = yibao(store_env, "checkpoint", "--key", str(keys["key"]))

    assert result.exit_code == 1
    assert result.stderr == (
        f"error: key_file_exposed: the key file {keys['key']} can be read by others (mode 0644): "
        f"`chmod 600 {keys['key']}`\n"
    )


@pytest.mark.parametrize("where", ["in no directory", "a directory"])
def test_an_unwritable_out_is_a_named_error_before_anything_is_done(
    store_env: dict[str, str], keys: dict[str, Path], tmp_path: Path, where: str
) -> None:
    out, problem = (
        ("/proc/no/such/checkpoint.json", "there is no directory /proc/no/such") if where == "in no directory"
        else (str(tmp_path), "it is a directory")
    )  # fmt: skip
    result = yibao(store_env, "checkpoint", "--key", str(keys["key"]), "--out", out)

    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == f"error: cannot_write_file: --out {out}: {problem} (nothing was done)\n"
    assert not keys["key"].exists()  # not even the key was made


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda d: d["checkpoint"]["regions"][1].update(position=d["checkpoint"]["regions"][1]["position"] - 1),
         "checkpoint signature does not verify: the file was changed after it was signed"),
        (lambda d: d.update(signature="00" * 64),
         "checkpoint signature does not verify: the file was changed after it was signed"),
        (lambda d: d.update(public_key="11" * 32),
         f"checkpoint was signed by another key ({'11' * 8}...), not the given one ("),
    ],
    ids=["position", "signature", "key"],
)  # fmt: skip
def test_a_tampered_checkpoint_fails_its_signature(
    store_env: dict[str, str], keys: dict[str, Path], change: Any, problem: str
) -> None:
    document = take(store_env, keys)
    change(document)
    keys["file"].write_text(json.dumps(document), encoding="utf-8")

    code, report = verify(store_env, keys)

    assert code == 1
    assert report[0]["problems"][0].startswith(problem)
    assert [part["ok"] for part in report[1:]] == [True, True, True, True]  # the regions themselves still verify


def test_a_checkpoint_signed_by_another_key_fails(
    store_env: dict[str, str], keys: dict[str, Path], tmp_path: Path
) -> None:
    take(store_env, keys)
    other = tmp_path / "other.pem"
    other.write_text(yibao(store_env, "checkpoint", "--public-key", "--key", str(tmp_path / "k2.pem")).stdout)
    keys["public"] = other

    code, report = verify(store_env, keys)

    assert code == 1
    assert report[0]["problems"][0].startswith("checkpoint was signed by another key (")


def test_a_tail_deleted_with_its_seals_and_a_rebuild_is_caught_only_with_the_checkpoint(
    store_env: dict[str, str], keys: dict[str, Path], owner: psycopg.Connection[Any], tmp_path: Path
) -> None:
    position = take(store_env, keys)["checkpoint"]["regions"][1]["position"]
    settle(store_env, tmp_path, "P-4")  # after the checkpoint: deleting these alone, it cannot tell
    last_seen = owner.execute(
        "SELECT max(notification_id) FROM region_330109.seals WHERE notification_id < %s", (position - 3,)
    ).fetchone()[0]
    tail = rows(owner, "notification_id > %s", last_seen)
    seals = owner.execute("SELECT * FROM region_330109.seals WHERE notification_id > %s", (last_seen,)).fetchall()
    owner.execute("DELETE FROM region_330109.events WHERE notification_id > %s", (last_seen,))
    owner.execute("DELETE FROM region_330109.seals WHERE notification_id > %s", (last_seen,))
    try:
        assert yibao(store_env, "projections", "rebuild", "--region", REGION).exit_code == 0
        alone, with_checkpoint = verify(store_env, keys, checkpoint=False), verify(store_env, keys)
        text = yibao(store_env, "verify", "--checkpoint", str(keys["file"]), "--public-key", str(keys["public"]))
    finally:
        put_back(owner, tail)
        for seal in seals:
            owner.execute("INSERT INTO region_330109.seals VALUES (%s, %s, %s)", seal)
        assert yibao(store_env, "projections", "rebuild", "--region", REGION).exit_code == 0

    assert alone[0] == 0
    assert with_checkpoint[0] == 1
    assert [(part["ok"], part["problems"]) for part in with_checkpoint[1]] == [
        (False, [f"region {REGION}: log ends at position {last_seen}, before the checkpoint's position {position}: "
                 f"events after position {last_seen} were deleted (with their seals)"]),
        (True, []), (True, []), (True, []), (True, []),
    ]  # fmt: skip
    # The first line, the checkpoint's, does not say OK before a region is found not to hold it.
    assert text.exit_code == 1
    assert text.stdout.splitlines()[0].endswith(": PROBLEMS (2 regions)")
    assert verify(store_env, keys)[0] == 0


def test_a_log_rewritten_with_every_hash_and_seal_recomputed_is_caught_by_the_checkpoint(
    store_env: dict[str, str], keys: dict[str, Path], owner: psycopg.Connection[Any]
) -> None:
    position = take(store_env, keys)["checkpoint"]["regions"][1]["position"]
    saved = rows(owner, "notification_id >= 3")
    sealed = {r[0] for r in owner.execute("SELECT notification_id FROM region_330109.seals")}
    previous = bytes(rows(owner, "notification_id = 2")[0][6])
    for row in saved:  # the event at 3 gets one more byte; every hash from there on is recomputed
        state = bytes(row[3]) + (b" " if row[4] == 3 else b"")
        event = StoredEvent(row[0], row[1], row[2], state)
        previous = event_hash(previous, event, row[4], micros(row[5]), row[4] in sealed)
        owner.execute("UPDATE region_330109.events SET state = %s, chain_hash = %s WHERE notification_id = %s",
                      (state, previous, row[4]))  # fmt: skip
        owner.execute("UPDATE region_330109.seals SET chain_hash = %s WHERE notification_id = %s", (previous, row[4]))
    try:
        alone, with_checkpoint = verify(store_env, keys, checkpoint=False), verify(store_env, keys)
    finally:
        put_back(owner, saved)
        for row in saved:
            owner.execute("UPDATE region_330109.seals SET chain_hash = %s WHERE notification_id = %s", (row[6], row[4]))

    assert alone[0] == 0
    assert (with_checkpoint[0], problems(with_checkpoint[1])) == (1, [
        f"region {REGION}: chain hash at position {position} differs from the checkpoint's: the log up to it was "
        "rewritten"
    ])  # fmt: skip


def test_a_region_of_the_checkpoint_deleted_from_the_store_is_named(
    store_env: dict[str, str], keys: dict[str, Path], store: Store
) -> None:
    take(store_env, keys)
    with store.connect_admin() as conn:
        saved = conn.execute("SELECT * FROM yibao.regions WHERE code = %s", (EMPTY,)).fetchone()
        conn.execute("DELETE FROM yibao.regions WHERE code = %s", (EMPTY,))
        try:
            code, report = verify(store_env, keys)
        finally:
            conn.execute("INSERT INTO yibao.regions VALUES (%s, %s, %s)", saved)

    assert (code, report[0]["problems"]) == (
        1, [f"region {EMPTY} is in the checkpoint but not in the store: it was deleted"]
    )  # fmt: skip
