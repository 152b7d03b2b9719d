"""The dashboard's sign-in: the same accounts and access tokens as the API, kept in a cookie.

The cookie holds the access token `POST /auth/token` would issue: HttpOnly (no script reads it),
SameSite=Strict and limited to `/dashboard` (no other site's page can make the browser send it),
Secure behind TLS. The page runs no script at all, so there is nothing for XSS to steal with; the
two state-changing forms (sign-in and sign-out) also carry a token bound to the browser
(double-submit for sign-in, an HMAC of the session for sign-out) and are refused from another
origin.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from fastapi import Request, Response

SESSION_COOKIE = "shanhai_dashboard"
CSRF_COOKIE = "shanhai_dashboard_csrf"
COOKIE_PATH = "/dashboard"


def is_secure(request: Request) -> bool:
    return request.url.scheme == "https"


def set_session(request: Request, response: Response, token: str, max_age: int) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=max_age,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=is_secure(request),
    )


def clear_session(request: Request, response: Response) -> None:
    response.delete_cookie(
        SESSION_COOKIE,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=is_secure(request),
    )


def login_csrf_token(request: Request) -> str:
    """The browser's sign-in token: the one its cookie holds, or a fresh random one."""
    return request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(32)


def set_login_csrf(request: Request, response: Response, token: str) -> None:
    response.set_cookie(
        CSRF_COOKIE,
        token,
        max_age=3600,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=is_secure(request),
    )


def login_csrf_ok(request: Request, submitted: str) -> bool:
    cookie = request.cookies.get(CSRF_COOKIE, "")
    return bool(cookie) and hmac.compare_digest(cookie, submitted)


def session_csrf(secret_key: str, session_token: str) -> str:
    """The sign-out form's token: bound to this session, unknowable without the secret."""
    return hmac.new(secret_key.encode(), session_token.encode(), hashlib.sha256).hexdigest()


def same_origin(request: Request) -> bool:
    """A form post from another site carries its own Origin (or Referer): refuse it. Browsers
    send Origin on every POST; a missing one (an old client) is let through to the token check."""
    origin = request.headers.get("origin") or request.headers.get("referer")
    if not origin:
        return True
    expected = f"{request.url.scheme}://{request.url.netloc}"
    return origin == expected or origin.startswith(expected + "/")
