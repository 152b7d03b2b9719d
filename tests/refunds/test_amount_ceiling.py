"""Amounts have a business ceiling (`MAX_ORDER_TOTAL_FEN`, at most Stripe's 99,999,999 fen in
CNY): a price, a line total or an order total beyond it is a 422 naming the field, never a 500,
and nothing is written."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.core.config import Settings
from tests.fixtures.factories import auth, make_product
from tests.fixtures.orders import API, counts, order_body, stock_of

PRODUCT = {
    "name": "松茸礼盒",
    "category": "mushrooms",
    "unit": "盒",
    "stock": 1,
    "origin_township": "夏邛镇",
    "assistance_class": "agricultural",
}


def _names(r, field: str) -> None:
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert [e["loc"] for e in r.json()["errors"]] == [["body", field]], r.text


@pytest.mark.parametrize("price", [100_000_000, 10**15, 2**63])
async def test_a_price_beyond_stripes_limit_is_refused(client, app, cast, price):
    r = await client.post(
        f"{API}/products", json={**PRODUCT, "price_fen": price}, headers=auth(app, cast["owner1"])
    )
    _names(r, "price_fen")
    r = await client.patch(
        f"{API}/products/{cast['p1'].id}",
        json={"price_fen": price},
        headers=auth(app, cast["owner1"]),
    )
    _names(r, "price_fen")


async def test_a_lower_ceiling_bounds_prices(app_with, cast):
    other_app, other_client = await app_with(max_order_total_fen=1_000_000)
    headers = auth(other_app, cast["owner1"])
    r = await other_client.post(
        f"{API}/products", json={**PRODUCT, "price_fen": 1_000_001}, headers=headers
    )
    _names(r, "price_fen")
    r = await other_client.patch(
        f"{API}/products/{cast['p1'].id}", json={"price_fen": 1_000_001}, headers=headers
    )
    _names(r, "price_fen")
    r = await other_client.post(
        f"{API}/products", json={**PRODUCT, "price_fen": 1_000_000}, headers=headers
    )
    assert r.status_code == 201, r.text


@pytest.mark.parametrize(
    ("price", "quantity"),
    [(10**15, 9300), (20_000, 9000), (100_000_000, 1)],  # a price stored before the ceiling
)
async def test_a_checkout_beyond_the_ceiling_is_a_422(client, app, session, cast, price, quantity):
    dear = await make_product(session, cast["m1"], price_fen=price, stock=10_000)
    before = await counts(session)
    r = await client.post(
        f"{API}/orders",
        json=order_body([(dear, quantity)]),
        headers={**auth(app, cast["buyer"]), "Idempotency-Key": f"k{price}"},
    )
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "order_total_too_large"
    assert r.json()["errors"][0]["loc"] == ["body", "lines", 0, "quantity"]
    assert await counts(session) == before
    assert await stock_of(session, dear) == 10_000


async def test_the_line_that_crosses_the_ceiling_is_named(app_with, session, cast):
    other_app, other_client = await app_with(max_order_total_fen=100_000)
    r = await other_client.post(
        f"{API}/orders",
        json=order_body([(cast["p1"], 2), (cast["p2"], 5)]),  # 9,000 then 105,000 fen
        headers={**auth(other_app, cast["buyer"]), "Idempotency-Key": "two-lines"},
    )
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["loc"] == ["body", "lines", 1, "quantity"]
    r = await other_client.post(
        f"{API}/orders",
        json=order_body([(cast["p1"], 2), (cast["p2"], 4)]),  # 93,000 fen: allowed
        headers={**auth(other_app, cast["buyer"]), "Idempotency-Key": "under"},
    )
    assert r.status_code == 201, r.text


def test_the_ceiling_never_exceeds_stripes_limit():
    with pytest.raises(ValidationError):
        Settings(_env_file=None, max_order_total_fen=100_000_000)  # type: ignore[call-arg]
    assert Settings(_env_file=None).max_order_total_fen == 99_999_999  # type: ignore[call-arg]
