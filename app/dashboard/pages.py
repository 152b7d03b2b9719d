"""Rendering the dashboard's pages: Jinja2 with autoescaping, and the headers every page carries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
STATIC_URL = "/dashboard/static/dashboard.css"

_env = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    auto_reload=False,
)

# No script runs on these pages; styles come from our own stylesheet; forms post only to us; no
# one may frame the page.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    # same-origin, not no-referrer: with no-referrer browsers send `Origin: null` on the page's
    # own form posts, and the sign-in and sign-out checks need the real origin
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}


def render(
    _request: Request, template: str, context: dict[str, Any], status: int = 200
) -> HTMLResponse:
    html = _env.get_template(template).render(static_url=STATIC_URL, **context)
    return HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)
