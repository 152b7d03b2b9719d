"""Typed errors with a stable `code`, rendered by one set of handlers as problem+json (RFC 9457)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.core.db import database_unreachable

logger = logging.getLogger("shanhai.errors")

PROBLEM_JSON = "application/problem+json"


class AppError(Exception):
    """An error the client can act on. Subclasses fix `status` and `code`."""

    status: int = 400
    code: str = "bad_request"
    title: str | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # `Unprocessable` itself is being defined when it is not yet a module name.
        base = globals().get("Unprocessable")
        if cls.status == 422 and base is not None and not issubclass(cls, base):
            raise TypeError(f"{cls.__name__}: a 422 error derives from Unprocessable (needs a loc)")

    def __init__(
        self,
        detail: str | None = None,
        *,
        code: str | None = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        if self.status == 422 and not isinstance(self, Unprocessable):
            raise TypeError("a 422 error is raised as an Unprocessable, which names its loc")
        self.detail = detail or HTTPStatus(self.status).phrase
        self.headers = headers or {}
        self.extra = extra or {}
        super().__init__(self.detail)


class BadRequest(AppError):
    status = 400
    code = "bad_request"


class Unauthorized(AppError):
    status = 401
    code = "not_authenticated"

    def __init__(self, detail: str | None = None, *, code: str | None = None) -> None:
        super().__init__(detail, code=code, headers={"WWW-Authenticate": "Bearer"})


Loc = Sequence[str | int]


class Unprocessable(AppError):
    """422: input that passed the schemas but that the domain refuses. Like a validation error
    it carries `errors: [{loc, msg, type}]`, and `loc` is required: it names the offending field
    (`("body", "lines", 0, "order_line_id")`). No other AppError may have status 422."""

    status = 422
    code = "validation_error"

    def __init__(
        self,
        detail: str,
        *,
        loc: Loc,
        msg: str | None = None,
        error_type: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        if not loc:
            raise TypeError("an Unprocessable error names the offending field in `loc`")
        super().__init__(detail, extra=extra)
        self.errors = [{"loc": list(loc), "msg": msg or detail, "type": error_type or self.code}]


class Forbidden(AppError):
    status = 403
    code = "forbidden"


class NotFound(AppError):
    status = 404
    code = "not_found"


class Conflict(AppError):
    status = 409
    code = "conflict"


class PreconditionFailed(AppError):
    status = 412
    code = "precondition_failed"


class TooManyRequests(AppError):
    status = 429
    code = "too_many_requests"


class ServiceUnavailable(AppError):
    status = 503
    code = "service_unavailable"


DATABASE_RETRY_AFTER_SECONDS = 5
"""What a 503 `database_unavailable` asks the client to wait before trying again."""


def problem(
    status: int,
    code: str,
    detail: str,
    *,
    title: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"https://shanhai.example/problems/{code.replace('_', '-')}",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
    }
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


_HTTP_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
}


def _jsonable_error(err: dict[str, Any]) -> dict[str, Any]:
    return {
        "loc": [str(p) if not isinstance(p, int) else p for p in err.get("loc", ())],
        "msg": str(err.get("msg", "")),
        "type": str(err.get("type", "value_error")),
    }


def _without_optional_branch(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """An optional field (`T | None`) that fails reports one error per branch of the union,
    with the branch's tag in `loc` (`["body", "price_fen", "constrained-int"]` and
    `["body", "price_fen", "none"]`). The client sent a value, not null: keep what is wrong with
    it, under the field's own loc."""
    optional = {
        tuple(e["loc"][:-1])
        for e in errors
        if e["type"] == "none_required" and e["loc"][-1:] == ["none"]
    }
    if not optional:
        return errors
    kept = []
    for e in errors:
        loc = e["loc"]
        if tuple(loc[:-1]) in optional and loc[-1] == "none":
            continue
        for prefix in optional:
            if len(loc) > len(prefix) and tuple(loc[: len(prefix)]) == prefix:
                loc = [*prefix, *loc[len(prefix) + 1 :]]
                break
        kept.append({**e, "loc": loc})
    return kept


async def _app_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    extra = dict(exc.extra)
    if isinstance(exc, Unprocessable):
        extra["errors"] = exc.errors
    return problem(exc.status, exc.code, exc.detail, title=exc.title, headers=exc.headers, **extra)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = _without_optional_branch([_jsonable_error(e) for e in exc.errors()])
    if any(e["type"] == "json_invalid" for e in errors):
        return problem(400, "malformed_json", "The request body is not valid JSON.")
    return problem(
        422,
        "validation_error",
        "The request is not valid: see `errors`.",
        errors=errors,
    )


def _allowed_methods(request: Request, fallback: str) -> str:
    """Every method the API documents for the request's path. (Starlette names only the
    methods of the first route on the path, so a path served by a GET route and a POST route
    would answer `Allow: GET`.)"""
    from app.core.openapi import path_methods

    methods = path_methods(request.app.openapi(), request.scope["path"])
    return ", ".join(sorted(methods)) if methods else fallback


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    headers = dict(getattr(exc, "headers", None) or {})
    if exc.status_code == 404 and detail == "Not Found":
        detail = "No such resource."
    elif exc.status_code == 405:
        headers["Allow"] = _allowed_methods(request, headers.get("Allow", ""))
        detail = f"This resource answers {headers['Allow']}."
    elif exc.status_code == 400 and isinstance(exc.__cause__, ValueError):
        # FastAPI's answer to a JSON body it could not decode (not UTF-8): malformed JSON too.
        return problem(400, "malformed_json", "The request body is not valid UTF-8 JSON.")
    return problem(exc.status_code, code, detail, headers=headers or None)


async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
    request_id = request.scope.get("state", {}).get("request_id", "-")
    logger.exception("unhandled error", extra={"request_id": request_id})
    return problem(
        500,
        "internal_error",
        f"Something went wrong on our side; quote request id {request_id}.",
    )


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    """A database that cannot be reached is a 503 the client may retry, without a stack trace;
    any other database (or OS) error is left to `_unhandled` (500)."""
    if not database_unreachable(exc):
        raise exc
    request_id = request.scope.get("state", {}).get("request_id", "-")
    logger.warning(
        "database unavailable",
        extra={"request_id": request_id, "error": type(exc).__name__},
    )
    return problem(
        503,
        "database_unavailable",
        "The database cannot be reached right now; retry shortly.",
        headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)
    # OSError covers ConnectionError and TimeoutError, as the driver raises them on connect.
    for database_error in (SQLAlchemyError, asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
        app.add_exception_handler(database_error, _database_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unhandled)
