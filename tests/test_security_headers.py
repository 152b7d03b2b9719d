"""Security headers on every response; `Cache-Control: no-store` on every API answer that may
carry personal data (everything but anonymous reads of the public catalogue); HSTS only when the
client came over TLS."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from app.core.config import Settings
from app.main import create_app
from tests.fixtures.factories import auth, make_merchant, make_product, make_user

ALWAYS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


def _has_security_headers(r: httpx.Response) -> None:
    for name, value in ALWAYS.items():
        assert r.headers.get(name) == value, (r.request.url, name)


async def test_personal_answers_are_not_stored(client, app, session):
    merchant, owner = await make_merchant(session)
    buyer = await make_user(session)
    for who, path in [
        (buyer, "/api/v1/me"),
        (buyer, "/api/v1/me/invitations"),
        (buyer, "/api/v1/orders"),
        (owner, f"/api/v1/merchants/{merchant.id}"),
        (owner, "/api/v1/products"),  # signed in: not the anonymous catalogue
    ]:
        r = await client.get(path, headers=auth(app, who))
        assert r.status_code == 200, r.text
        assert r.headers.get("cache-control") == "no-store", path
        _has_security_headers(r)
    # Errors under the API too: they may echo what was sent.
    r = await client.get("/api/v1/me")
    assert r.status_code == 401 and r.headers.get("cache-control") == "no-store"
    r = await client.get("/api/v1/nowhere")
    assert r.status_code == 404 and r.headers.get("cache-control") == "no-store"


async def test_the_anonymous_catalogue_may_be_cached(client, app, session):
    merchant, _ = await make_merchant(session)
    product = await make_product(session, merchant)
    for path in (
        "/api/v1/categories",
        "/api/v1/products",
        f"/api/v1/products/{product.id}",
        "/api/v1/merchants",
        f"/api/v1/merchants/{merchant.id}",
    ):
        r = await client.get(path)
        assert r.status_code == 200, r.text
        assert "no-store" not in r.headers.get("cache-control", ""), path
        _has_security_headers(r)


async def test_security_headers_everywhere(client):
    for path in ("/healthz", "/docs", "/api/v1/nowhere"):
        _has_security_headers(await client.get(path))
    # Even the body-limit refusal, answered before the app runs.
    r = await client.post("/api/v1/auth/register", content=b"x" * (1024 * 1024 + 1))
    assert r.status_code == 413
    _has_security_headers(r)


async def _get(
    app: FastAPI, base_url: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, client=("10.0.0.2", 40000))
    async with httpx.AsyncClient(transport=transport, base_url=base_url) as c:
        return await c.get("/healthz", headers=headers)


async def test_hsts_only_over_tls(app):
    assert "strict-transport-security" in (await _get(app, "https://testserver")).headers
    assert "strict-transport-security" not in (await _get(app, "http://testserver")).headers
    # Without trusted proxies, nobody's X-Forwarded-Proto is believed.
    forged = await _get(app, "http://testserver", {"X-Forwarded-Proto": "https"})
    assert "strict-transport-security" not in forged.headers


@pytest.fixture
async def proxied_app(settings: Settings):
    application = create_app(settings.model_copy(update={"trusted_proxy_hops": 1}))
    try:
        yield application
    finally:
        await application.state.db.dispose()


async def test_hsts_behind_a_trusted_tls_proxy(proxied_app):
    r = await _get(proxied_app, "http://testserver", {"X-Forwarded-Proto": "https"})
    assert r.headers["strict-transport-security"].startswith("max-age=")
    r = await _get(proxied_app, "http://testserver", {"X-Forwarded-Proto": "http"})
    assert "strict-transport-security" not in r.headers
