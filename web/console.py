"""The console's shared state: the store, the users registry and access log, cookies, templates."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from psycopg_pool import ConnectionPool
from starlette.templating import Jinja2Templates

from app.region import RegionApplication
from projections.balance_sheet import BalanceSheet, DailyTotals
from projections.read_model import ReadModelView, catch_up, open_view, reading
from store.access_log import AccessLog
from store.app import Store
from store.users import User, Users
from store.verify_runs import VerifyRun, VerifyRuns
from web.auth import Cookies, Throttle, secret_key

HERE = Path(__file__).resolve().parent
# A page brings its region's read model up to date at most this often (a catch-up costs queries).
CATCH_UP_SECONDS = 1.0


class Console:
    def __init__(self, store: Store, home: Path) -> None:
        self.store = store
        self.cookies = Cookies(secret_key(home))
        self.throttle = Throttle()
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))
        self._pool = ConnectionPool(store.location.url, min_size=1, max_size=4, kwargs={"autocommit": True},
                                    open=True)  # fmt: skip
        self._caught_up: dict[str, float] = {}
        self._lock = threading.Lock()
        self._views: dict[str, ReadModelView] = {}
        self._totals: dict[str, DailyTotals] = {}

    @contextmanager
    def users(self) -> Iterator[Users]:
        with self._pool.connection() as conn:
            yield Users(conn)

    @contextmanager
    def access_log(self) -> Iterator[AccessLog]:
        with self._pool.connection() as conn:
            yield AccessLog(conn)

    def latest_verify_runs(self, regions: list[str]) -> dict[str, VerifyRun]:
        with self._pool.connection() as conn:
            return VerifyRuns(conn).latest(regions)

    def active_user(self, name: str | None) -> User | None:
        if name is None:
            return None
        with self.users() as registry:
            user = registry.find(name)
        return user if user is not None and user.active else None

    def record_access(self, user: User, what: str, subject: str) -> None:
        with self.access_log() as log:
            log.record(user.name, what, subject)

    def regions(self) -> list[str]:
        return self.store.region_codes()

    def region(self, code: str) -> RegionApplication:
        """The region's application, its read model brought up to date when it may be behind."""
        with self._lock:
            app = self.store.region(code)
            if time.monotonic() - self._caught_up.get(code, -CATCH_UP_SECONDS) >= CATCH_UP_SECONDS:
                catch_up(app)
                self._caught_up[code] = time.monotonic()
        return app

    def sheet(self, code: str, as_of: dt.date) -> BalanceSheet:
        """The region's balance sheet as of a date, summed from its daily totals."""
        with self._totals_of(code) as (totals, curs, schema):
            return totals.sheet(curs, schema, code, as_of)

    def monthly(self, code: str, year: int, account: str) -> dict[str, list[int]]:
        with self._totals_of(code) as (totals, _, _):
            return totals.monthly(year, account)

    @contextmanager
    def _totals_of(self, code: str) -> Iterator[tuple[DailyTotals, Any, str]]:
        """The region's daily totals brought up to its read model's position, held under the lock
        (a refresh changes them), with a cursor on the read model."""
        app = self.region(code)
        with self._lock:
            view = self._views.setdefault(code, open_view(app))
            totals = self._totals.setdefault(code, DailyTotals())
            with reading(app) as (curs, schema):
                totals.refresh(curs, schema, view.max_tracking_id(app.name) or 0)
                yield totals, curs, schema

    def close(self) -> None:
        self._pool.close()
        self.store.close()

    def render(self, request: Any, template: str, context: dict[str, Any]) -> Any:
        return self.templates.TemplateResponse(request, template, context)
