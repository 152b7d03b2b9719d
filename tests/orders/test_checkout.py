"""Checkout (`POST /orders`): server prices, one merchant order per merchant, order numbers,
the payment deadline, all-or-nothing stock, products not on sale, bad input and who may buy."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest

from app.core.time import SHANGHAI
from app.models import MerchantStatus, ProductStatus, Role
from tests.fixtures.factories import auth, make_merchant, make_product, make_user
from tests.fixtures.orders import (
    ADDRESS,
    API,
    counts,
    get_order,
    idem,
    order_body,
    part_of,
    place,
    stock_of,
)


async def test_prices_come_from_the_server_and_a_later_price_change_leaves_the_order(
    client, app, session
):
    merchant, owner = await make_merchant(session)
    product = await make_product(session, merchant, price_fen=4500, stock=10)
    buyer = await make_user(session)

    order = await place(client, app, buyer, [(product, 3)])
    line = order["merchant_orders"][0]["lines"][0]
    assert (line["unit_price_fen"], line["quantity"], line["line_total_fen"]) == (4500, 3, 13500)
    assert line["name"] == product.name
    assert order["total_fen"] == 13500
    assert order["currency"] == "CNY"

    r = await client.patch(
        f"{API}/products/{product.id}", json={"price_fen": 9900}, headers=auth(app, owner)
    )
    assert r.status_code == 200, r.text
    again = await get_order(client, app, buyer, order["id"])
    assert again["total_fen"] == 13500
    assert again["merchant_orders"][0]["subtotal_fen"] == 13500
    assert again["merchant_orders"][0]["lines"][0]["unit_price_fen"] == 4500


async def test_a_price_sent_by_the_client_is_refused(client, app, session):
    merchant, _ = await make_merchant(session)
    product = await make_product(session, merchant, price_fen=4500)
    buyer = await make_user(session)
    body = order_body([(product, 1)])
    body["lines"][0]["unit_price_fen"] = 1
    r = await client.post(f"{API}/orders", json=body, headers={**auth(app, buyer), **idem()})
    assert r.status_code == 422
    assert r.json()["code"] == "validation_error"
    assert (await counts(session))["orders"] == 0


async def test_one_merchant_order_per_merchant_with_its_subtotal(client, app, session):
    m1, _ = await make_merchant(session)
    m2, _ = await make_merchant(session)
    a = await make_product(session, m1, price_fen=1000, stock=10)
    b = await make_product(session, m1, price_fen=2500, stock=10)
    c = await make_product(session, m2, price_fen=30000, stock=10)
    buyer = await make_user(session)

    order = await place(client, app, buyer, [(a, 2), (c, 1), (b, 3)])
    assert order["status"] == "pending_payment"
    assert order["payment_method"] == "bank_transfer"
    assert len(order["merchant_orders"]) == 2
    first, second = part_of(order, m1), part_of(order, m2)
    assert first["subtotal_fen"] == 2 * 1000 + 3 * 2500
    assert [(ln["product_id"], ln["quantity"]) for ln in first["lines"]] == [
        (str(a.id), 2),
        (str(b.id), 3),
    ]
    assert second["subtotal_fen"] == 30000
    assert [ln["line_total_fen"] for ln in second["lines"]] == [30000]
    assert {mo["status"] for mo in order["merchant_orders"]} == {"pending_payment"}
    assert order["total_fen"] == first["subtotal_fen"] + second["subtotal_fen"]
    assert order["shipping_address"] == {**ADDRESS, "phone": "+86" + ADDRESS["phone"]}
    assert (order["payments"], order["refunds"]) == ([], [])
    # Stock is reserved at checkout.
    assert [await stock_of(session, p) for p in (a, b, c)] == [8, 7, 9]
    # What the buyer reads back is what checkout answered.
    stored = await get_order(client, app, buyer, order["id"])
    by_id = lambda mos: sorted(mos, key=lambda mo: mo["id"])  # noqa: E731
    assert by_id(stored["merchant_orders"]) == by_id(order["merchant_orders"])
    assert stored["total_fen"] == order["total_fen"]


async def test_order_numbers_carry_the_shanghai_date_and_increase(client, app, session):
    merchant, _ = await make_merchant(session)
    product = await make_product(session, merchant, stock=10)
    buyer = await make_user(session)

    first = await place(client, app, buyer, [(product, 1)])
    second = await place(client, app, buyer, [(product, 1)])
    for order in (first, second):
        match = re.fullmatch(r"SH(\d{8})(\d+)", order["order_no"])
        assert match, order["order_no"]
        created = datetime.fromisoformat(order["created_at"]).astimezone(SHANGHAI)
        assert match.group(1) == f"{created:%Y%m%d}"
    assert first["order_no"] != second["order_no"]
    assert int(second["order_no"][2:]) > int(first["order_no"][2:])
    assert second["order_no"] > first["order_no"]


async def test_expires_at_is_the_configured_payment_timeout_after_creation(
    app_with, client, app, session
):
    merchant, _ = await make_merchant(session)
    product = await make_product(session, merchant)
    buyer = await make_user(session)

    order = await place(client, app, buyer, [(product, 1)])
    created = datetime.fromisoformat(order["created_at"])
    assert datetime.fromisoformat(order["expires_at"]) - created == timedelta(minutes=30)

    other_app, other_client = await app_with(payment_timeout_minutes=45.5)
    order = await place(other_client, other_app, buyer, [(product, 1)])
    created = datetime.fromisoformat(order["created_at"])
    expires = datetime.fromisoformat(order["expires_at"])
    assert expires.utcoffset() is not None
    assert expires - created == timedelta(minutes=45, seconds=30)
    stored = await get_order(other_client, other_app, buyer, order["id"])
    assert datetime.fromisoformat(stored["expires_at"]) == expires


async def test_the_same_product_twice_is_one_line(client, app, session):
    merchant, _ = await make_merchant(session)
    product = await make_product(session, merchant, price_fen=700, stock=10)
    other = await make_product(session, merchant, price_fen=100, stock=10)
    buyer = await make_user(session)

    order = await place(client, app, buyer, [(product, 2), (other, 1), (product, 3)])
    lines = order["merchant_orders"][0]["lines"]
    assert [(ln["product_id"], ln["quantity"], ln["line_total_fen"]) for ln in lines] == [
        (str(product.id), 5, 3500),
        (str(other.id), 1, 100),
    ]
    assert order["total_fen"] == 3600
    assert await stock_of(session, product) == 5


async def test_merged_lines_beyond_9999_units_are_refused(client, app, session):
    merchant, _ = await make_merchant(session)
    product = await make_product(session, merchant, stock=50_000)
    buyer = await make_user(session)
    before = await counts(session)

    r = await client.post(
        f"{API}/orders",
        json=order_body([(product, 5000), (product, 5000)]),
        headers={**auth(app, buyer), **idem()},
    )
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "invalid_order_line"
    assert r.json()["product_id"] == str(product.id)
    assert await counts(session) == before
    assert await stock_of(session, product) == 50_000


async def test_stock_is_all_or_nothing_and_the_short_product_is_named(client, app, session):
    merchant, _ = await make_merchant(session)
    x = await make_product(session, merchant, stock=10)
    y = await make_product(session, merchant, stock=10)
    # Stock is taken in product-id order: make the second one taken the short one, so the first
    # has already been decremented inside the transaction when the second fails.
    plenty, short = sorted([x, y], key=lambda p: p.id)
    short.stock = 1
    await session.commit()
    buyer = await make_user(session)
    before = await counts(session)

    r = await client.post(
        f"{API}/orders",
        json=order_body([(plenty, 2), (short, 2)]),
        headers={**auth(app, buyer), **idem()},
    )
    assert r.status_code == 409, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    problem = r.json()
    assert problem["code"] == "insufficient_stock"
    assert problem["product_id"] == str(short.id)
    assert short.name in problem["detail"]
    assert await stock_of(session, plenty) == 10
    assert await stock_of(session, short) == 1
    assert await counts(session) == before

    # Exactly the remaining stock is fine.
    order = await place(client, app, buyer, [(plenty, 2), (short, 1)])
    assert order["total_fen"] > 0
    assert await stock_of(session, short) == 0
    r = await client.post(
        f"{API}/orders", json=order_body([(short, 1)]), headers={**auth(app, buyer), **idem()}
    )
    assert r.status_code == 409
    assert r.json()["code"] == "insufficient_stock"


@pytest.mark.parametrize("case", ["unknown", "inactive", "pending", "rejected", "suspended"])
async def test_a_product_not_on_sale_is_unavailable_and_nothing_is_written(
    client, app, session, case
):
    merchant, _ = await make_merchant(session)
    on_sale = await make_product(session, merchant, stock=10)
    if case == "suspended":
        suspended, _ = await make_merchant(session, status=MerchantStatus.suspended)
        bad = await make_product(session, suspended, stock=10)
        bad_id = str(bad.id)
    elif case == "unknown":
        bad, bad_id = None, str(uuid.uuid4())
    else:
        status = {
            "inactive": ProductStatus.inactive,
            "pending": ProductStatus.pending_review,
            "rejected": ProductStatus.rejected,
        }[case]
        bad = await make_product(session, merchant, status=status, stock=10)
        bad_id = str(bad.id)
    buyer = await make_user(session)
    before = await counts(session)

    body = order_body([(on_sale, 1)])
    body["lines"].append({"product_id": bad_id, "quantity": 1})
    r = await client.post(f"{API}/orders", json=body, headers={**auth(app, buyer), **idem()})
    assert r.status_code == 409, r.text
    assert r.json()["code"] == "product_unavailable"
    assert r.json()["product_id"] == bad_id
    assert await counts(session) == before
    assert await stock_of(session, on_sale) == 10
    if bad is not None:
        assert await stock_of(session, bad) == 10


def _with(path: list[Any], value: Any) -> Any:
    def mutate(body: dict[str, Any]) -> None:
        target: Any = body
        for key in path[:-1]:
            target = target[key]
        if value is _DELETE:
            del target[path[-1]]
        else:
            target[path[-1]] = value

    return mutate


_DELETE = object()

BAD_INPUT = {
    "quantity 0": _with(["lines", 0, "quantity"], 0),
    "quantity -1": _with(["lines", 0, "quantity"], -1),
    "quantity 10000": _with(["lines", 0, "quantity"], 10000),
    "quantity 2**64": _with(["lines", 0, "quantity"], 2**64),
    "quantity a string": _with(["lines", 0, "quantity"], "two"),
    "quantity a float": _with(["lines", 0, "quantity"], 1.5),
    "product id not a uuid": _with(["lines", 0, "product_id"], "1; DROP TABLE orders"),
    "empty lines": _with(["lines"], []),
    "lines not a list": _with(["lines"], {"a": 1}),
    "missing address": _with(["shipping_address"], _DELETE),
    "missing lines": _with(["lines"], _DELETE),
    "bad phone": _with(["shipping_address", "phone"], "12345"),
    "landline": _with(["shipping_address", "phone"], "0571-88888888"),
    "bad region": _with(["shipping_address", "region_code"], "900000"),
    "short region": _with(["shipping_address", "region_code"], "33012"),
    "empty recipient": _with(["shipping_address", "recipient"], "  "),
    "long address": _with(["shipping_address", "address"], "路" * 201),
    "unknown payment method": _with(["payment_method"], "alipay"),
    "missing payment method": _with(["payment_method"], _DELETE),
    "extra field": _with(["total_fen"], 1),
    "extra address field": _with(["shipping_address", "zip"], "311700"),
    "long note": _with(["note"], "备" * 501),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
async def test_bad_input_is_422_and_changes_nothing(client, app, session, case):
    merchant, _ = await make_merchant(session)
    product = await make_product(session, merchant, stock=10)
    buyer = await make_user(session)
    before = await counts(session)
    body = order_body([(product, 1)])
    BAD_INPUT[case](body)

    r = await client.post(f"{API}/orders", json=body, headers={**auth(app, buyer), **idem()})
    assert r.status_code == 422, r.text
    problem = r.json()
    assert problem["code"] == "validation_error"
    assert problem["errors"] and {"loc", "msg", "type"} <= set(problem["errors"][0])
    assert await counts(session) == before
    assert await stock_of(session, product) == 10


async def test_too_many_lines_is_422(client, app, session):
    merchant, _ = await make_merchant(session)
    product = await make_product(session, merchant)
    buyer = await make_user(session)
    body = order_body([(product, 1)] * 101)
    r = await client.post(f"{API}/orders", json=body, headers={**auth(app, buyer), **idem()})
    assert r.status_code == 422
    assert r.json()["code"] == "validation_error"
    assert (await counts(session))["orders"] == 0


@pytest.mark.parametrize("raw", [b'{"lines": [', b"not json", b"[1, 2", b"{'lines': []}"])
async def test_malformed_json_is_400(client, app, session, raw):
    buyer = await make_user(session)
    r = await client.post(
        f"{API}/orders",
        content=raw,
        headers={**auth(app, buyer), **idem(), "Content-Type": "application/json"},
    )
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "malformed_json"
    assert (await counts(session))["orders"] == 0


async def test_no_body_is_422(client, app, session):
    buyer = await make_user(session)
    r = await client.post(f"{API}/orders", headers={**auth(app, buyer), **idem()})
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "validation_error"
    assert (await counts(session))["orders"] == 0


async def test_an_optional_note_is_kept(client, app, session):
    merchant, _ = await make_merchant(session)
    product = await make_product(session, merchant)
    buyer = await make_user(session)
    r = await client.post(
        f"{API}/orders",
        json=order_body([(product, 1)], note="  请周末送货  "),
        headers={**auth(app, buyer), **idem()},
    )
    assert r.status_code == 201, r.text
    assert r.json()["note"] == "请周末送货"


async def test_anonymous_checkout_is_401(client, app, session):
    merchant, _ = await make_merchant(session)
    product = await make_product(session, merchant, stock=10)
    r = await client.post(f"{API}/orders", json=order_body([(product, 1)]), headers=idem())
    assert r.status_code == 401
    assert r.json()["code"] == "not_authenticated"
    r = await client.post(
        f"{API}/orders",
        json=order_body([(product, 1)]),
        headers={**idem(), "Authorization": "Bearer not-a-token"},
    )
    assert r.status_code == 401
    assert (await counts(session))["orders"] == 0
    assert await stock_of(session, product) == 10


@pytest.mark.parametrize("role", ["merchant", "admin", "official"])
async def test_only_buyers_check_out(client, app, session, role):
    merchant, owner = await make_merchant(session)
    product = await make_product(session, merchant, stock=10)
    caller = owner if role == "merchant" else await make_user(session, role=Role(role))
    key = idem()
    r = await client.post(
        f"{API}/orders", json=order_body([(product, 1)]), headers={**auth(app, caller), **key}
    )
    assert r.status_code == 403, r.text
    assert r.json()["code"] == "forbidden"
    assert (await counts(session))["orders"] == 0
    assert await stock_of(session, product) == 10


async def test_a_disabled_buyer_cannot_check_out(client, app, session):
    merchant, _ = await make_merchant(session)
    product = await make_product(session, merchant, stock=10)
    buyer = await make_user(session, disabled=True)
    r = await client.post(
        f"{API}/orders", json=order_body([(product, 1)]), headers={**auth(app, buyer), **idem()}
    )
    assert r.status_code == 401
    assert (await counts(session))["orders"] == 0
