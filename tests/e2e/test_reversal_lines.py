"""Reversals with a business date and in bulk (issue 19): `claims reverse --date D --file F`
prints one line per setl_id, a reversal line dated D with negative amounts and refd_setl_flag
"1"; an unknown or already reversed id is a named rejected line and records nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.hospital_month import Yibao, cli_with_member, json_lines, lines
from tests.e2e.hospital_month import claim as month_claim


def claim(setl_id: str, inscp: str) -> dict[str, Any]:
    return month_claim(setl_id, "RV-1", "2023-03-01 09:30:00", inscp)


@pytest.fixture(scope="module")
def yibao(database_url: str) -> Yibao:
    run = cli_with_member(database_url, "RV-1")
    claims = [claim("RV-A", "2000.00"), claim("RV-B", "3000.00"), claim("RV-C", "1000.00")]
    settled = run("claims", "settle", "-", stdin=json_lines(claims))
    first = json.loads(settled.stdout.splitlines()[0])
    assert (first["mdtrt_id"], first["setl_time"], first["refd_setl_flag"]) == ("M-RV-A", "2023-03-01 09:30:00", "0")
    return run


def test_a_file_of_ids_reverses_each_on_the_business_date(yibao: Any, tmp_path: Path) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_text("RV-A\n\nRV-NONE\nRV-B\n", encoding="utf-8")
    got = lines(
        yibao("claims", "reverse", "--file", str(ids), "--date", "2023-04-02", "--operator", "op", "--reason", "r")
    )
    assert [(g["setl_id"], g["status"], g.get("reason")) for g in got] == [
        ("RV-A", "reversed", None), ("RV-NONE", "rejected", "unknown_settlement"), ("RV-B", "reversed", None),
    ]  # fmt: skip
    # 2,000.00 -> (2,000 - 800) * 90% = 1,080.00 from the basic fund 390100.
    a = got[0]
    assert (a["setl_time"], a["refd_setl_flag"], a["mdtrt_id"], a["hifp_pay"]) == (
        "2023-04-02",
        "1",
        "M-RV-A",
        "-1080.00",
    )
    assert a["setldetail"] == [{"fund_pay_type": "390100", "fund_payamt": "-1080.00"}]


def test_reversing_again_is_already_reversed_and_records_nothing(yibao: Any, tmp_path: Path) -> None:
    trace_before = yibao("trace", "RV-A", "--json").stdout
    ids = tmp_path / "ids.txt"
    ids.write_text("RV-A\n", encoding="utf-8")
    again = lines(yibao("claims", "reverse", "--file", str(ids), "--operator", "op", "--reason", "r"))
    assert [(g["setl_id"], g["status"], g["reason"]) for g in again] == [("RV-A", "rejected", "already_reversed")]
    assert yibao("trace", "RV-A", "--json").stdout == trace_before
    single = yibao("claims", "reverse", "RV-A", "--operator", "op", "--reason", "r", ok=False)
    assert single.stderr.startswith("error: already_reversed")


def test_one_id_takes_a_date_and_an_id_with_a_file_is_refused(yibao: Any, tmp_path: Path) -> None:
    done = json.loads(
        yibao("claims", "reverse", "RV-C", "--date", "2023-05-31", "--operator", "o", "--reason", "r").stdout
    )
    assert (done["setl_time"], done["refd_setl_flag"], done["fund_pay_sumamt"]) == ("2023-05-31", "1", "-180.00")
    both = yibao("claims", "reverse", "RV-C", "--file", "-", "--operator", "o", "--reason", "r", stdin="", ok=False)
    assert both.stderr.startswith("error: setl_id_or_file")
