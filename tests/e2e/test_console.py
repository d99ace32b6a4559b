"""The web console in a real browser (Debian's Chromium driven by Playwright), over the worked
example examples/basic-year replayed through the CLI; the server is `yibao serve` on a free port."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from projections.balance_sheet import LABELS
from tests.conftest import REPO_ROOT
from tests.e2e.test_basic_year import BASIC_YEAR, Yibao, replayed  # noqa: F401 (the fixture)
from web.console import CATCH_UP_SECONDS

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
PASSWORD = "correct horse battery"
AS_OF = "2023-12-31"
REGION = "330109"


@pytest.fixture(scope="module")
def yibao(replayed: tuple[Yibao, list[dict[str, Any]]], tmp_path_factory: pytest.TempPathFactory) -> Yibao:  # noqa: F811
    """The worked year replayed (tests/e2e/test_basic_year.py), with an auditor and a finance officer."""
    cli, _ = replayed
    secret = tmp_path_factory.mktemp("console") / "password"
    secret.write_text(PASSWORD + "\n")
    cli("users", "add", "auditor1", "--role", "auditor", "--password-file", str(secret))
    cli("users", "add", "finance1", "--role", "finance", "--password-file", str(secret))
    return cli


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def base_url(yibao: Yibao, database_url: str) -> Iterator[str]:
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": database_url}
    server = subprocess.Popen(
        [sys.executable, "-m", "commands", "serve", "--port", str(port)], cwd=REPO_ROOT, env=env
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            assert server.poll() is None, "yibao serve exited"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "yibao serve did not listen within 30 s"
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        opened = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield opened
        opened.close()


def _login(context: BrowserContext, base_url: str, name: str, password: str = PASSWORD) -> Page:
    page = context.new_page()
    page.goto(f"{base_url}/login")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    return page


@pytest.fixture(scope="module")
def auditor(browser: Browser, base_url: str) -> Iterator[Page]:
    context = browser.new_context(accept_downloads=True)
    page = _login(context, base_url, "auditor1")
    assert page.url == f"{base_url}/"
    yield page
    context.close()


def _fen(yuan: str) -> int:
    return int(Decimal(yuan) * 100)


def _report(yibao: Yibao) -> dict[str, Any]:
    return json.loads(yibao("report", "balance-sheet", "--region", REGION, "--as-of", AS_OF, "--format", "json"))


def _sheet_on_page(page: Page) -> dict[str, dict[str, str]]:
    cells = page.eval_on_selector_all(
        "#balance-sheet td", "tds => tds.map(td => [td.closest('tr').dataset.line, td.dataset.fund, td.innerText])"
    )
    sheet: dict[str, dict[str, str]] = {}
    for line, fund, text in cells:
        sheet.setdefault(fund, {})[line] = text.strip()
    return sheet


def test_a_page_without_a_session_goes_to_the_login_form(browser: Browser, base_url: str) -> None:
    context = browser.new_context()
    page = context.new_page()
    response = page.goto(f"{base_url}/balance-sheet?region={REGION}")
    assert response is not None and page.url.startswith(f"{base_url}/login?next=")
    assert page.locator("#balance-sheet").count() == 0
    context.close()


def test_a_wrong_password_is_refused(browser: Browser, base_url: str) -> None:
    context = browser.new_context()
    page = _login(context, base_url, "auditor1", "not the password")
    assert page.url.startswith(f"{base_url}/login")
    assert "Wrong user name or password" in page.inner_text("#login-error")
    assert not [c for c in context.cookies() if c["name"] == "yibao_session"]
    context.close()


def test_a_form_posted_without_its_csrf_token_is_refused(browser: Browser, base_url: str) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{base_url}/login")  # the CSRF cookie is set; the post leaves the form's token out
    response = context.request.post(f"{base_url}/login", form={"username": "auditor1", "password": PASSWORD})
    assert response.status == 403 and "csrf_refused" in response.text()
    assert not [c for c in context.cookies() if c["name"] == "yibao_session"]
    session = next(c for c in context.cookies() if c["name"] == "yibao_csrf")
    assert session["httpOnly"] and session["sameSite"] == "Strict"
    context.close()


def test_the_balance_sheet_page_equals_the_report_to_the_fen(auditor: Page, base_url: str, yibao: Yibao) -> None:
    auditor.goto(f"{base_url}/balance-sheet?region={REGION}")
    auditor.fill("input[name=as_of]", AS_OF)  # the date picker
    auditor.click("form.picker button")
    report = _report(yibao)
    shown = _sheet_on_page(auditor)
    assert set(shown) == set(report["funds"])
    for fund, lines in report["funds"].items():
        for line, value in lines.items():
            assert shown[fund][line] == (value if value is not None else "-"), f"{fund} {line}"


def test_a_lines_postings_sum_to_the_line(auditor: Page, base_url: str, yibao: Yibao) -> None:
    report = _report(yibao)
    for fund, account in (("310100", "benefit_expense"), ("310100", "payable_to_hospitals"), ("310100", "bank")):
        auditor.goto(f"{base_url}/balance-sheet?region={REGION}&as_of={AS_OF}")
        auditor.click(f"tr[data-line={account}] td[data-fund='{fund}'] a")
        auditor.goto(auditor.url + "&rows=2")  # two a page: "More" (htmx) appends each next page
        pages = 1
        while auditor.locator("a.more").count():
            href = auditor.get_attribute("a.more", "href")
            auditor.click("a.more")
            auditor.wait_for_function(f"!document.querySelector('a.more[href=\"{href}\"]')")
            pages += 1
        assert "/postings?" in auditor.url and "after=" not in auditor.url  # the pages came in place
        amounts = auditor.eval_on_selector_all("#postings td.amount", "tds => tds.map(td => td.innerText)")
        assert amounts and pages == (len(amounts) + 2) // 2, f"{fund} {account}: {len(amounts)} postings"
        assert sum(_fen(a) for a in amounts) == _fen(report["funds"][fund][account])
        assert auditor.inner_text("#line-total") == report["funds"][fund][account]


def test_a_settlements_trace_is_three_clicks_from_the_balance_sheet(auditor: Page, base_url: str) -> None:
    auditor.goto(f"{base_url}/balance-sheet?region={REGION}&as_of={AS_OF}")
    auditor.click("tr[data-line=benefit_expense] td[data-fund='310100'] a")  # 1: the line's postings
    auditor.click("#postings tr.posting a")  # 2: the first posting's event
    auditor.click("#trace-link")  # 3: its settlement's trace
    assert "/settlements/" in auditor.url
    assert auditor.locator("section.event").count() >= 1
    policy = auditor.locator("section.event dd code").first.inner_text()  # the policy's hash
    assert len(policy) == 64
    assert auditor.locator("section.event dd.chain").first.inner_text().startswith("intact")
    assert "[" in (auditor.locator("section.event dd pre").first.text_content() or "")  # its parameters (TOML)
    assert auditor.locator("section.event table").count() >= 1  # amounts and postings


def test_an_export_holds_what_the_page_shows(auditor: Page, base_url: str, yibao: Yibao, tmp_path: Path) -> None:
    from openpyxl import load_workbook

    auditor.goto(f"{base_url}/balance-sheet?region={REGION}&as_of={AS_OF}")
    with auditor.expect_download() as xlsx:
        auditor.click("#export-xlsx")
    path = tmp_path / "sheet.xlsx"
    xlsx.value.save_as(path)
    rows = list(load_workbook(path).active.iter_rows(values_only=True))
    funds = rows[0][2:]
    report = _report(yibao)
    assert set(funds) == set(report["funds"])
    by_label = {en: name for name, (_, en) in LABELS.items()}
    for row in rows[1:]:
        for fund, value in zip(funds, row[2:], strict=True):
            want = report["funds"][fund][by_label[str(row[0])]]
            got = None if value in (None, "") else Decimal(str(value))  # exact: yuan with two decimals
            assert got == (Decimal(want) if want is not None else None), f"{fund} {row[0]}"
    with auditor.expect_download() as csv_download:
        auditor.click("#export-csv")
    text = Path(csv_download.value.path()).read_text(encoding="utf-8")
    assert text.splitlines()[0].split(",")[2:] == list(funds)


def test_the_access_log_records_a_member_view(browser: Browser, auditor: Page, base_url: str) -> None:
    context = browser.new_context()
    finance = _login(context, base_url, "finance1")
    finance.goto(f"{base_url}/search?q=P-D")
    finance.click("#found a")
    assert "/members/P-D/" in finance.url
    assert finance.locator("#usage").count() == 1
    headroom = finance.eval_on_selector_all(
        "#headroom tbody tr", "trs => trs.map(tr => Array.from(tr.cells).map(td => td.innerText))"
    )
    # P-D: employee scheme 310 (annual cap 600000.00, outpatient 5000.00), examples/basic-year/expected-usage.jsonl
    assert headroom[:2] == [
        ["basic_paid", "50510.00", "600000.00", "549490.00"],
        ["basic_outpatient_paid", "350.00", "5000.00", "4650.00"],
    ]
    refused = context.request.get(f"{base_url}/access-log")
    assert refused.status == 403  # the log is for auditors
    context.close()
    auditor.goto(f"{base_url}/access-log")
    rows = auditor.eval_on_selector_all(
        "#access-log tbody tr", "trs => trs.map(tr => Array.from(tr.cells).map(td => td.innerText))"
    )
    seen = [(r[2], r[3], r[4]) for r in rows]
    assert ("finance1", "search", "P-D") in seen
    assert ("finance1", "member-year", f"{REGION}/P-D/2023") in seen


def test_the_balance_sheet_follows_what_is_settled_while_the_console_runs(
    auditor: Page, base_url: str, yibao: Yibao
) -> None:
    auditor.goto(f"{base_url}/balance-sheet?region={REGION}&as_of={AS_OF}")  # the daily totals are summed
    claim = next(
        op["claim"] for op in map(json.loads, (BASIC_YEAR / "operations.jsonl").open()) if op["op"] == "settle"
    )
    out = yibao("claims", "settle", "-", stdin=json.dumps({**claim, "setl_id": "S-CONSOLE-1"}) + "\n")
    assert json.loads(out)["status"] == "settled"
    time.sleep(CATCH_UP_SECONDS + 0.1)
    auditor.goto(f"{base_url}/balance-sheet?region={REGION}&as_of={AS_OF}")
    report = _report(yibao)
    shown = _sheet_on_page(auditor)
    for fund, lines in report["funds"].items():
        assert {line: shown[fund][line] for line in lines} == {k: v or "-" for k, v in lines.items()}


def test_a_hospitals_statement_equals_the_report(auditor: Page, base_url: str, yibao: Yibao) -> None:
    auditor.goto(f"{base_url}/hospitals?region={REGION}&year=2023")
    code = auditor.locator("#hospitals td a").first.inner_text()
    auditor.click("#hospitals td a")
    report = json.loads(yibao("report", "hospital", "--region", REGION, "--hospital", code, "--year", "2023"))
    cells = auditor.eval_on_selector_all(
        "#statement tbody tr", "trs => trs.map(tr => Array.from(tr.cells).map(td => td.innerText))"
    )
    columns = ("settled", "deducted", "paid", "recovered", "outstanding", "receivable")
    assert {row[0]: dict(zip(columns, row[1:], strict=True)) for row in cells} == report["funds"]


def test_the_transfers_page_lists_none_in_a_region_without_any(auditor: Page, base_url: str) -> None:
    auditor.goto(f"{base_url}/transfers?region={REGION}")
    assert auditor.inner_text("#transfers tbody") == "no transfers"


def test_the_overview_shows_each_funds_balance_surplus_and_months(auditor: Page, base_url: str, yibao: Yibao) -> None:
    auditor.goto(f"{base_url}/?as_of={AS_OF}")
    rows = auditor.eval_on_selector_all(
        "section.region table tbody tr", "trs => trs.map(tr => Array.from(tr.cells).map(td => td.innerText))"
    )
    report = _report(yibao)["funds"]
    assert {r[0]: r[1:] for r in rows} == {
        fund: [v["balance"], v["surplus_of_year"], v["months_of_capacity"] or "-"] for fund, v in report.items()
    }
    assert auditor.locator("section.region .chart canvas").count() >= 1  # ECharts drew the monthly chart
    assert "0 pending_review" in auditor.inner_text(f"#pending-{REGION}")
