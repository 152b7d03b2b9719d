"""Every 422 is a problem with `errors: [{loc, msg, type}]` whose `loc` names the offending
field, the domain's own 422s (each with its stable `code`) as much as schema validation."""

from __future__ import annotations

import pytest

from app.core.errors import AppError, Unprocessable
from app.models import Role
from tests.conformance.helpers import API, unprocessable
from tests.fixtures.catalog import make_cast, product_body
from tests.fixtures.factories import auth, make_merchant, make_product, make_user
from tests.fixtures.merchants import application
from tests.fixtures.orders import ADDRESS, idem, pay_by_bank, place

BAD_USCC = "91350100M000100Y4Z"


async def test_a_schema_violation_names_the_field(client, app, session):
    buyer = await make_user(session)
    body = {"lines": [{"product_id": "not-a-uuid", "quantity": 1}], "payment_method": "stripe"}
    r = await client.post(
        f"{API}/orders",
        json=body | {"shipping_address": ADDRESS},
        headers={**auth(app, buyer), **idem()},
    )
    unprocessable(r, "validation_error", ["body", "lines", 0, "product_id"])


async def test_invalid_uscc_names_the_uscc_on_apply_and_on_edit(client, app, session):
    buyer = await make_user(session)
    r = await client.post(
        f"{API}/merchants", json=application(uscc=BAD_USCC), headers=auth(app, buyer)
    )
    unprocessable(r, "invalid_uscc", ["body", "uscc"])

    merchant, _ = await make_merchant(session)
    admin = await make_user(session, role=Role.admin)
    r = await client.patch(
        f"{API}/merchants/{merchant.id}", json={"uscc": BAD_USCC}, headers=auth(app, admin)
    )
    unprocessable(r, "invalid_uscc", ["body", "uscc"])


async def test_unknown_category_names_the_category(client, app, session):
    cast = await make_cast(session)
    r = await client.post(
        f"{API}/products", json=product_body(category="spaceships"), headers=auth(app, cast.owner)
    )
    unprocessable(r, "unknown_category", ["body", "category"])
    product = await make_product(session, cast.merchant)
    r = await client.patch(
        f"{API}/products/{product.id}",
        json={"category": "spaceships"},
        headers={**auth(app, cast.owner), "If-Match": '"1"'},
    )
    unprocessable(r, "unknown_category", ["body", "category"])


async def test_invalid_order_line_names_the_line_that_went_over(client, app, session):
    merchant, _ = await make_merchant(session)
    product = await make_product(session, merchant, stock=50_000)
    other = await make_product(session, merchant, stock=10)
    buyer = await make_user(session)
    lines = [
        {"product_id": str(product.id), "quantity": 5000},
        {"product_id": str(other.id), "quantity": 1},
        {"product_id": str(product.id), "quantity": 5000},
    ]
    r = await client.post(
        f"{API}/orders",
        json={"lines": lines, "shipping_address": ADDRESS, "payment_method": "bank_transfer"},
        headers={**auth(app, buyer), **idem()},
    )
    body = unprocessable(r, "invalid_order_line", ["body", "lines", 2, "quantity"])
    assert body["product_id"] == str(product.id)


@pytest.fixture
async def paid(client, app, session):
    m1, _ = await make_merchant(session)
    m2, _ = await make_merchant(session)
    p1 = await make_product(session, m1, price_fen=4500, stock=10)
    p2 = await make_product(session, m2, price_fen=21000, stock=5)
    buyer = await make_user(session)
    admin = await make_user(session, role=Role.admin)
    order = await place(client, app, buyer, [(p1, 1), (p2, 1)])
    await pay_by_bank(client, app, buyer, admin, order)
    lines = {mo["merchant_id"]: mo["lines"][0]["id"] for mo in order["merchant_orders"]}
    return {"order": order, "buyer": buyer, "l1": lines[str(m1.id)], "l2": lines[str(m2.id)]}


async def _refund(client, app, paid, line_ids):
    return await client.post(
        f"{API}/orders/{paid['order']['id']}/refunds",
        json={
            "lines": [{"order_line_id": line_id, "quantity": 1} for line_id in line_ids],
            "reason": "包装破损",
        },
        headers={**auth(app, paid["buyer"]), **idem()},
    )


async def test_invalid_refund_line_names_the_line(client, app, paid):
    unknown = "00000000-0000-4000-8000-000000000000"
    r = await _refund(client, app, paid, [paid["l1"], unknown])
    body = unprocessable(r, "invalid_refund_line", ["body", "lines", 1, "order_line_id"])
    assert body["order_line_id"] == unknown


async def test_refund_spanning_merchants_names_the_first_line_of_the_second(client, app, paid):
    r = await _refund(client, app, paid, [paid["l1"], paid["l1"], paid["l2"]])
    unprocessable(r, "refund_spans_merchants", ["body", "lines", 2, "order_line_id"])


def test_a_422_cannot_be_written_without_a_loc():
    with pytest.raises(TypeError):

        class NoLoc(AppError):  # pragma: no cover - the class statement itself fails
            status = 422
            code = "no_loc"

    with pytest.raises(TypeError):
        AppError("bad", status=422)
    with pytest.raises(TypeError):
        Unprocessable("bad", loc=())
    error = Unprocessable("bad", loc=("body", "x"))
    assert error.errors == [{"loc": ["body", "x"], "msg": "bad", "type": "validation_error"}]
