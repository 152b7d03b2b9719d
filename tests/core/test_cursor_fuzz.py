"""Every list endpoint answers a cursor it did not give out with `400 invalid_cursor`
(problem+json), never a 500: random bytes, base64 of the wrong JSON, times without a zone,
values of the wrong type, overlong cursors. The lists are found in the app's OpenAPI schema
(every GET with a `cursor` query parameter), so a new list is fuzzed too; each list is given
two items, so its own cursor is harvested and forged from."""

from __future__ import annotations

import base64
import json
import random
import uuid
from datetime import datetime
from typing import Any

import pytest

from app.core.pagination import MAX_CURSOR_LENGTH
from app.models import Role
from tests.fixtures.factories import auth, make_merchant, make_product, make_user
from tests.fixtures.merchants import make_staff
from tests.fixtures.orders import place

pytestmark = pytest.mark.usefixtures("app")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _json_cursor(value: Any) -> str:
    return _b64(json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass"))


def _generic_cursors() -> list[str]:
    rng = random.Random(20261204)
    cursors = ["", "=", "!!!!", "%00", "a" * (MAX_CURSOR_LENGTH + 1), "\u6c34\u6e56"]
    cursors += [_b64(rng.randbytes(n)) for n in (1, 7, 30, 200)]
    cursors += ["".join(rng.choice("abcXYZ019-_=+/.") for _ in range(n)) for n in (3, 17, 64)]
    cursors += [_b64(b"\xff\xfe[1]"), _b64(b"[1, 2")]
    shapes: list[Any] = [None, {}, [], "x", 1, 1.5, True, [None], {"k": [1]}, [[[[[]]]]]]
    cursors += [_json_cursor(shape) for shape in shapes]
    cursors.append(_b64(b"[" * 200 + b"]" * 200))
    return cursors


NAIVE = "2026-12-04T12:00:00"
WRONG_VALUES: list[Any] = [
    None,
    True,
    -1,
    2**63,
    10**400,
    1.5,
    [],
    {},
    "",
    "not a value",
    NAIVE,
    "2026-12-04",
    "9999-12-31T23:59:59-14:00",
    "0001-01-01T00:00:00+14:00",
    "00000000-0000-0000-0000-00000000000g",
    "nul\x00byte",
    "lone \ud800 surrogate",
]


def _forgeries(real: str) -> list[str]:
    """Cursors shaped like `real` (a cursor the list gave out) with one thing wrong."""
    data = json.loads(base64.urlsafe_b64decode(real + "=" * (-len(real) % 4)))
    kind, values = data[0], data[1:]
    forged = [
        _json_cursor(["another-list", *values]),
        _json_cursor([kind]),
        _json_cursor([kind, *values, values[-1]]),
        _json_cursor([kind, *values[:-1]]),
        _json_cursor({"kind": kind, "values": values}),
    ]
    for i, value in enumerate(values):
        for wrong in WRONG_VALUES:
            if _is_wrong_for(wrong, value):
                forged.append(_json_cursor([kind, *values[:i], wrong, *values[i + 1 :]]))
    return forged


def _is_wrong_for(wrong: Any, value: Any) -> bool:
    """Whether `wrong` cannot stand where the list put `value`: another JSON type, text that is
    no time (or no id) where a time (an id) was, text a database cannot store, an integer out
    of range. Free text (an e-mail) may be any other text."""
    if isinstance(wrong, str) and ("\x00" in wrong or "\ud800" in wrong):
        return True
    if type(wrong) is not type(value):
        return True
    if isinstance(value, int):
        return not 0 <= wrong <= 2**63 - 1
    if isinstance(value, str):
        return (_parses(datetime.fromisoformat, value) or _parses(uuid.UUID, value)) and (
            wrong != value
        )
    return False


def _parses(parse: Any, text: str) -> bool:
    try:
        parse(text)
    except ValueError:
        return False
    return True


async def _cast(client, app, session) -> dict[str, Any]:
    """Two items in every list, and an admin who may read them all."""
    merchant, owner = await make_merchant(session)
    await make_merchant(session)
    await make_staff(session, merchant)
    first = await make_product(session, merchant, stock=50)
    await make_product(session, merchant, stock=50)
    buyer = await make_user(session)
    admin = await make_user(session, role=Role.admin)
    for delta in (1, 2):  # two stock adjustments, and their audit events
        r = await client.post(
            f"/api/v1/products/{first.id}/stock-adjustments",
            json={"delta": delta, "reason": "盘点"},
            headers=auth(app, owner),
        )
        assert r.status_code in (200, 201), r.text
    for _ in range(2):
        await place(client, app, buyer, [(first, 1)])
    return {
        "headers": auth(app, admin),
        "path": {"merchant_id": str(merchant.id), "product_id": str(first.id)},
    }


def _lists(app) -> list[tuple[str, dict[str, str]]]:
    """(path, extra query) for every GET with a cursor, once per value of a `sort` enum."""
    found = []
    for path, operations in app.openapi()["paths"].items():
        get = operations.get("get")
        params = get.get("parameters", []) if get else []
        if not any(p["in"] == "query" and p["name"] == "cursor" for p in params):
            continue
        sorts = [p for p in params if p["in"] == "query" and p["name"] == "sort"]
        values = sorts[0].get("schema", {}).get("enum", []) if sorts else []
        found += [(path, {"sort": v}) for v in values] or [(path, {})]
    return found


LISTS_WITHOUT_TWO_ITEMS = {"/api/v1/me/invitations", "/api/v1/refunds", "/api/v1/settlements"}


async def test_every_list_refuses_a_cursor_it_did_not_give_out(client, app, session):
    cast = await _cast(client, app, session)
    lists = _lists(app)
    assert len({path for path, _ in lists}) >= 9  # users, merchants, members, products, ...
    generic = _generic_cursors()
    for template, query in lists:
        path = template.format(**cast["path"])  # a new path parameter: add it to the cast
        first = await client.get(path, params={**query, "limit": 1}, headers=cast["headers"])
        assert first.status_code == 200, (path, first.text)
        real = first.json()["next_cursor"]
        forgeries: list[str] = []
        if real:  # lists the cast fills twice: their own cursor works, and forgeries of it fail
            second = await client.get(
                path, params={**query, "limit": 1, "cursor": real}, headers=cast["headers"]
            )
            assert second.status_code == 200, (path, second.text)
            forgeries = _forgeries(real)
        else:  # the admin's own invitations, refunds, statements: forged cursors only
            assert template in LISTS_WITHOUT_TWO_ITEMS, f"{path} gave no cursor: fill it in _cast"
        for cursor in generic + forgeries:
            r = await client.get(
                path, params={**query, "limit": 1, "cursor": cursor}, headers=cast["headers"]
            )
            assert r.status_code == 400, (path, query, cursor, r.status_code, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")
            assert r.json()["code"] == "invalid_cursor", (path, cursor, r.text)
