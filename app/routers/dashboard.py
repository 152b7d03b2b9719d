"""The officials' dashboard: pages for people, not part of the JSON API (left out of OpenAPI).

`GET /dashboard` shows the year against its targets, the months, and a breakdown; anonymous
callers are sent to `/dashboard/login`, buyers and merchants get 403. Every figure comes from the
statistics service that answers `GET /api/v1/stats/assistance`.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from app.accounts import service as accounts
from app.accounts.errors import AccountDisabled, InvalidCredentials, TooManyAttempts
from app.accounts.throttle import client_address, get_login_throttle
from app.core.config import Settings
from app.core.db import Session, get_database
from app.core.security import decode_access_token
from app.core.time import shanghai_today
from app.dashboard import figures
from app.dashboard.pages import render
from app.dashboard.session import (
    SESSION_COOKIE,
    clear_session,
    login_csrf_ok,
    login_csrf_token,
    same_origin,
    session_csrf,
    set_login_csrf,
    set_session,
)
from app.models import Role, User

router = APIRouter(prefix="/dashboard", include_in_schema=False)

VIEWERS = (Role.official, Role.admin)


async def _signed_in(request: Request, session: Session) -> tuple[User | None, str]:
    """The user whose token the session cookie holds (re-read: a disabled user is out at once)."""
    token = request.cookies.get(SESSION_COOKIE, "")
    settings: Settings = request.app.state.settings
    user_id = decode_access_token(token, settings.secret_key) if token else None
    user = await session.get(User, user_id) if user_id else None
    if user is None or user.disabled:
        return None, ""
    return user, token


def _to_login() -> Response:
    return RedirectResponse("/dashboard/login", status_code=303)


def _forbidden(request: Request, user: User, token: str) -> Response:
    settings: Settings = request.app.state.settings
    context = {"user": user, "logout_csrf": session_csrf(settings.secret_key, token)}
    return render(request, "forbidden.html", context, status=403)


@router.get("")
async def dashboard(
    request: Request,
    session: Session,
    year: Annotated[str | None, Query(max_length=4)] = None,
    date_from: Annotated[str | None, Query(alias="from", max_length=10)] = None,
    date_to: Annotated[str | None, Query(alias="to", max_length=10)] = None,
    group_by: Annotated[str, Query(max_length=20)] = "merchant",
) -> Response:
    """The dashboard page for officials and admins."""
    user, token = await _signed_in(request, session)
    if user is None:
        return _to_login()
    if user.role not in VIEWERS:
        return _forbidden(request, user, token)
    settings: Settings = request.app.state.settings
    view = figures.View.parse(shanghai_today(), year, date_from, date_to, group_by)
    context = await figures.page_context(session, settings, view)
    context.update(
        user=user,
        logout_csrf=session_csrf(settings.secret_key, token),
        tab_urls={
            key: "/dashboard?" + urlencode(view.query(group_by=key)) for key, _ in figures.GROUPINGS
        },
        export_urls={
            fmt: "/dashboard/export?" + urlencode({**view.query(), "format": fmt})
            for fmt in ("csv", "xlsx")
        },
    )
    return render(request, "dashboard.html", context, status=400 if view.error else 200)


@router.get("/export")
async def export(
    request: Request,
    session: Session,
    export_format: Annotated[str, Query(alias="format", max_length=10)] = "csv",
    date_from: Annotated[str | None, Query(alias="from", max_length=10)] = None,
    date_to: Annotated[str | None, Query(alias="to", max_length=10)] = None,
    group_by: Annotated[str, Query(max_length=20)] = "merchant",
) -> Response:
    """The breakdown shown on the page, as the same download `GET /api/v1/stats/assistance/export`
    gives (and audited the same way)."""
    user, token = await _signed_in(request, session)
    if user is None:
        return _to_login()
    if user.role not in VIEWERS:
        return _forbidden(request, user, token)
    return await figures.export(
        session, request.app.state.settings, user, export_format, date_from, date_to, group_by
    )


@router.get("/login")
async def login_page(request: Request, session: Session) -> Response:
    """The sign-in form (the platform's accounts; officials and admins see the dashboard)."""
    user, _ = await _signed_in(request, session)
    if user is not None and user.role in VIEWERS:
        return RedirectResponse("/dashboard", status_code=303)
    return _login_form(request, username="", error=None, status=200)


def _login_form(request: Request, *, username: str, error: str | None, status: int) -> Response:
    csrf_token = login_csrf_token(request)
    context = {"username": username, "error": error, "csrf_token": csrf_token}
    response = render(request, "login.html", context, status)
    set_login_csrf(request, response, csrf_token)
    return response


@router.post("/login")
async def login(
    request: Request,
    username: Annotated[str, Form(max_length=254)],
    password: Annotated[str, Form(max_length=128)],
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """Sign in with e-mail and password: the same check, throttling and token as the API."""
    if not same_origin(request) or not login_csrf_ok(request, csrf_token):
        return _login_form(
            request, username=username, error="登录页面已过期，请重新登录。", status=403
        )
    settings: Settings = request.app.state.settings
    try:
        token = await accounts.issue_token(
            get_database(request),
            get_login_throttle(request),
            settings,
            email=username,
            password=password,
            address=client_address(request, settings.trusted_proxy_hops),
        )
    except InvalidCredentials:
        return _login_form(request, username=username, error="邮箱或密码不正确。", status=401)
    except AccountDisabled:
        return _login_form(request, username=username, error="该账号已停用。", status=401)
    except TooManyAttempts:
        return _login_form(
            request, username=username, error="尝试次数过多，请稍后再试。", status=429
        )
    response = RedirectResponse("/dashboard", status_code=303)
    set_session(request, response, token.access_token, token.expires_in)
    return response


@router.post("/logout")
async def logout(
    request: Request,
    session: Session,
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """Sign out: the session cookie is removed."""
    _, token = await _signed_in(request, session)
    settings: Settings = request.app.state.settings
    if token and (
        not same_origin(request) or csrf_token != session_csrf(settings.secret_key, token)
    ):
        return Response("无效的请求。", status_code=403, media_type="text/plain; charset=utf-8")
    response = _to_login()
    clear_session(request, response)
    return response
