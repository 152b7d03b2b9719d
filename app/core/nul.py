"""Refuse U+0000 wherever request data could carry it to the database.

PostgreSQL's `text` cannot hold the NUL character (SQLite can, but nothing we store should), so
rather than a check per field this pure-ASGI middleware looks at the raw request before any
parsing: the query string, header values, and JSON or form bodies. A NUL anywhere is
`422 validation_error` with `errors: [{loc, msg, type: "string_nul"}]` naming where it was, so a
new endpoint, field or filter is covered without any code of its own.

The fast path costs one substring search per part: the body is decoded only when it holds a
NUL (raw, `\\u0000` in JSON or `%00` in a form), to name the field.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote_to_bytes

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.errors import PROBLEM_JSON

MESSAGE = "must not contain the NUL character (U+0000)"
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
Loc = list[str | int]


def _query_loc(raw: bytes, where: str) -> Loc | None:
    """The loc of the first `name=value` pair (query string or form) holding a NUL."""
    if b"\x00" not in raw and b"%00" not in raw:
        return None
    text = raw.decode("latin-1")
    for part in text.split("&"):
        name, _, value = part.partition("=")
        if b"\x00" in unquote_to_bytes(value) or b"\x00" in unquote_to_bytes(name):
            key = unquote_to_bytes(name.replace("+", " ")).decode("utf-8", "replace")
            return [where, key.replace("\x00", "\\u0000")]
    # Unreachable in practice: some pair held it. Name the whole part.
    return [where]


def _json_loc(value: Any, path: Loc) -> Loc | None:
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, list):
        for i, item in enumerate(value):
            found = _json_loc(item, [*path, i])
            if found is not None:
                return found
    if isinstance(value, dict):
        for key, item in value.items():
            if "\x00" in key:
                return [*path, key.replace("\x00", "\\u0000")]
            found = _json_loc(item, [*path, key])
            if found is not None:
                return found
    return None


def _body_loc(content_type: str, body: bytes) -> Loc | None:
    if "json" in content_type:
        if b"\\u0000" not in body and b"\x00" not in body:
            return None
        try:
            data = json.loads(body)
        except ValueError:
            return None  # not JSON: the app answers 400 malformed_json
        return _json_loc(data, ["body"])
    if "x-www-form-urlencoded" in content_type:
        return _query_loc(body, "body")
    if b"\x00" in body:
        return ["body"]
    return None


def _problem(loc: Loc) -> bytes:
    return json.dumps(
        {
            "type": "https://shanhai.example/problems/validation-error",
            "title": "Unprocessable Content",
            "status": 422,
            "detail": "The request is not valid: see `errors`.",
            "code": "validation_error",
            "errors": [{"loc": loc, "msg": MESSAGE, "type": "string_nul"}],
        },
        ensure_ascii=False,
    ).encode()


class RefuseNulMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        loc = _query_loc(scope.get("query_string", b""), "query")
        content_type = ""
        for name, value in scope.get("headers", ()):
            if loc is None and b"\x00" in value:
                loc = ["header", name.decode("latin-1")]
            if name == b"content-type":
                content_type = value.decode("latin-1").lower()
        if loc is None and scope["method"] in _WRITES:
            body, receive = await _read_body(receive)
            loc = _body_loc(content_type, body)
        if loc is None:
            await self.app(scope, receive, send)
            return
        payload = _problem(loc)
        await send(
            {
                "type": "http.response.start",
                "status": 422,
                "headers": [
                    (b"content-type", PROBLEM_JSON.encode()),
                    (b"content-length", str(len(payload)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})


async def _read_body(receive: Receive) -> tuple[bytes, Receive]:
    """The whole body (the outer middleware already capped it at 1 MiB), and a `receive` that
    replays it to the app."""
    messages: list[Message] = []
    chunks: list[bytes] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break

    async def replay() -> Message:
        if messages:
            return messages.pop(0)
        return await receive()

    return b"".join(chunks), replay
