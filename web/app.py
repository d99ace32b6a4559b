"""The console's ASGI application (Starlette): login, then read-only pages over the books.

Starlette rather than Litestar: a small, settled toolkit whose pieces the console uses as they
are (routes, Jinja2 templates, static files, form parsing), with no model layer to bypass.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from core.errors import YibaoError, first_line
from core.roles import Role
from store.app import Store
from store.users import User
from web import pages
from web.auth import CSRF_COOKIE, SESSION_COOKIE, SESSION_SECONDS
from web.console import HERE, Console
from web.exports import export
from web.pages import Page


def _cookie(response: Response, name: str, value: str, max_age: int = SESSION_SECONDS) -> None:
    response.set_cookie(name, value, max_age=max_age, httponly=True, samesite="strict", path="/")


def _csrf(console: Console, request: Request) -> tuple[str, str | None]:
    """The request's CSRF token, and a new cookie to set when it had none."""
    token = console.cookies.csrf_of(request.cookies.get(CSRF_COOKIE))
    if token is not None:
        return token, None
    return console.cookies.new_csrf()


def page(console: Console, build: Callable[[Request, User], Page], *, role: Role | None = None) -> Callable[..., Any]:
    """A page for logged-in users: the login form without a session, 403 for another role,
    CSV or XLSX of its table with ?format=csv|xlsx, the template otherwise."""

    def endpoint(request: Request) -> Response:
        user = console.active_user(console.cookies.user_of(request.cookies.get(SESSION_COOKIE)))
        if user is None:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/login?next={quote(target)}", status_code=303)
        if role is not None and user.role != role:
            return PlainTextResponse(f"not_allowed: this page is for the {role} role", status_code=403)
        try:
            shown = build(request, user)
        except pages.NotFound as exc:
            return PlainTextResponse(f"not_found: {exc}", status_code=404)
        except YibaoError as exc:  # e.g. read_model_inconsistent: the one-line refusal, as the CLI prints it
            return PlainTextResponse(f"{exc.reason}: {first_line(exc)}", status_code=500)
        fmt = request.query_params.get("format")
        if fmt in ("csv", "xlsx"):
            return export(request.url.path.strip("/").replace("/", "-") or "overview", shown.title, shown.table, fmt)
        token, cookie = _csrf(console, request)
        context = {**shown.context, "user": user, "csrf": token, "title": shown.title, "regions": console.regions()}
        response = console.render(request, shown.template, context)
        if cookie is not None:
            _cookie(response, CSRF_COOKIE, cookie)
        return response

    return endpoint


def login_routes(console: Console) -> list[Route]:
    def login_form(request: Request, error: str | None = None, status: int = 200) -> Response:
        token, cookie = _csrf(console, request)
        context = {"csrf": token, "error": error, "next": request.query_params.get("next", "/"), "title": "登录 Log in"}
        response = console.render(request, "login.html", context)
        response.status_code = status
        if cookie is not None:
            _cookie(response, CSRF_COOKIE, cookie)
        return response

    async def login(request: Request) -> Response:
        if request.method == "GET":
            return login_form(request)
        form = await request.form()
        if not _csrf_ok(console, request, form):
            return PlainTextResponse("csrf_refused: the form's token is missing or wrong", status_code=403)
        name, password = str(form.get("username", "")), str(form.get("password", ""))
        user = await run_in_threadpool(_authenticate, console, name, password)
        if user is None:
            await asyncio.sleep(console.throttle.failed(name))
            return login_form(request, "用户名或密码错误 Wrong user name or password", 401)
        console.throttle.succeeded(name)
        target = str(form.get("next") or "/")
        response = RedirectResponse(target if target.startswith("/") and not target.startswith("//") else "/", 303)
        _cookie(response, SESSION_COOKIE, console.cookies.session(user.name))
        return response

    async def logout(request: Request) -> Response:
        form = await request.form()
        if not _csrf_ok(console, request, form):
            return PlainTextResponse("csrf_refused: the form's token is missing or wrong", status_code=403)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    return [Route("/login", login, methods=["GET", "POST"]), Route("/logout", logout, methods=["POST"])]


def _authenticate(console: Console, name: str, password: str) -> User | None:
    with console.users() as registry:
        return registry.authenticate(name, password)


def _csrf_ok(console: Console, request: Request, form: Any) -> bool:
    expected = console.cookies.csrf_of(request.cookies.get(CSRF_COOKIE))
    return expected is not None and form.get("csrf") == expected


def create_app(store: Store, home: Path) -> Starlette:
    console = Console(store, home)
    routes: list[Any] = [*login_routes(console)]
    for path, build, role in pages.ROUTES:
        routes.append(Route(path, page(console, _bound(build, console), role=role)))
    routes.append(Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"))

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        for code in console.regions():  # the daily totals, summed once before the first page
            await run_in_threadpool(console.sheet, code, dt.date.today())
        yield
        console.close()

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.console = console
    return app


def _bound(build: Callable[..., Page], console: Console) -> Callable[[Request, User], Page]:
    return lambda request, user: build(console, request, user)
