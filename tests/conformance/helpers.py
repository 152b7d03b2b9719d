"""Assertions shared by the conformance tests."""

from __future__ import annotations

from typing import Any

import httpx

API = "/api/v1"


def problem(r: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """The response is an RFC 9457 problem with this status (and code); returns its body."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers
    body: dict[str, Any] = r.json()
    assert body["status"] == status
    if code is not None:
        assert body["code"] == code, body
    return body


def unprocessable(r: httpx.Response, code: str, loc: list[str | int]) -> dict[str, Any]:
    """A 422 with `code` whose `errors` name `loc`, each error a `{loc, msg, type}`."""
    body = problem(r, 422, code)
    errors = body["errors"]
    assert errors, body
    for error in errors:
        assert set(error) == {"loc", "msg", "type"}, error
        assert isinstance(error["msg"], str) and error["msg"]
    assert loc in [e["loc"] for e in errors], errors
    return body
