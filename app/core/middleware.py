"""One pure-ASGI middleware for what every request needs: a request id, the 1 MiB body limit,
a structured access-log line and the Prometheus metrics. (Pure ASGI: BaseHTTPMiddleware would
cost the busiest endpoint a task and a stream per request.)"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.logging import request_id_var
from app.ops import metrics

MAX_BODY_BYTES = 1024 * 1024
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
access_log = logging.getLogger("shanhai.access")


def _problem_413() -> bytes:
    return json.dumps(
        {
            "type": "https://shanhai.example/problems/payload-too-large",
            "title": "Content Too Large",
            "status": 413,
            "detail": f"The request body is over {MAX_BODY_BYTES} bytes.",
            "code": "payload_too_large",
        }
    ).encode()


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        incoming = _header(scope, b"x-request-id")
        request_id = incoming if incoming and _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        token = request_id_var.set(request_id)
        status_holder = [500]
        started_response = [False]
        rid = request_id.encode()

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                started_response[0] = True
                status_holder[0] = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", rid))
                message["headers"] = headers
            await send(message)

        try:
            too_large, receive = await _limit_body(scope, receive)
            if too_large:
                await _send_413(send_wrapper)
            else:
                await self.app(scope, receive, send_wrapper)
        except Exception:
            # Starlette's ServerErrorMiddleware sits outside this middleware, so its 500 would
            # go out without our X-Request-ID. Answer here instead (same problem+json, with
            # the header) and re-raise: the outer handler still logs the error, sees the
            # response started and sends nothing more.
            if not started_response[0]:
                await _send_500(send_wrapper, request_id)
            raise
        finally:
            elapsed = time.perf_counter() - started
            template = _route_template(scope)
            metrics.observe(scope["method"], template, status_holder[0], elapsed)
            access_log.info(
                "request",
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "route": template,
                    "status": status_holder[0],
                    "duration_ms": round(elapsed * 1000, 2),
                    "client": (scope.get("client") or ("-",))[0],
                },
            )
            request_id_var.reset(token)


def _route_template(scope: Scope) -> str:
    """The matched route's full template (`/api/v1/products/{product_id}`), a bounded label.

    FastAPI ≥ 0.16x keeps included routers whole, so `scope["route"].path` lacks the include
    prefixes (`/products/{product_id}`). Prefer the prefixed template FastAPI records in its scope;
    otherwise rebuild it: the literal prefix is what precedes the part of the path the route's
    own pattern matches."""
    route = scope.get("route")
    if route is None:
        return "unmatched"
    context = (scope.get("fastapi") or {}).get("effective_route_context")
    full = getattr(context, "path_format", None)
    if isinstance(full, str) and full:
        return full
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    if not isinstance(template, str) or not template:
        return "unmatched"
    pattern = getattr(route, "path_regex", None)
    path: str = scope.get("path", "")
    if pattern is not None and not pattern.match(path):
        for i, ch in enumerate(path):
            if ch == "/" and i > 0 and pattern.match(path[i:]):
                return path[:i] + template
    return template


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


async def _limit_body(scope: Scope, receive: Receive) -> tuple[bool, Receive]:
    """Refuse a body over the limit before the app reads it: by Content-Length when declared,
    otherwise by reading (at most the limit) and replaying what was read."""
    length = _header(scope, b"content-length")
    if length is not None:
        try:
            declared = int(length)
        except ValueError:
            declared = MAX_BODY_BYTES + 1
        return declared > MAX_BODY_BYTES, receive
    if scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE"):
        return False, receive
    chunks: list[Message] = []
    size = 0
    while True:
        message = await receive()
        chunks.append(message)
        if message["type"] != "http.request":
            break
        size += len(message.get("body", b""))
        if size > MAX_BODY_BYTES:
            return True, receive
        if not message.get("more_body", False):
            break

    async def replay() -> Message:
        if chunks:
            return chunks.pop(0)
        return await receive()

    return False, replay


async def _send_500(send: Send, request_id: str) -> None:
    body = json.dumps(
        {
            "type": "https://shanhai.example/problems/internal-error",
            "title": "Internal Server Error",
            "status": 500,
            "detail": f"Something went wrong on our side; quote request id {request_id}.",
            "code": "internal_error",
        }
    ).encode()
    headers: list[Any] = [
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": 500, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _send_413(send: Send) -> None:
    body = _problem_413()
    headers: list[Any] = [
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})
