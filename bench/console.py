"""Page load times of the console on a store (the demo's, ~640,000 events): p50 and p95 per page.

    YIBAO_HOME=... .venv/bin/python -m bench.console [--requests 30] [--as-of 2023-12-31]

Starts `yibao serve` on a free port over the store of YIBAO_HOME (or DATABASE_URL), logs in as a
user of its own (`bench-console`, an auditor, added when missing), and times each page's whole
request (server and transfer, not the browser's drawing) after a few warm-up requests.
"""

from __future__ import annotations

import argparse
import http.cookiejar
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from bench.figures import percentile
from core.roles import Role
from store.app import Store
from store.server import locate

USER, PASSWORD = "bench-console", "bench-console-password"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _samples(store: Store, region: str) -> dict[str, Any]:
    """A settlement, its member-year, the busiest line and a posting half-way down it."""
    with store.connect_admin() as conn:
        schema = f"region_{region}"
        setl_id, psn_no, year, hospital = conn.execute(
            f"SELECT setl_id, psn_no, year, hospital FROM {schema}.settlements ORDER BY setl_id LIMIT 1"  # noqa: S608
        ).fetchone()
        fund, account, count = conn.execute(
            f"SELECT fund, account, count(*) FROM {schema}.journal GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 1"  # noqa: S608
        ).fetchone()
        small = conn.execute(
            f"SELECT fund, account, count(*) FROM {schema}.journal GROUP BY 1, 2 ORDER BY 3 LIMIT 1"  # noqa: S608
        ).fetchone()
        middle = conn.execute(
            f"SELECT notification_id, leg FROM {schema}.journal WHERE fund = %s AND account = %s "  # noqa: S608
            "ORDER BY notification_id, leg OFFSET %s LIMIT 1",
            (fund, account, count // 2),
        ).fetchone()
    return {"setl_id": setl_id, "psn_no": psn_no, "year": year, "hospital": hospital, "small": small, "fund": fund,
            "account": account, "after": f"{middle[0]}:{middle[1]}", "lines": count}  # fmt: skip


def _login(opener: urllib.request.OpenerDirector, base: str) -> None:
    form = opener.open(f"{base}/login").read().decode()
    token = re.search(r'name="csrf" value="([^"]+)"', form)
    assert token, "no CSRF token on the login form"
    data = urllib.parse.urlencode({"csrf": token.group(1), "username": USER, "password": PASSWORD}).encode()
    opener.open(f"{base}/login", data=data).read()


def _time(opener: urllib.request.OpenerDirector, url: str, requests: int) -> list[float]:
    for _ in range(3):
        opener.open(url).read()
    took = []
    for _ in range(requests):
        start = time.perf_counter()
        with opener.open(url) as response:
            response.read()
            assert response.status == 200 and "/login" not in response.url, url
        took.append((time.perf_counter() - start) * 1000)
    return took


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--as-of", default="2023-12-31")
    args = parser.parse_args()
    store = Store(locate())
    with store.users() as registry:
        if registry.find(USER) is None:
            registry.add(USER, Role.AUDITOR, PASSWORD)
    region = store.region_codes()[0]
    s = _samples(store, region)
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "commands", "serve", "--port", str(port)])
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(1800):  # the server sums the daily totals before it listens
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        _login(opener, base)
        line = f"region={region}&fund={s['fund']}&account={s['account']}&as_of={args.as_of}"
        pages = {
            "overview": f"/?as_of={args.as_of}",
            "balance sheet": f"/balance-sheet?region={region}&as_of={args.as_of}",
            "balance sheet xlsx": f"/balance-sheet?region={region}&as_of={args.as_of}&format=xlsx",
            f"postings, first page ({s['lines']:,} lines)": f"/postings?{line}",
            "postings, a page half-way": f"/postings?{line}&after={s['after']}",
            f"postings, the smallest line ({s['small'][2]:,} lines)": (
                f"/postings?region={region}&fund={s['small'][0]}&account={s['small'][1]}&as_of={args.as_of}"
            ),
            "event": f"/events/{s['after'].split(':')[0]}?region={region}",
            "settlement trace": f"/settlements/{s['setl_id']}?region={region}",
            "member-year": f"/members/{s['psn_no']}/{s['year']}?region={region}",
            "search by psn_no": f"/search?q={s['psn_no']}",
            "hospitals of the year": f"/hospitals?region={region}&year={s['year']}",
            "hospital statement": f"/hospitals/{s['hospital']}?region={region}&year={s['year']}",
            "hospitals of the year, csv": f"/hospitals?region={region}&year={s['year']}&format=csv",
            "transfers": f"/transfers?region={region}",
            "approvals, pending": f"/approvals?region={region}",
            "approvals, approved": f"/approvals?region={region}&status=approved",
            "access log": "/access-log",
        }
        print(f"console pages on region {region}, {args.requests} requests each (ms):")
        for name, path in pages.items():
            try:
                took = _time(opener, base + path, args.requests)
            except urllib.error.HTTPError as exc:  # said, and the other pages still timed
                print(f"  {name:40} HTTP {exc.code}: {exc.read().decode()[:100]}")
                continue
            print(f"  {name:40} p50 {percentile(took, 0.5):7.1f}   p95 {percentile(took, 0.95):7.1f}")
    finally:
        server.terminate()
        server.wait(timeout=10)
        store.close()


if __name__ == "__main__":
    main()
