"""The error shape every client relies on: problem+json with a stable `code`, never a stack
trace, a request id on every response, and the 1 MiB body limit."""

from __future__ import annotations

import json
import re

import httpx
from sqlalchemy import func, select, text

from app.core.config import Settings
from app.core.db import Session
from app.main import create_app
from app.models import User

JSON_ENDPOINT = "/api/v1/auth/register"
PROBLEM = "application/problem+json"
ONE_MIB = 1024 * 1024


def _assert_problem(r: httpx.Response, status: int, code: str) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body = r.json()
    assert body["status"] == status
    assert body["code"] == code
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    assert body["type"].startswith("https://")
    assert "Traceback" not in r.text
    return body


def _register_body(**overrides) -> dict:
    body = {
        "email": "zhuoma@example.cn",
        "password": "long-enough-password",
        "display_name": "卓玛",
        "region_code": "330127",
    }
    body.update(overrides)
    return body


async def _user_count(session) -> int:
    return int(await session.scalar(select(func.count()).select_from(User)) or 0)


async def test_unknown_path_is_404_problem(client):
    body = _assert_problem(await client.get("/api/v1/no-such-thing"), 404, "not_found")
    assert "no-such-thing" not in body["title"]


async def test_wrong_method_is_405_problem_with_allow(client):
    r = await client.delete("/healthz")
    _assert_problem(r, 405, "method_not_allowed")
    assert "GET" in r.headers["allow"]


async def test_malformed_json_is_400(client, session):
    r = await client.post(
        JSON_ENDPOINT,
        content=b'{"email": "a@example.cn", "password": ',
        headers={"Content-Type": "application/json"},
    )
    _assert_problem(r, 400, "malformed_json")
    assert await _user_count(session) == 0


async def test_validation_error_is_422_with_errors_list(client, session):
    r = await client.post(JSON_ENDPOINT, json=_register_body(email="not-an-email", password="x"))
    body = _assert_problem(r, 422, "validation_error")
    assert isinstance(body["errors"], list) and body["errors"]
    for error in body["errors"]:
        assert set(error) >= {"loc", "msg", "type"}
        assert isinstance(error["loc"], list)
        assert isinstance(error["msg"], str)
        assert isinstance(error["type"], str)
    locs = [tuple(e["loc"]) for e in body["errors"]]
    assert ("body", "password") in locs
    assert await _user_count(session) == 0


async def test_unknown_field_is_422(client, session):
    r = await client.post(JSON_ENDPOINT, json=_register_body(role="admin"))
    body = _assert_problem(r, 422, "validation_error")
    assert ["body", "role"] in [e["loc"] for e in body["errors"]]
    assert await _user_count(session) == 0


async def test_body_over_one_mib_with_content_length_is_413(client, session):
    payload = json.dumps(_register_body(display_name="x" * (ONE_MIB + 1))).encode()
    r = await client.post(
        JSON_ENDPOINT, content=payload, headers={"Content-Type": "application/json"}
    )
    assert "content-length" in {k.lower() for k in r.request.headers}
    _assert_problem(r, 413, "payload_too_large")
    assert r.headers["x-request-id"]
    assert await _user_count(session) == 0


async def test_chunked_body_over_one_mib_is_413(client, session):
    chunk = b"x" * 64 * 1024
    sent = 0

    async def body():
        nonlocal sent
        yield b'{"email": "a@example.cn", "display_name": "'
        for _ in range(20):  # 1.25 MiB in all
            sent += 1
            yield chunk
        yield b'"}'

    r = await client.post(
        JSON_ENDPOINT, content=body(), headers={"Content-Type": "application/json"}
    )
    assert "content-length" not in {k.lower() for k in r.request.headers}
    assert r.request.headers["transfer-encoding"] == "chunked"
    _assert_problem(r, 413, "payload_too_large")
    assert await _user_count(session) == 0


async def test_chunked_body_under_the_limit_reaches_the_endpoint(client):
    async def body():
        payload = json.dumps(_register_body(email="not-an-email")).encode()
        yield payload[:10]
        yield payload[10:]

    r = await client.post(
        JSON_ENDPOINT, content=body(), headers={"Content-Type": "application/json"}
    )
    # The endpoint read the whole body and validated it.
    _assert_problem(r, 422, "validation_error")


async def test_exactly_one_mib_is_not_refused_by_the_limit(client):
    payload = json.dumps(_register_body(email="not-an-email")).encode()
    payload += b" " * (ONE_MIB - len(payload))
    assert len(payload) == ONE_MIB
    r = await client.post(
        JSON_ENDPOINT, content=payload, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 422


async def test_every_response_has_a_request_id(client):
    for r in (
        await client.get("/healthz"),
        await client.get("/nope"),
        await client.delete("/healthz"),
        await client.post(JSON_ENDPOINT, json={}),
    ):
        assert re.fullmatch(r"[0-9a-f]{32}", r.headers["x-request-id"])
    first = (await client.get("/healthz")).headers["x-request-id"]
    second = (await client.get("/healthz")).headers["x-request-id"]
    assert first != second


async def test_a_sane_incoming_request_id_is_echoed(client):
    r = await client.get("/healthz", headers={"X-Request-ID": "lb-7f3a.2026:01_x"})
    assert r.headers["x-request-id"] == "lb-7f3a.2026:01_x"


async def test_an_insane_incoming_request_id_is_replaced(client):
    for bad in ("a" * 65, "has space", "<script>", "中文", "a;b=c", ""):
        r = await client.get("/healthz", headers={"X-Request-ID": bad.encode("utf-8")})
        assert r.status_code == 200
        assert r.headers["x-request-id"] != bad
        assert re.fullmatch(r"[0-9a-f]{32}", r.headers["x-request-id"])


async def test_unexpected_exception_is_500_problem_without_a_stack_trace(app):
    @app.get("/api/v1/_boom")
    async def boom() -> None:
        raise RuntimeError("database password is hunter2")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        r = await c.get("/api/v1/_boom", headers={"X-Request-ID": "trace-me-500"})
    body = _assert_problem(r, 500, "internal_error")
    assert "hunter2" not in r.text
    assert "RuntimeError" not in r.text
    assert r.headers["x-request-id"] == "trace-me-500"
    assert "trace-me-500" in body["detail"]  # the id a user can quote to support


async def test_500_is_counted_in_the_metrics(app):
    @app.get("/api/v1/_boom2")
    async def boom() -> None:
        raise ValueError("nope")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        assert (await c.get("/api/v1/_boom2")).status_code == 500
        text = (await c.get("/metrics")).text
    assert re.search(
        r'shanhai_http_requests_total\{[^}]*route="/api/v1/_boom2"[^}]*status="500"', text
    )


async def test_an_unreachable_database_is_503_database_unavailable():
    # Nothing listens on port 1: every connection is refused at once.
    app = create_app(
        Settings(
            _env_file=None,
            environment="test",
            database_url="postgresql+asyncpg://postgres@127.0.0.1:1/shanhai",
            secret_key="k",
        )
    )
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            r = await c.get("/api/v1/products", headers={"X-Request-ID": "outage-1"})
    finally:
        await app.state.db.dispose()
    _assert_problem(r, 503, "database_unavailable")
    assert int(r.headers["retry-after"]) > 0
    assert r.headers["x-request-id"] == "outage-1"
    assert "127.0.0.1" not in r.text  # no connection details leak


async def test_other_database_and_os_errors_stay_500(app):
    @app.get("/api/v1/_bad_sql")
    async def bad_sql(session: Session) -> None:
        await session.execute(text("SELECT no_such_column FROM no_such_table"))

    @app.get("/api/v1/_disk_full")
    async def disk_full() -> None:
        raise OSError(28, "No space left on device")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        for path in ("/api/v1/_bad_sql", "/api/v1/_disk_full"):
            r = await c.get(path)
            _assert_problem(r, 500, "internal_error")
            assert "no_such" not in r.text and "space" not in r.text
