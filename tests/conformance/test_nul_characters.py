"""U+0000 is refused with a 422 that names where it was, in every string a client can send: each
string field of each JSON or form body, each query parameter and each declared header, of every
operation in the OpenAPI document (so a new endpoint is covered without a new test). On
PostgreSQL, where `text` cannot hold it, this used to be a 500."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

from app.core.config import Settings
from app.main import create_app
from app.models import User
from tests.conformance.helpers import API, unprocessable
from tests.fixtures.factories import auth, make_user

NUL = "a\x00b"
Loc = list[str | int]


def _resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = doc["components"]["schemas"][name]
    return schema


def _string_leaves(doc: dict[str, Any], schema: dict[str, Any], depth: int = 0) -> Iterator[Loc]:
    """Paths (below the body) of every string the schema accepts; arrays at index 0."""
    schema = _resolve(doc, schema)
    if depth > 6:
        return
    for option in schema.get("anyOf", []) + schema.get("oneOf", []) + schema.get("allOf", []):
        yield from _string_leaves(doc, option, depth + 1)
    kind = schema.get("type")
    if kind == "string" or (kind is None and "enum" in schema):
        yield []
    elif kind == "array" and "items" in schema:
        for path in _string_leaves(doc, schema["items"], depth + 1):
            yield [0, *path]
    elif kind == "object" or "properties" in schema:
        for name, sub in schema.get("properties", {}).items():
            for path in _string_leaves(doc, sub, depth + 1):
                yield [name, *path]


def _nest(path: Loc) -> Any:
    """A value holding NUL at `path` and nothing else."""
    if not path:
        return NUL
    head, *rest = path
    return [_nest(rest)] if isinstance(head, int) else {head: _nest(rest)}


def _dedupe(paths: Iterator[Loc]) -> list[Loc]:
    seen: list[Loc] = []
    for path in paths:
        if path not in seen:
            seen.append(path)
    return seen


def _cases() -> list[tuple[str, str, str, Any, Loc]]:
    """(method, path template, where, value, expected loc) for every string an operation takes."""
    settings = Settings(_env_file=None, database_url="sqlite+aiosqlite://")  # type: ignore[call-arg]
    doc = create_app(settings).openapi()
    cases: list[tuple[str, str, str, Any, Loc]] = []
    for template, item in doc["paths"].items():
        for method, op in item.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            for param in op.get("parameters", []):
                if param["in"] in ("query", "header"):
                    loc = [
                        param["in"],
                        param["name"].lower() if param["in"] == "header" else param["name"],
                    ]
                    cases.append((method, template, param["in"], param["name"], loc))
            for media, content in op.get("requestBody", {}).get("content", {}).items():
                where = "json" if "json" in media else "form"
                for path in _dedupe(_string_leaves(doc, content["schema"])):
                    cases.append((method, template, where, path, ["body", *path]))
    return cases


CASES = _cases()


def test_the_document_yields_cases_for_every_kind_of_input():
    wheres = {where for _, _, where, _, _ in CASES}
    assert wheres == {"query", "header", "json", "form"}
    assert (
        "post",
        "/api/v1/auth/register",
        "json",
        ["display_name"],
        ["body", "display_name"],
    ) in CASES
    assert any(c[1] == "/api/v1/orders" and c[4] == ["header", "idempotency-key"] for c in CASES)
    assert any(c[4] == ["body", "lines", 0, "order_line_id"] for c in CASES)
    assert any(c[4] == ["body", "bank_account", "account_no"] for c in CASES)


@pytest.mark.parametrize(
    ("method", "template", "where", "what", "loc"),
    CASES,
    ids=[f"{m.upper()} {t} {'.'.join(map(str, loc))}" for m, t, _, _, loc in CASES],
)
async def test_nul_is_a_422_naming_where_it_was(
    client, app, session, method, template, where, what, loc
):
    user = await make_user(session)
    url = template.replace("{year}", "2026")
    while "{" in url:
        start, end = url.index("{"), url.index("}")
        url = url[:start] + str(uuid.uuid4()) + url[end + 1 :]
    headers = auth(app, user)
    kwargs: dict[str, Any] = {}
    if where == "query":
        kwargs["params"] = {what: NUL}
    elif where == "header":
        headers[what] = NUL
    elif where == "json":
        kwargs["json"] = _nest(what)
    else:
        kwargs["data"] = {what[0]: NUL}
    r = await client.request(method.upper(), url, headers=headers, **kwargs)
    body = unprocessable(r, "validation_error", loc)
    assert body["errors"][0]["type"] == "string_nul"


async def test_a_sign_up_with_nul_writes_nothing_and_the_clean_one_works(client, session):
    body = {
        "email": "nul@example.cn",
        "password": "a-long-password",
        "display_name": NUL,
        "region_code": "330127",
    }
    r = await client.post(f"{API}/auth/register", json=body)
    unprocessable(r, "validation_error", ["body", "display_name"])
    assert await session.scalar(select(func.count()).select_from(User)) == 0
    await session.commit()
    r = await client.post(f"{API}/auth/register", json=body | {"display_name": "李娜"})
    assert r.status_code == 201, r.text
    # A JSON string that only spells a backslash-u is not a NUL.
    r = await client.post(
        f"{API}/auth/register",
        json=body | {"email": "slash@example.cn", "display_name": "\\u0000"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["display_name"] == "\\u0000"
