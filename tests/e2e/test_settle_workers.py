"""`claims settle --workers N`: a file settled by several processes gives every line the answer
one process gives it, pays nothing twice when run again, and a worker that dies stops the run
with a named error; running it again completes the file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pytest

from bulk.mode import SettleMode, choose_mode, parallel_file_bytes_min
from bulk.workers import SeenTwice, plan_split, worker_of
from commands.synthetic import Scenario, generate
from store.app import Store
from store.server import ServerLocation
from tests.cli_store import prepared_stores, yibao

SCENARIO = Scenario(members=400, claims=4000, hospitals=6, seed=11)
BATCH = "150"  # many batches per worker, so several are in flight at once


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("workers")
    generate(SCENARIO, folder)
    lines = (folder / "claims.jsonl").read_bytes().splitlines()
    # Lines a run must answer without a worker's help going wrong: one that is not JSON, a
    # resubmitted claim, an unknown member.
    unknown = json.loads(lines[5]) | {"setl_id": "S-UNKNOWN", "psn_no": "99999999999999"}
    first = json.loads(lines[1500])
    # The same setl_id for another member (whichever line comes first is paid, as in one process).
    other = next(json.loads(x) for x in lines if json.loads(x)["psn_no"] != first["psn_no"])
    same_id = json.dumps(other | {"setl_id": first["setl_id"]}).encode()
    extra = [b"{not json", lines[10], json.dumps(unknown).encode(), b"[" * 3000 + b"]" * 3000]
    (folder / "claims.jsonl").write_bytes(
        b"\n".join([*lines[:1500], same_id, *lines[1500:2000], *extra, *lines[2000:]]) + b"\n"
    )
    # A chain of bindings: an employee bound to another employee, and a member bound to the first.
    members = [json.loads(x) for x in (folder / "members.jsonl").read_text().splitlines()]
    employees = [m for m in members if m["insutype"] == "310" and not m.get("family_of")]
    bound_to = {m.get("family_of") for m in members}
    middle, top = [m for m in employees if m["psn_no"] not in bound_to][:2]
    below = next(m for m in members if m["insutype"] == "390" and not m.get("family_of"))
    with (folder / "members.jsonl").open("a") as out:
        for member, employee in ((middle, top), (below, middle)):
            out.write(json.dumps(member | {"valid_from": "2023-03-01", "family_of": employee["psn_no"]}) + "\n")
    return folder


@pytest.fixture(scope="module")
def stores(server: ServerLocation, files: Path) -> Iterator[dict[str, str]]:
    names = ("one", "three", "killed", "terminated", "bindings", "default", "cwd")
    with prepared_stores(server, files, "t_workers", *names) as urls:
        yield urls


@pytest.fixture(scope="module")
def reference(stores: dict[str, str], files: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The output (and rejects beside it) of one process settling the file: what every run with
    workers must give."""
    out = tmp_path_factory.mktemp("reference") / "one.jsonl"
    assert settle(stores["one"], files / "claims.jsonl", out, 1).returncode == 0
    return out


def settle(url: str, claims: Path, out: Path, workers: int, **env: str) -> subprocess.CompletedProcess[bytes]:
    command = [sys.executable, "-m", "commands", "claims", "settle", str(claims), "--batch-size", BATCH]
    command += ["--workers", str(workers), "--out", str(out), "--rejects", str(out.with_suffix(".rejects"))]
    return subprocess.run(command, env={**os.environ, "DATABASE_URL": url, **env}, capture_output=True)


def lines_of(*claims: tuple[str, str]) -> Callable[[], Iterator[tuple[int, bytes]]]:
    encoded = [json.dumps({"psn_no": p, "setl_id": s}).encode() for p, s in claims]
    return lambda: iter(enumerate(encoded, start=1))


def test_a_whole_chain_of_bindings_and_claims_sharing_a_setl_id_go_to_one_worker() -> None:
    bindings = [("P-CHILD", "P-PARENT"), ("P-GRANDCHILD", "P-CHILD"), ("P-OTHER-CHILD", "P-PARENT")]
    claims = [("P-A", "S1"), ("P-B", "S1"), ("P-C", "S2"), ("P-D", "S3"), ("P-B", "S4"), ("P-E", "S4")]
    groups = plan_split(lines_of(*claims), bindings)
    family = {groups.find(p) for p in ("P-CHILD", "P-PARENT", "P-GRANDCHILD", "P-OTHER-CHILD")}
    assert len(family) == 1
    assert groups.find("P-A") == groups.find("P-B") == groups.find("P-E")  # S1 joins A and B, S4 B and E
    assert len({groups.find(p) for p in ("P-A", "P-C", "P-D")}) == 3
    assert groups.find("P-NOBODY") == "P-NOBODY"
    for workers in (2, 3, 7):
        line = b'{"psn_no": "P-GRANDCHILD"}'
        assert worker_of(line, groups, workers) == worker_of(b'{"psn_no": "P-PARENT"}', groups, workers)
    spread = {worker_of(f'{{"psn_no": "P{i}"}}'.encode(), groups, 3) for i in range(60)}
    assert spread == {0, 1, 2}
    # Lines a worker must reject as one process does go to worker 0: not JSON, too deep, a
    # number for a member.
    for line in (b"{not json", b"[" * 5000 + b"]" * 5000, b'{"psn_no": 7}'):
        assert worker_of(line, groups, 3) == 0


def test_repeated_hashes_are_found_in_every_bucket_and_only_they() -> None:
    # 5 and 261 share a bucket (the low byte) without being equal; negative hashes are kept.
    values = [5, 261, -3, 7, 5, -3, 2**62 + 5, -(2**63), -(2**63)]
    assert repeated_among(values) == {5, -3, -(2**63)}
    assert repeated_among(range(1000)) == set()


def repeated_among(values: Iterable[int]) -> set[int]:
    seen = SeenTwice()
    for value in values:
        seen.add(value)
    return seen.repeated()


def test_the_split_knows_every_family_binding(stores: dict[str, str], files: Path) -> None:
    bound = {}
    for line in (files / "members.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record.get("family_of"):
            bound[record["psn_no"]] = record["family_of"]
    assert len(bound) == 12
    with Store(ServerLocation(kind="external", url=stores["bindings"])) as store:
        (code,) = store.region_codes()
        assert store.region(code).family_accounts() == bound
        yibao(stores["bindings"], "family", "unbind", next(iter(bound)), "--operator", "t", "--reason", "moved out")
        assert len(store.region(code).family_accounts()) == len(bound) - 1


def test_three_workers_answer_every_line_as_one_process_does(
    stores: dict[str, str], files: Path, tmp_path: Path, reference: Path
) -> None:
    three = tmp_path / "three.jsonl"
    run = settle(stores["three"], files / "claims.jsonl", three, 3)
    assert run.returncode == 0, run.stderr.decode()
    assert three.read_bytes() == reference.read_bytes()
    assert three.with_suffix(".rejects").read_bytes() == reference.with_suffix(".rejects").read_bytes()

    results = [json.loads(line) for line in reference.read_text().splitlines()]
    assert len(results) == SCENARIO.claims + 5
    statuses = {r["status"] for r in results}
    assert statuses == {"settled", "duplicate", "rejected"}
    reasons = sorted(r["reason"] for r in results if r["status"] == "rejected")
    assert reasons == ["exists_with_different_content", "not_json", "not_json", "unknown_member"]
    # The family members' claims were paid from their employees' accounts (家庭共济).
    assert sum(int(r.get("acct_mulaid_pay", "0").replace(".", "")) > 0 for r in results) > 0

    assert yibao(stores["three"], "verify", "--json")  # the store checks out whole


def test_a_large_file_settled_without_options_answers_every_line_as_one_process_does(
    stores: dict[str, str], files: Path, reference: Path, tmp_path: Path
) -> None:
    # Each line padded with blanks (JSON ignores them) so that the file passes the size from
    # which the command settles in workers, grouped, by default.
    padded = tmp_path / "claims.jsonl"
    lines = (files / "claims.jsonl").read_bytes().splitlines()
    width = parallel_file_bytes_min // len(lines) + 1
    padded.write_bytes(b"".join(line.ljust(width) + b"\n" for line in lines))
    assert choose_mode(padded.stat().st_size, cores=2) == SettleMode(2, True, 1_250)
    out = tmp_path / "default.jsonl"
    command = [sys.executable, "-m", "commands", "claims", "settle", str(padded), "--out", str(out)]
    done = subprocess.run(command, env={**os.environ, "DATABASE_URL": stores["default"]}, capture_output=True)
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == reference.read_bytes()


def test_workers_do_not_import_modules_from_the_current_directory(
    stores: dict[str, str], files: Path, tmp_path: Path, reference: Path
) -> None:
    # A worker's interpreter imports the standard library before it takes the parent's import
    # path: a `signal.py` or `bulk/` where the command is run must not be what it imports.
    (tmp_path / "signal.py").write_text('raise SystemExit("a signal.py in the current directory")\n')
    (tmp_path / "bulk").mkdir()
    (tmp_path / "bulk" / "__init__.py").write_text('raise SystemExit("a bulk/ in the current directory")\n')
    out = tmp_path / "out.jsonl"
    command = [str(Path(sys.executable).with_name("yibao")), "claims", "settle", str(files / "claims.jsonl")]
    command += ["--batch-size", BATCH, "--workers", "2", "--out", str(out)]
    run = subprocess.run(command, env={**os.environ, "DATABASE_URL": stores["cwd"]}, cwd=tmp_path, capture_output=True)
    assert run.returncode == 0, run.stderr.decode()
    assert out.read_bytes() == reference.read_bytes()


def test_running_the_file_again_with_other_workers_pays_nothing_twice(
    stores: dict[str, str], files: Path, tmp_path: Path, reference: Path
) -> None:
    claims = files / "claims.jsonl"
    first, again = tmp_path / "first.jsonl", tmp_path / "again.jsonl"
    assert settle(stores["three"], claims, first, 3).returncode == 0
    before = yibao(stores["three"], "verify", "--json")
    assert settle(stores["three"], claims, again, 2).returncode == 0
    assert first.read_bytes() == again.read_bytes() == reference.read_bytes()
    assert yibao(stores["three"], "verify", "--json") == before  # not one event more


def test_a_worker_that_dies_stops_the_run_and_a_second_run_completes_the_file(
    stores: dict[str, str], files: Path, tmp_path: Path, reference: Path
) -> None:
    claims, out = files / "claims.jsonl", tmp_path / "out.jsonl"

    run = settle(stores["killed"], claims, out, 2, YIBAO_FAILPOINT="workers.after_report")
    assert run.returncode == 1
    assert run.stderr.decode().startswith("error: worker_failed: worker ")
    given = out.read_bytes().splitlines()
    assert 0 < len(given) < SCENARIO.claims  # it stopped, after giving what was committed
    assert given == reference.read_bytes().splitlines()[: len(given)]  # what it gave was right

    assert settle(stores["killed"], claims, out, 2).returncode == 0
    assert out.read_bytes() == reference.read_bytes()
    # The same events, postings and settlements as the uninterrupted store; only the seals (one
    # per commit) differ in number.
    killed, one = (json.loads(yibao(stores[kind], "verify", "--json")) for kind in ("killed", "one"))
    assert killed["problems"] == []
    for report in (killed, one):
        del report["checked"]["seals"]
    assert killed == one


def test_sigterm_stops_a_run_with_one_named_line_and_a_second_run_completes_the_file(
    stores: dict[str, str], files: Path, tmp_path: Path, reference: Path
) -> None:
    # SIGTERM (a scheduler's stop) ends the run as Ctrl-C does: the workers are stopped, the
    # results given so far are written, and stderr has one named line, not the workers' tracebacks.
    claims, out = files / "claims.jsonl", tmp_path / "out.jsonl"
    command = [sys.executable, "-m", "commands", "claims", "settle", str(claims), "--batch-size", BATCH]
    command += ["--workers", "2", "--out", str(out)]
    env = {**os.environ, "DATABASE_URL": stores["terminated"]}
    with subprocess.Popen(command, env=env, stderr=subprocess.PIPE) as run:
        deadline = time.monotonic() + 60
        while (not out.exists() or out.stat().st_size == 0) and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        children = _commands_of_children(run.pid)
        run.send_signal(signal.SIGTERM)
        _, stderr = run.communicate(timeout=60)

    assert run.returncode == 130, stderr.decode()
    # The two workers and nothing else: no resource tracker, which multiprocessing's spawn starts.
    assert len(children) == 2 and all("worker_main(inbox" in c for c in children), children
    assert stderr.decode().startswith("error: interrupted: ") and stderr.count(b"\n") == 1, stderr.decode()
    given = out.read_bytes().splitlines()
    assert 0 < len(given) < SCENARIO.claims
    assert given == reference.read_bytes().splitlines()[: len(given)]
    assert settle(stores["terminated"], claims, out, 2).returncode == 0
    assert out.read_bytes() == reference.read_bytes()


def _commands_of_children(pid: int) -> list[str]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode() for child in children]
