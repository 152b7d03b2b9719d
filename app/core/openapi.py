"""The OpenAPI document, made to tell the truth about errors, auth and idempotency.

FastAPI describes each route from its signature; what it cannot see is added here, in one place,
after the document is built:

* every error response (4xx/5xx) is `application/problem+json` with the one `Problem` schema
  (FastAPI's `HTTPValidationError` is gone: our 422 is a problem with `errors`);
* the answers every route of a kind can give: `400 malformed_json` (JSON bodies),
  `400 invalid_cursor` (lists), `401` (routes that read a token), `413` (bodies over 1 MiB),
  `400 idempotency_key_required` and the `409 idempotency_*` codes (idempotent routes);
* routes that work with or without a token (`openapi_extra=OPTIONAL_AUTH`) declare the token
  optional;
* `Idempotency-Key` is a required header where it is required.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from app.core.errors import PROBLEM_JSON
from app.core.middleware import MAX_BODY_BYTES

_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
OPTIONAL_AUTH: dict[str, Any] = {"security": [{}]}
"""`openapi_extra` of a route that serves anonymous callers and reads a token when one is sent:
FastAPI lists the bearer scheme; the empty requirement added here says it may be left out."""
IDEMPOTENCY_HEADER = "Idempotency-Key"


class ProblemFieldError(BaseModel):
    """One reason a request was refused, naming the offending input."""

    loc: list[str | int] = Field(
        description='Where: `["body", "lines", 0, "quantity"]`, `["query", "limit"]`, …'
    )
    msg: str = Field(description="What is wrong, for a person.")
    type: str = Field(description="A stable machine-readable kind, e.g. `missing`, `invalid_uscc`.")


class Problem(BaseModel):
    """Every error (RFC 9457), 404 and 405 included. Act on `code`; `detail` is for people.
    Some problems carry more fields, named in the route's description (e.g. `fields`, `from` and
    `to`, `product_id`)."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(examples=["https://shanhai.example/problems/insufficient-stock"])
    title: str = Field(description="The HTTP status phrase.", examples=["Conflict"])
    status: int = Field(description="The HTTP status code, repeated.", examples=[409])
    detail: str = Field(description="What happened, for a person.")
    code: str = Field(
        description="Stable and machine-readable: `validation_error`, `insufficient_stock`, …",
        examples=["insufficient_stock"],
    )
    errors: list[ProblemFieldError] | SkipJsonSchema[None] = Field(
        default=None,
        description="On every 422: each offending input with its location.",
    )


def _add(responses: dict[str, Any], status: int, code: str, text: str) -> None:
    """Document `status` answering `code`, appending to a description the route already has
    unless it names that code."""
    key = str(status)
    current = responses.get(key)
    if current is None:
        responses[key] = {"description": text}
    elif f"`{code}`" not in current.get("description", ""):
        current["description"] = f"{current.get('description', '')} {text}".strip()


def _errors_are_problems(responses: dict[str, Any]) -> None:
    for key, response in responses.items():
        if key == "default" or int(key) >= 400:
            response["content"] = {PROBLEM_JSON: {"schema": PROBLEM_REF}}


def _idempotency(operation: dict[str, Any], responses: dict[str, Any]) -> None:
    for param in operation.get("parameters", []):
        if param["in"] == "header" and param["name"] == IDEMPOTENCY_HEADER:
            param["required"] = True
            param["schema"] = {"type": "string", "minLength": 1, "maxLength": 255}
            _add(
                responses,
                400,
                "idempotency_key_required",
                "`idempotency_key_required`: no `Idempotency-Key` header.",
            )
            _add(
                responses,
                409,
                "idempotency_key_reused",
                "`idempotency_key_reused` (the key came with another request), "
                "`idempotency_request_in_progress` (its first request is still running).",
            )


def _auth_kind(operation: dict[str, Any]) -> str | None:
    """`required`, `optional` (an empty requirement is listed: the token may be left out; see
    `OPTIONAL_AUTH`) or None."""
    security = operation.get("security") or []
    if not any(security):
        return None
    return "optional" if {} in security else "required"


def _document_operation(operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    auth = _auth_kind(operation)
    validation = responses.get("422")
    if validation is not None and validation.get("description") == "Validation Error":
        validation["description"] = "`validation_error`: see `errors`."
    invalid = "`invalid_token` (a bad or expired token, or its user is disabled)"
    if auth == "required":
        _add(responses, 401, "not_authenticated", f"`not_authenticated` (no token), {invalid}.")
    elif auth == "optional":
        _add(
            responses,
            401,
            "invalid_token",
            f"{invalid}; without a token the route serves anonymous callers.",
        )
    body = operation.get("requestBody", {}).get("content", {})
    if "application/json" in body:
        _add(responses, 400, "malformed_json", "`malformed_json`: the body is not JSON (or UTF-8).")
    if body:
        _add(
            responses,
            413,
            "payload_too_large",
            f"`payload_too_large`: the body is over {MAX_BODY_BYTES} bytes.",
        )
    names = {p["name"] for p in operation.get("parameters", [])}
    if "cursor" in names:
        _add(responses, 400, "invalid_cursor", "`invalid_cursor`: not a cursor this list gave out.")
    if names or body:
        _add(responses, 422, "validation_error", "`validation_error`: see `errors`.")
    _idempotency(operation, responses)
    _errors_are_problems(responses)


def complete_openapi(document: dict[str, Any]) -> None:
    """Complete FastAPI's document in place, as the module doc says."""
    schemas: dict[str, Any] = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(problem.pop("$defs", {}))
    schemas["Problem"] = problem
    for path_item in document.get("paths", {}).values():
        for method, operation in path_item.items():
            if method in _METHODS:
                _document_operation(operation)


def install_openapi(app: FastAPI) -> None:
    """Serve FastAPI's document (rebuilt by FastAPI when routes change), completed once."""
    build = app.openapi
    completed: list[dict[str, Any]] = []

    def openapi() -> dict[str, Any]:
        document = build()
        if not completed or completed[0] is not document:
            complete_openapi(document)
            completed[:] = [document]
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def path_methods(document: dict[str, Any], path: str) -> set[str] | None:
    """The methods the document lists for the path template matching `path`, or None."""
    for template, path_item in document.get("paths", {}).items():
        pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, path):
            methods = {m.upper() for m in path_item if m in _METHODS}
            return methods | ({"HEAD"} if "GET" in methods else set())
    return None
