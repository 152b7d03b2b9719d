"""The dashboard's sign-in from the side of those it must keep out: anonymous callers, buyers and
merchants, forged forms, other sites, and a browser after sign-out."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Role, User
from tests.fixtures.factories import PASSWORD, make_merchant, make_user

ORIGIN = "http://testserver"


async def _login_form(client: httpx.AsyncClient) -> str:
    page = await client.get("/dashboard/login")
    assert page.status_code == 200
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match
    return match.group(1)


async def _sign_in(client: httpx.AsyncClient, user: User, **headers: str) -> httpx.Response:
    token = await _login_form(client)
    return await client.post(
        "/dashboard/login",
        data={"username": user.email, "password": PASSWORD, "csrf_token": token},
        headers={"Origin": ORIGIN, **headers},
    )


async def test_anonymous_callers_are_sent_to_sign_in(client: httpx.AsyncClient) -> None:
    for path in ("/dashboard", "/dashboard/export?format=xlsx"):
        response = await client.get(path)
        assert response.status_code == 303
        assert response.headers["location"] == "/dashboard/login"


async def test_pages_forbid_scripts_framing_and_caching(client: httpx.AsyncClient) -> None:
    page = await client.get("/dashboard/login")
    csp = page.headers["content-security-policy"]
    assert "unsafe-inline" not in csp and "default-src 'none'" in csp
    assert "script-src" not in csp  # no script may run at all
    assert "frame-ancestors 'none'" in csp
    assert page.headers["cache-control"] == "no-store"
    assert "<script" not in page.text
    css = await client.get("/dashboard/static/dashboard.css")
    assert css.status_code == 200 and "http" not in css.text  # no font or asset from outside


@pytest.mark.parametrize("role", [Role.buyer, Role.merchant])
async def test_buyers_and_merchants_get_403(
    client: httpx.AsyncClient, session: AsyncSession, role: Role
) -> None:
    if role == Role.merchant:
        _, user = await make_merchant(session)
    else:
        user = await make_user(session, role=role)
    signed_in = await _sign_in(client, user)
    assert signed_in.status_code == 303
    page = await client.get("/dashboard")
    assert page.status_code == 403
    assert "无权访问" in page.text
    export = await client.get("/dashboard/export?format=csv")
    assert export.status_code == 403


async def test_a_sign_in_without_the_form_token_or_from_another_site_is_refused(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    official = await make_user(session, role=Role.official)
    token = await _login_form(client)
    forged = await client.post(
        "/dashboard/login",
        data={"username": official.email, "password": PASSWORD, "csrf_token": "guess"},
        headers={"Origin": ORIGIN},
    )
    assert forged.status_code == 403
    cross_site = await client.post(
        "/dashboard/login",
        data={"username": official.email, "password": PASSWORD, "csrf_token": token},
        headers={"Origin": "https://evil.example"},
    )
    assert cross_site.status_code == 403
    assert "shanhai_dashboard=" not in cross_site.headers.get("set-cookie", "")
    assert (await client.get("/dashboard")).status_code == 303


async def test_the_session_cookie_is_httponly_strict_and_scoped(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    official = await make_user(session, role=Role.official)
    response = await _sign_in(client, official)
    assert response.status_code == 303 and response.headers["location"] == "/dashboard"
    cookie = next(
        c for c in response.headers.get_list("set-cookie") if c.startswith("shanhai_dashboard=")
    )
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/dashboard" in cookie


async def test_a_wrong_password_shows_the_form_again(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    official = await make_user(session, role=Role.official)
    token = await _login_form(client)
    response = await client.post(
        "/dashboard/login",
        data={"username": official.email, "password": "not-the-password", "csrf_token": token},
        headers={"Origin": ORIGIN},
    )
    assert response.status_code == 401
    assert "邮箱或密码不正确" in response.text


async def test_sign_out_needs_the_page_token_and_ends_the_session(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    official = await make_user(session, role=Role.official)
    await _sign_in(client, official)
    page = await client.get("/dashboard")
    assert page.status_code == 200
    forged = await client.post(
        "/dashboard/logout", data={"csrf_token": "x"}, headers={"Origin": ORIGIN}
    )
    assert forged.status_code == 403
    assert (await client.get("/dashboard")).status_code == 200
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    out = await client.post(
        "/dashboard/logout", data={"csrf_token": token.group(1)}, headers={"Origin": ORIGIN}
    )
    assert out.status_code == 303
    assert (await client.get("/dashboard")).status_code == 303


async def test_a_disabled_official_is_out_at_once(
    client: httpx.AsyncClient, session: AsyncSession, app: FastAPI
) -> None:
    official = await make_user(session, role=Role.official)
    await _sign_in(client, official)
    assert (await client.get("/dashboard")).status_code == 200
    official.disabled = True
    await session.commit()
    assert (await client.get("/dashboard")).status_code == 303
