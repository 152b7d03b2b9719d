"""Liveness, readiness and metrics: outside /api/v1, no authentication."""

from __future__ import annotations

import asyncio
import time

import httpx

from app.core.config import Settings
from app.main import create_app

UNREACHABLE_DB = "postgresql+asyncpg://postgres@127.0.0.1:1/x"


async def test_healthz_answers_without_touching_the_database():
    # An app whose database cannot be reached is still alive.
    app = create_app(
        Settings(_env_file=None, environment="test", database_url=UNREACHABLE_DB, secret_key="k")
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        r = await c.get("/healthz")
    await app.state.db.dispose()
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


async def test_readyz_when_the_database_answers(client):
    r = await client.get("/readyz")
    assert r.status_code == 200
    assert r.json() == {"status": "ready"}
    assert r.headers["x-request-id"]


async def test_readyz_is_503_problem_when_the_database_does_not_answer():
    app = create_app(
        Settings(_env_file=None, environment="test", database_url=UNREACHABLE_DB, secret_key="k")
    )
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", timeout=10
        ) as c:
            r = await c.get("/readyz")
    finally:
        await app.state.db.dispose()
    assert r.status_code == 503
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["code"] == "not_ready"
    assert body["status"] == 503
    assert "Traceback" not in r.text
    assert "127.0.0.1" not in r.text  # no connection details leak


async def test_readyz_gives_up_on_a_database_that_hangs():
    # A server that accepts connections and never says a word.
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    app = create_app(
        Settings(
            _env_file=None,
            environment="test",
            database_url=f"postgresql+asyncpg://postgres@127.0.0.1:{port}/x",
            secret_key="k",
        )
    )
    transport = httpx.ASGITransport(app=app)
    started = time.monotonic()
    try:
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", timeout=30
        ) as c:
            r = await c.get("/readyz")
    finally:
        await app.state.db.dispose()
        server.close()
    assert r.status_code == 503
    assert r.json()["code"] == "not_ready"
    assert time.monotonic() - started < 10


async def test_ops_endpoints_are_outside_the_api_prefix(client):
    for path in ("/api/v1/healthz", "/api/v1/readyz", "/api/v1/metrics"):
        r = await client.get(path)
        assert r.status_code == 404, path


async def test_metrics_count_requests_by_route_template(client):
    await client.get("/api/v1/categories")
    await client.get("/healthz")
    await client.get("/no/such/path/123")
    r = await client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert "shanhai_http_requests_total" in text
    assert "shanhai_http_request_duration_seconds_bucket" in text
    assert 'route="/healthz"' in text
    assert 'route="/api/v1/categories"' in text
    # An unknown path is one label, not one per path (bounded cardinality).
    assert 'route="unmatched"' in text
    assert "/no/such/path/123" not in text


async def test_metrics_use_the_template_not_the_concrete_path(app, client):
    @app.get("/api/v1/_probe/{item_id}")
    async def probe(item_id: int) -> dict[str, int]:
        return {"item_id": item_id}

    assert (await client.get("/api/v1/_probe/41")).status_code == 200
    assert (await client.get("/api/v1/_probe/42")).status_code == 200
    text = (await client.get("/metrics")).text
    assert 'route="/api/v1/_probe/{item_id}"' in text
    assert "/_probe/41" not in text


async def test_metrics_label_routes_of_included_routers_with_their_prefix(client):
    product_id = "0b7e3f4a-0000-4000-8000-000000000001"
    await client.get(f"/api/v1/products/{product_id}")  # 404, but the route matched
    text = (await client.get("/metrics")).text
    assert 'route="/api/v1/products/{product_id}"' in text
    assert product_id not in text
