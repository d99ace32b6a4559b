"""The console's overview and hospitals pages in a real browser, for what the CLI records:
a pending approval (shown until it is approved), the latest `yibao verify` run with its time,
and a hospital's reconciliation. Same server and browser as tests/e2e/test_console.py.

Amounts from policy-330109-2023.toml: a resident's inpatient claim of 10,000.00 at a level-1
hospital pays basic (10,000 - 800) * 90% = 8,280.00, one of 2,000.00 pays 1,080.00; reversals
whose fund payments are above 5,000.00 wait for an approver.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from playwright.sync_api import Browser, Page

from commands.cli import main
from tests.cli_store import claim_line, member_line
from tests.conftest import EXAMPLES
from tests.e2e.test_console import PASSWORD, _login, base_url, browser  # noqa: F401 (fixtures)
from web.pages import CHECKS_COLUMNS

REGION = "330109"
MEMBER = member_line("OV-1")


def claim(setl_id: str, inscp: str) -> dict[str, Any]:
    return claim_line(setl_id, "OV-1", inscp)


@pytest.fixture(scope="module")
def yibao(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    env = {"DATABASE_URL": database_url}

    def run(*args: str, stdin: str | None = None) -> Any:
        result = CliRunner().invoke(main, list(args), env=env, input=stdin)
        assert result.exit_code == 0, (args, result.stdout, result.stderr)
        return result

    folder = tmp_path_factory.mktemp("overview")
    policy, secret = folder / "policy.toml", folder / "password"
    policy.write_text((EXAMPLES / "policy-330109-2023.toml").read_text(encoding="utf-8")
                      + '\n[controls]\napproval_above = "5000.00"\n', encoding="utf-8")  # fmt: skip
    secret.write_text(PASSWORD + "\n")
    run("db", "up")
    run("policy", "load", str(policy))
    for name, role in (("auditor1", "auditor"), ("maker", "operator"), ("checker", "approver"), ("fin1", "finance")):
        run("users", "add", name, "--role", role, "--password-file", str(secret))
    run("members", "import", "-", stdin=json.dumps(MEMBER) + "\n")
    claims = (claim("OV-BIG", "10000.00"), claim("OV-SMALL", "2000.00"))
    run("claims", "settle", "-", stdin="".join(json.dumps(c) + "\n" for c in claims))
    return run


@pytest.fixture(scope="module")
def auditor(browser: Browser, base_url: str) -> Iterator[Page]:  # noqa: F811
    context = browser.new_context(accept_downloads=True)
    page = _login(context, base_url, "auditor1")
    assert page.url == f"{base_url}/"
    yield page
    context.close()


def _overview(page: Page, base_url: str) -> Page:  # noqa: F811
    page.goto(f"{base_url}/?as_of=2023-12-31")
    return page


def test_a_verify_run_appears_on_the_overview_with_its_time(yibao: Any, auditor: Page, base_url: str) -> None:  # noqa: F811
    verify = _overview(auditor, base_url).locator(f"#verify-{REGION}")
    assert "never run" in verify.inner_text()
    assert "warning" in (verify.get_attribute("class") or "")  # a log never verified
    before = dt.datetime.now(dt.UTC)
    yibao("verify", "--operator", "auditor1")
    verify = _overview(auditor, base_url).locator(f"#verify-{REGION}")
    at = dt.datetime.fromisoformat(verify.locator("time").get_attribute("datetime") or "")
    assert before - dt.timedelta(seconds=5) <= at <= dt.datetime.now(dt.UTC)
    text = verify.inner_text()
    assert "by auditor1" in text and verify.locator(".result").inner_text() == "OK", text
    assert "warning" not in (verify.get_attribute("class") or "")


def test_a_pending_approval_shows_on_the_overview_until_it_is_approved(
    yibao: Any,
    auditor: Page,
    base_url: str,  # noqa: F811
) -> None:
    asked = json.loads(yibao("claims", "reverse", "OV-BIG", "--operator", "maker", "--reason", "duplicate bill").stdout)
    assert (asked["status"], asked["request_id"]) == ("pending_approval", "reverse-OV-BIG-v1")
    pending = _overview(auditor, base_url).locator(f"#approvals-{REGION}")
    assert (pending.locator(".count").inner_text(), pending.locator(".amount").inner_text()) == ("1", "8280.00")
    with auditor.expect_download() as download:
        auditor.click("#export-csv")
    exported = Path(download.value.path()).read_text(encoding="utf-8").splitlines()
    assert exported[exported.index(",".join(CHECKS_COLUMNS)) + 1].startswith(f"{REGION},1,8280.00,")
    pending.locator("a").click()
    row = auditor.locator("#approvals tbody tr[data-request='reverse-OV-BIG-v1']")
    cells = row.locator("td").all_inner_texts()
    assert cells[:5] == ["reverse-OV-BIG-v1", "maker", "reverse OV-BIG v1", "8280.00", "duplicate bill"]
    assert cells[5].startswith(dt.date.today().isoformat())
    yibao("approvals", "approve", "reverse-OV-BIG-v1", "--operator", "checker")
    pending = _overview(auditor, base_url).locator(f"#approvals-{REGION}")
    assert (pending.locator(".count").inner_text(), pending.locator(".amount").inner_text()) == ("0", "0.00")
    auditor.goto(f"{base_url}/approvals?region={REGION}")
    assert auditor.locator("#approvals tbody tr[data-request]").count() == 0


def test_a_recorded_reconciliation_appears_on_the_hospitals_page(
    yibao: Any,
    auditor: Page,
    base_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    line = {
        "fixmedins_code": "H001", "insutype": "390", "clr_type": "21", "stmt_begndate": "2023-03-01",
        "stmt_enddate": "2023-03-31", "medfee_sumamt": "12000.00", "fund_pay_sumamt": "9360.00", "acct_pay": "0.00",
        "fixmedins_setl_cnt": 2, "refd_setl_flag": "0",
    }  # fmt: skip
    (tmp_path / "totals.jsonl").write_text(json.dumps(line) + "\n", encoding="utf-8")
    checked = json.loads(yibao("reconcile", "totals", str(tmp_path / "totals.jsonl"), "--operator", "fin1").stdout)
    assert checked["stmt_rslt"] == "0"
    auditor.goto(f"{base_url}/hospitals?region={REGION}&year=2023")
    cells = auditor.locator("#reconciliations tbody tr[data-hospital='H001'] td").all_inner_texts()
    assert cells == ["H001", "totals", "2023-03-01 – 2023-03-31", "0 平 agrees", dt.date.today().isoformat(), "fin1"]
    with auditor.expect_download() as download:
        auditor.click("#export-csv")
    rows = Path(download.value.path()).read_text(encoding="utf-8").splitlines()
    assert rows[rows.index("hospital,kind,begin,end,stmt_rslt,on_date,operator,position") + 1].startswith(
        f"H001,totals,2023-03-01,2023-03-31,0,{dt.date.today().isoformat()},fin1,"
    )
