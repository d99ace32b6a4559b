"""`claims settle --grouped`: lines settled bucket by bucket (each account owner's claims close
together) get the answers of a run in file order, written in input order; a run stopped by a
failing worker writes the results before the first line without one, and running the file again
completes it without paying anything twice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from store.server import ServerLocation
from tests.cli_store import prepared_stores, yibao
from tests.e2e.test_settle_workers import BATCH, SCENARIO, files

__all__ = ["files"]  # fixture: families, a shared setl_id, lines that do not decode


@pytest.fixture(scope="module")
def stores(server: ServerLocation, files: Path) -> Iterator[dict[str, str]]:
    with prepared_stores(server, files, "t_grouped", "file_order", "grouped", "one", "killed") as urls:
        yield urls


def settle(url: str, claims: Path | str, out: Path, *options: str, **env: str) -> subprocess.CompletedProcess[bytes]:
    command = [sys.executable, "-m", "commands", "claims", "settle", str(claims), "--batch-size", BATCH, *options]
    command += ["--out", str(out), "--rejects", str(out.with_suffix(".rejects"))]
    return subprocess.run(command, env={**os.environ, "DATABASE_URL": url, **env}, capture_output=True)


@pytest.fixture(scope="module")
def reference(stores: dict[str, str], files: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The file settled by one process in file order."""
    out = tmp_path_factory.mktemp("grouped") / "reference.jsonl"
    run = settle(stores["file_order"], files / "claims.jsonl", out)
    assert run.returncode == 0, run.stderr.decode()
    return out


@pytest.mark.parametrize(("kind", "workers"), [("grouped", "2"), ("one", "1")])
def test_grouped_runs_answer_every_line_as_a_run_in_file_order(
    stores: dict[str, str], files: Path, reference: Path, tmp_path: Path, kind: str, workers: str
) -> None:
    out = tmp_path / "out.jsonl"
    run = settle(stores[kind], files / "claims.jsonl", out, "--grouped", "--workers", workers)
    assert run.returncode == 0, run.stderr.decode()
    assert out.read_bytes() == reference.read_bytes()
    assert out.with_suffix(".rejects").read_bytes() == reference.with_suffix(".rejects").read_bytes()
    results = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(results) == SCENARIO.claims + 5
    assert sum(r.get("acct_mulaid_pay", "0.00") != "0.00" for r in results) > 0  # family accounts paid
    # The same events, postings and settlements as the run in file order (seals: one per commit).
    checked = [json.loads(yibao(stores[k], "verify", "--json")) for k in (kind, "file_order")]
    for report in checked:
        assert report["problems"] == []
        del report["checked"]["seals"]
    assert checked[0] == checked[1]


def test_a_failed_grouped_run_writes_what_precedes_its_first_gap_and_a_second_run_completes_the_file(
    stores: dict[str, str], files: Path, reference: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.jsonl"
    run = settle(stores["killed"], files / "claims.jsonl", out, "--grouped", "--workers", "2",
                 YIBAO_FAILPOINT="workers.after_report")  # fmt: skip
    assert run.returncode == 1
    assert run.stderr.decode().startswith("error: worker_failed: worker ")
    given = out.read_bytes().splitlines()
    assert len(given) < SCENARIO.claims
    assert given == reference.read_bytes().splitlines()[: len(given)]  # in input order, and right

    run = settle(stores["killed"], files / "claims.jsonl", out, "--grouped", "--workers", "2")
    assert run.returncode == 0, run.stderr.decode()
    assert out.read_bytes() == reference.read_bytes()  # each line its first answer: nothing paid twice
    before = yibao(stores["killed"], "verify", "--json")
    assert settle(stores["killed"], files / "claims.jsonl", out, "--grouped").returncode == 0
    assert out.read_bytes() == reference.read_bytes()
    assert yibao(stores["killed"], "verify", "--json") == before  # not one event more


def test_grouped_needs_a_named_file(stores: dict[str, str], tmp_path: Path) -> None:
    run = settle(stores["one"], "-", tmp_path / "out.jsonl", "--grouped")
    assert run.returncode != 0
    assert "error: workers_need_a_file: --grouped needs a claims file named on the command line" in run.stderr.decode()


def test_reject_lines_on_standard_output_follow_their_results_as_in_one_process(
    stores: dict[str, str], files: Path, reference: Path
) -> None:
    printed = []
    for kind, options in (("file_order", ()), ("grouped", ("--grouped", "--workers", "2"))):
        command = [sys.executable, "-m", "commands", "claims", "settle", str(files / "claims.jsonl")]
        command += ["--batch-size", BATCH, *options, "--rejects", "-"]
        run = subprocess.run(command, env={**os.environ, "DATABASE_URL": stores[kind]}, capture_output=True)
        assert run.returncode == 0, run.stderr.decode()
        printed.append(run.stdout)
    assert printed[0] == printed[1]  # a settled file run again answers each line as it did
    lines = printed[0].splitlines()
    rejects = [i for i, line in enumerate(lines) if line.startswith(b'{"line":')]
    assert len(rejects) == sum(b'"status":"rejected"' in line for line in lines) // 2 > 0  # each said twice
    assert all(json.loads(lines[i - 1])["status"] == "rejected" for i in rejects)


def test_results_rejects_and_the_claims_must_be_three_files(
    stores: dict[str, str], files: Path, tmp_path: Path
) -> None:
    claims = tmp_path / "claims.jsonl"
    claims.write_bytes((files / "claims.jsonl").read_bytes())
    out = tmp_path / "out.jsonl"
    for options, said in (
        (["--out", str(out), "--rejects", str(tmp_path / "." / "out.jsonl")], "--rejects names the same file as --out"),
        (["--out", str(claims)], "--out names the same file as FILE"),
        (["--rejects", str(claims)], "--rejects names the same file as FILE"),
    ):
        command = [sys.executable, "-m", "commands", "claims", "settle", str(claims), *options]
        run = subprocess.run(command, env={**os.environ, "DATABASE_URL": stores["one"]}, capture_output=True)
        assert run.returncode == 2 and said in run.stderr.decode()
    assert claims.read_bytes() == (files / "claims.jsonl").read_bytes()  # nothing written over
    assert not out.exists()
