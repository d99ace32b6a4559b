"""`yibao demo` on a scenario a quarter of the default: the main job runs end to end, its store
verifies (both regions and the transfers between them), the only claims it refuses are those
of the institutions it suspends and terminates, every fund of its district ends the year
with money in the bank and 3 to 12 months of payment capacity, and running it again records
nothing. (Much smaller scenarios are too few people for the serious-illness funds: a handful of
catastrophic stays decide their year.)"""

from __future__ import annotations

import json
import re
from decimal import Decimal

from click.testing import CliRunner

from commands.cli import main


def test_the_demo_settles_its_year_verifies_and_a_second_run_changes_nothing(cli_env: dict[str, str]) -> None:
    args = ["demo", "--members", "5000", "--claims", "50000", "--seed", "20231231"]
    first = CliRunner().invoke(main, args, env=cli_env, catch_exceptions=False)
    assert first.exit_code == 0, first.stderr
    lines = re.search(r"claim lines in this run: 50,000 \(([\d,]+) rejected, ([\d,]+) settled\)", first.stdout)
    refused = re.search(r"claim lines refused there: ([\d,]+) suspended, ([\d,]+) terminated", first.stdout)
    assert lines is not None and refused is not None, first.stdout
    # The only claims refused are those of the suspended and the terminated institution (定点 registry).
    rejected_n, suspended_n, terminated_n = (int(m.replace(",", "")) for m in (lines[1], refused[1], refused[2]))
    assert rejected_n == suspended_n + terminated_n and suspended_n > 0 and terminated_n > 0
    assert "基金收支表 Fund statement 2023" in first.stdout
    moved = re.search(r"to 330110 on 2023-07-01: (\d+) \((\d+) at once, (\d+) approved, (\d+) rejected\)", first.stdout)
    assert moved is not None, first.stdout
    total, at_once, approved, rejected = map(int, moved.groups())
    assert total == at_once + approved + rejected and at_once > 0 and approved + rejected > 0

    verified = CliRunner().invoke(main, ["verify"], env=cli_env, catch_exceptions=False)
    assert verified.exit_code == 0, verified.stdout
    assert "transfers between regions: OK" in verified.stdout

    second = CliRunner().invoke(main, args, env=cli_env, catch_exceptions=False)
    assert second.exit_code == 0, second.stderr
    assert "claim lines in this run: 50,000 (" in second.stdout and " settled)" not in second.stdout
    sheet = first.stdout.split("Summary")[0]
    assert second.stdout.split("Summary")[0] == sheet  # the same books
    flows = ("转移接续", "定点 registry", "零星报销", "生育", "paid to members")
    for flow in flows:  # the same transfers, registry refusals, payments to members and maternity
        found = [[line for line in run.stdout.splitlines() if flow in line] for run in (first, second)]
        assert found[0] and found[0] == found[1], flow
    assert first.stdout.splitlines()[-1] == "  yibao serve, and log in at http://127.0.0.1:8000/ as NAME"

    sheet_json = CliRunner().invoke(
        main, ["report", "balance-sheet", "--region", "330109", "--as-of", "2023-12-31", "--format", "json"],
        env=cli_env, catch_exceptions=False,
    )  # fmt: skip
    funds = json.loads(sheet_json.stdout)["funds"]
    assert set(funds) == {"310100", "310200", "330100", "390100", "390200", "510100", "610100", "HMB"}
    for fund, lines in funds.items():
        assert Decimal(lines["bank"]) > 0, (fund, lines["bank"])
        if fund != "310200":  # the individual accounts' balance is the members' money: no capacity to pay
            assert 3 <= Decimal(lines["months_of_capacity"]) <= 12, (fund, lines["months_of_capacity"])
