"""Stock adjustments: one conditional UPDATE, never below zero, every adjustment kept."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import text, update
from sqlalchemy.exc import IntegrityError

from app.models import Product, ProductStatus, StockAdjustment
from tests.fixtures.catalog import adjustment_count, audit_events, make_cast, product_state
from tests.fixtures.factories import auth, make_product

API = "/api/v1"


def _url(product) -> str:
    return f"{API}/products/{product.id}/stock-adjustments"


async def test_adding_stock_answers_the_product(client, session, app):
    cast = await make_cast(session)
    product = await make_product(session, cast.merchant, stock=50)
    r = await client.post(
        _url(product), json={"delta": 25, "reason": "新一批松茸入库"}, headers=auth(app, cast.owner)
    )
    assert r.status_code == 201, r.text
    assert r.headers["etag"] == '"2"'
    assert (r.json()["id"], r.json()["stock"], r.json()["version"]) == (str(product.id), 75, 2)
    stored = await product_state(session, product.id)
    assert (stored["stock"], stored["version"]) == (75, 2)

    listed = await client.get(_url(product), headers=auth(app, cast.owner))
    assert listed.status_code == 200
    [adjustment] = listed.json()["items"]
    assert adjustment["delta"] == 25
    assert adjustment["stock_after"] == 75
    assert adjustment["reason"] == "新一批松茸入库"
    assert adjustment["actor_id"] == str(cast.owner.id)
    assert listed.json()["next_cursor"] is None

    [event] = await audit_events(session, "product.stock_adjusted")
    assert (event.subject_type, event.subject_id, event.actor_id) == (
        "product",
        str(product.id),
        cast.owner.id,
    )
    assert event.detail == {"delta": 25, "reason": "新一批松茸入库", "stock_after": 75}


async def test_staff_removes_stock_down_to_zero(client, session, app):
    cast = await make_cast(session)
    product = await make_product(session, cast.merchant, stock=3)
    r = await client.post(
        _url(product), json={"delta": -3, "reason": "破损"}, headers=auth(app, cast.staff)
    )
    assert r.status_code == 201
    assert r.json()["stock"] == 0


async def test_stock_never_goes_below_zero(client, session, app):
    cast = await make_cast(session)
    product = await make_product(session, cast.merchant, name="干松茸片", stock=3)
    r = await client.post(
        _url(product), json={"delta": -4, "reason": "盘点"}, headers=auth(app, cast.owner)
    )
    assert r.status_code == 409
    problem = r.json()
    assert problem["code"] == "insufficient_stock"
    assert "干松茸片" in problem["detail"]
    assert str(product.id) in problem["detail"]
    assert problem["product_id"] == str(product.id)
    assert problem["available"] == 3
    stored = await product_state(session, product.id)
    assert (stored["stock"], stored["version"]) == (3, 1)
    assert await adjustment_count(session, product.id) == 0
    assert await audit_events(session, "product.stock_adjusted") == []


async def test_stock_has_an_upper_limit(client, session, app):
    cast = await make_cast(session)
    product = await make_product(session, cast.merchant, stock=999_999_999)
    r = await client.post(
        _url(product), json={"delta": 2, "reason": "入库"}, headers=auth(app, cast.owner)
    )
    assert r.status_code == 409
    assert r.json()["code"] == "stock_limit_exceeded"
    r = await client.post(
        _url(product), json={"delta": 1, "reason": "入库"}, headers=auth(app, cast.owner)
    )
    assert r.status_code == 201
    assert r.json()["stock"] == 1_000_000_000


async def test_the_database_refuses_negative_stock(session, app):
    """The CHECK constraint is the backstop behind the conditional UPDATEs."""
    cast = await make_cast(session)
    product = await make_product(session, cast.merchant, stock=1)
    pid = product.id
    with pytest.raises(IntegrityError):
        await session.execute(update(Product).where(Product.id == pid).values(stock=-1))
    await session.rollback()
    with pytest.raises(IntegrityError):
        await session.execute(
            text("UPDATE products SET stock = stock - 2 WHERE id = :id"),
            {"id": pid.hex if app.state.settings.is_sqlite else pid},
        )
    await session.rollback()
    assert (await product_state(session, pid))["stock"] == 1


async def test_concurrent_removals_never_oversell(client, session, app):
    cast = await make_cast(session)
    product = await make_product(session, cast.merchant, stock=3)
    headers = auth(app, cast.owner)
    responses = await asyncio.gather(
        *(
            client.post(_url(product), json={"delta": -1, "reason": "售出"}, headers=headers)
            for _ in range(5)
        )
    )
    codes = sorted(r.status_code for r in responses)
    assert codes == [201, 201, 201, 409, 409]
    stored = await product_state(session, product.id)
    assert (stored["stock"], stored["version"]) == (0, 4)
    assert await adjustment_count(session, product.id) == 3


async def test_a_pending_product_may_be_stocked(client, session, app):
    cast = await make_cast(session)
    product = await make_product(session, cast.merchant, status=ProductStatus.pending_review)
    r = await client.post(
        _url(product), json={"delta": 10, "reason": "备货"}, headers=auth(app, cast.owner)
    )
    assert r.status_code == 201
    assert r.json()["status"] == "pending_review"


@pytest.mark.parametrize(
    "body",
    [
        {"delta": 0, "reason": "x"},
        {"delta": 1_000_000_001, "reason": "x"},
        {"delta": -1_000_000_001, "reason": "x"},
        {"delta": 2**64, "reason": "x"},
        {"delta": -(2**64), "reason": "x"},
        {"delta": "5", "reason": "x"},
        {"delta": 1.5, "reason": "x"},
        {"delta": True, "reason": "x"},
        {"delta": None, "reason": "x"},
        {"reason": "x"},
        {"delta": 1},
        {"delta": 1, "reason": ""},
        {"delta": 1, "reason": "   "},
        {"delta": 1, "reason": "x" * 201},
        {"delta": 1, "reason": "a\x00b"},
        {"delta": 1, "reason": "x", "stock_after": 5},
        [1, 2],
    ],
)
async def test_bad_adjustments_are_422(client, session, app, body):
    cast = await make_cast(session)
    product = await make_product(session, cast.merchant, stock=10)
    r = await client.post(_url(product), json=body, headers=auth(app, cast.owner))
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "validation_error"
    assert (await product_state(session, product.id))["stock"] == 10
    assert await adjustment_count(session, product.id) == 0


async def test_malformed_json_is_400(client, session, app):
    cast = await make_cast(session)
    product = await make_product(session, cast.merchant, stock=10)
    r = await client.post(
        _url(product),
        content=b'{"delta": -1, "reason": ',
        headers={**auth(app, cast.owner), "content-type": "application/json"},
    )
    assert r.status_code == 400
    assert await adjustment_count(session, product.id) == 0


async def test_adjusting_refuses_anonymous(client, session):
    cast = await make_cast(session)
    product = await make_product(session, cast.merchant, stock=10)
    r = await client.post(_url(product), json={"delta": -1, "reason": "x"})
    assert r.status_code == 401
    assert (await product_state(session, product.id))["stock"] == 10


@pytest.mark.parametrize("who", ["buyer", "official", "admin"])
async def test_adjusting_refuses_non_members(client, session, app, who):
    cast = await make_cast(session)
    product = await make_product(session, cast.merchant, stock=10)
    r = await client.post(
        _url(product), json={"delta": -1, "reason": "x"}, headers=auth(app, getattr(cast, who))
    )
    assert r.status_code == 403
    assert (await product_state(session, product.id))["stock"] == 10
    assert await adjustment_count(session, product.id) == 0


async def test_another_merchant_cannot_adjust(client, session, app):
    cast = await make_cast(session)
    on_sale = await make_product(session, cast.merchant, stock=10)
    hidden = await make_product(session, cast.merchant, stock=10, status=ProductStatus.inactive)
    headers = auth(app, cast.other_owner)
    r = await client.post(_url(on_sale), json={"delta": -1, "reason": "x"}, headers=headers)
    assert (r.status_code, r.json()["code"]) == (403, "not_merchant_member")
    r = await client.post(_url(hidden), json={"delta": -1, "reason": "x"}, headers=headers)
    assert (r.status_code, r.json()["code"]) == (404, "product_not_found")
    assert (await product_state(session, on_sale.id))["stock"] == 10
    assert (await product_state(session, hidden.id))["stock"] == 10


async def test_adjusting_an_unknown_product_is_404(client, session, app):
    cast = await make_cast(session)
    r = await client.post(
        f"{API}/products/{uuid.uuid4()}/stock-adjustments",
        json={"delta": 1, "reason": "x"},
        headers=auth(app, cast.owner),
    )
    assert r.status_code == 404


# --- the adjustment history -------------------------------------------------------------------


async def test_history_is_newest_first_and_pages(client, session, app):
    cast = await make_cast(session)
    product = await make_product(session, cast.merchant, stock=0)
    for delta in (5, -2, 10, -1, 3):
        r = await client.post(
            _url(product),
            json={"delta": delta, "reason": f"调整{delta}"},
            headers=auth(app, cast.owner),
        )
        assert r.status_code == 201
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        r = await client.get(_url(product), params=params, headers=auth(app, cast.staff))
        assert r.status_code == 200
        assert len(r.json()["items"]) <= 2
        seen += r.json()["items"]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            break
    assert [(a["delta"], a["stock_after"]) for a in seen] == [
        (3, 15),
        (-1, 12),
        (10, 13),
        (-2, 3),
        (5, 5),
    ]
    assert await adjustment_count(session, product.id) == 5


async def test_admins_read_the_history(client, session, app):
    cast = await make_cast(session)
    product = await make_product(session, cast.merchant, status=ProductStatus.rejected)
    session.add(
        StockAdjustment(product_id=product.id, delta=4, stock_after=104, reason="x", actor_id=None)
    )
    await session.commit()
    r = await client.get(_url(product), headers=auth(app, cast.admin))
    assert r.status_code == 200
    assert [a["delta"] for a in r.json()["items"]] == [4]
    r = await client.get(
        f"{API}/products/{uuid.uuid4()}/stock-adjustments", headers=auth(app, cast.admin)
    )
    assert (r.status_code, r.json()["code"]) == (404, "product_not_found")


async def test_history_is_private(client, session, app):
    cast = await make_cast(session)
    on_sale = await make_product(session, cast.merchant)
    hidden = await make_product(session, cast.merchant, status=ProductStatus.pending_review)
    assert (await client.get(_url(on_sale))).status_code == 401
    for who in (cast.buyer, cast.official):  # they see the product on sale: 403; hidden: 404
        r = await client.get(_url(on_sale), headers=auth(app, who))
        assert (r.status_code, r.json()["code"]) == (403, "not_merchant_member")
        r = await client.get(_url(hidden), headers=auth(app, who))
        assert (r.status_code, r.json()["code"]) == (404, "product_not_found")
    r = await client.get(_url(on_sale), headers=auth(app, cast.other_owner))
    assert (r.status_code, r.json()["code"]) == (403, "not_merchant_member")
    r = await client.get(_url(hidden), headers=auth(app, cast.other_owner))
    assert (r.status_code, r.json()["code"]) == (404, "product_not_found")


async def test_history_bad_cursor_is_400(client, session, app):
    cast = await make_cast(session)
    product = await make_product(session, cast.merchant)
    await make_product(session, cast.merchant)
    list_cursor = (await client.get(f"{API}/products?limit=1")).json()["next_cursor"]
    assert list_cursor is not None
    for cursor in ("garbage", list_cursor):
        r = await client.get(
            _url(product), params={"cursor": cursor}, headers=auth(app, cast.owner)
        )
        assert (r.status_code, r.json()["code"]) == (400, "invalid_cursor")
