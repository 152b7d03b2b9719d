"""The public product list: visibility, every filter and sort with exact results, and keyset
pagination that neither repeats nor skips while products are being added."""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest

from app.core.money import MAX_FEN
from app.core.pagination import encode_cursor
from app.models import Merchant, MerchantStatus, Product, ProductStatus
from tests.fixtures.catalog import make_catalog_product
from tests.fixtures.factories import make_merchant, make_product

URL = "/api/v1/products"
T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


@dataclass
class Shop:
    a: Merchant
    b: Merchant
    pending: Merchant
    p: dict[int, Product]
    hidden: list[Product]

    def ids(self, *numbers: int) -> list[str]:
        return [str(self.p[n].id) for n in numbers]

    def by_id(self, *numbers: int, reverse: bool = False) -> list[str]:
        """The products' ids ordered by id (how ties are broken)."""
        return [str(i) for i in sorted((self.p[n].id for n in numbers), reverse=reverse)]


async def _product(session, merchant, n, **fields):
    fields.setdefault("created_at", T0 + timedelta(minutes=n))
    return await make_catalog_product(session, merchant, **fields)


@pytest.fixture
async def shop(session) -> Shop:
    a, _ = await make_merchant(session, name="巴塘县措拉松茸专业合作社")
    b, _ = await make_merchant(session, name="巴塘县夏邛特产有限公司")
    pending, _ = await make_merchant(session, status=MerchantStatus.pending)
    suspended, _ = await make_merchant(session, status=MerchantStatus.suspended)
    rejected, _ = await make_merchant(session, status=MerchantStatus.rejected)
    p = {
        1: await _product(
            session,
            a,
            1,
            name="鲜松茸 特级",
            description="七月采摘，当日发货",
            category="mushrooms",
            price_fen=28_000,
            stock=10,
            sold_units=50,
            origin_township="措拉镇",
            cert_scheme="消费帮扶产品认定",
            cert_no="XFBF-0001",
            cert_issuer="四川省农业农村厅",
            cert_valid_from=date(2025, 1, 1),
            cert_valid_to=date(2027, 12, 31),
        ),
        2: await _product(
            session,
            a,
            2,
            name="干松茸片",
            category="mushrooms",
            price_fen=45_000,
            stock=0,
            sold_units=120,
            origin_township="措拉镇",
        ),
        3: await _product(
            session,
            a,
            3,
            name="巴塘苹果 12枚礼盒",
            category="gift-packs",
            price_fen=20_000,
            stock=30,
            sold_units=120,
            origin_township="夏邛镇",
        ),
        4: await _product(
            session,
            b,
            4,
            name="牦牛肉干",
            description="风干牦牛肉 Yak jerky",
            category="meat",
            price_fen=20_000,
            stock=5,
            sold_units=7,
            origin_township="中咱镇",
        ),
        5: await _product(
            session,
            b,
            5,
            name="MACA 玛咖粉",
            description="高原玛咖",
            category="specialties",
            price_fen=3_000,
            stock=100,
            sold_units=0,
            origin_township="地巫镇",
        ),
        6: await _product(
            session,
            b,
            6,
            name="100%纯核桃油",
            description="冷榨 under_score",
            category="grains",
            price_fen=8_800,
            stock=20,
            sold_units=3,
            origin_township="夏邛镇",
        ),
        7: await _product(
            session,
            b,
            7,
            name="弦胡",
            description="巴塘弦子舞用 c:\\琴",
            category="handicrafts",
            price_fen=150_000,
            stock=2,
            sold_units=1,
            origin_township="夏邛镇",
        ),
    }
    hidden = [
        await _product(session, a, 10, name="隐藏松茸 审核中", status=ProductStatus.pending_review),
        await _product(session, a, 11, name="隐藏松茸 已下架", status=ProductStatus.inactive),
        await _product(session, a, 12, name="隐藏松茸 已驳回", status=ProductStatus.rejected),
        await _product(session, pending, 13, name="隐藏松茸 商户待审"),
        await _product(session, suspended, 14, name="隐藏松茸 商户暂停"),
        await _product(session, rejected, 15, name="隐藏松茸 商户驳回"),
    ]
    return Shop(a=a, b=b, pending=pending, p=p, hidden=hidden)


async def _ids(client, **params) -> list[str]:
    r = await client.get(URL, params=params)
    assert r.status_code == 200, r.text
    return [item["id"] for item in r.json()["items"]]


async def _walk(client, limit: int, **params) -> list[str]:
    seen: list[str] = []
    cursor = None
    for _ in range(100):
        page_params = {**params, "limit": limit, **({"cursor": cursor} if cursor else {})}
        r = await client.get(URL, params=page_params)
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["items"]) <= limit
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return seen
    raise AssertionError("the walk did not end")


# --- visibility and shape ---------------------------------------------------------------------


async def test_only_active_products_of_approved_merchants_are_listed(client, shop):
    ids = await _ids(client)
    assert ids == shop.ids(7, 6, 5, 4, 3, 2, 1)
    assert not {str(p.id) for p in shop.hidden} & set(ids)


async def test_items_carry_the_product_fields(client, shop):
    r = await client.get(URL, params={"category": "mushrooms", "sort": "price_asc"})
    assert r.status_code == 200
    body = r.json()
    assert body["next_cursor"] is None
    item = body["items"][0]
    assert item["id"] == str(shop.p[1].id)
    assert item["merchant_id"] == str(shop.a.id)
    assert item["merchant_name"] == "巴塘县措拉松茸专业合作社"
    assert (item["price_fen"], item["currency"], item["stock"], item["sold_units"]) == (
        28_000,
        "CNY",
        10,
        50,
    )
    assert item["certification"] == {
        "scheme": "消费帮扶产品认定",
        "certificate_no": "XFBF-0001",
        "issuer": "四川省农业农村厅",
        "valid_from": "2025-01-01",
        "valid_to": "2027-12-31",
    }
    assert item["status"] == "active"
    assert datetime.fromisoformat(item["created_at"]) == T0 + timedelta(minutes=1)
    assert body["items"][1]["certification"] is None


async def test_a_token_is_not_needed_nor_looked_at(client, shop):
    r = await client.get(URL, headers={"Authorization": "Bearer not-a-token"})
    assert r.status_code == 200
    assert len(r.json()["items"]) == 7


async def test_a_suspended_merchant_leaves_the_storefront(client, session, shop):
    shop.b.status = MerchantStatus.suspended
    session.add(shop.b)
    await session.commit()
    assert await _ids(client) == shop.ids(3, 2, 1)


# --- filters ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"q": "松茸"}, (2, 1)),
        ({"q": "采摘"}, (1,)),  # in the description
        ({"q": "maca"}, (5,)),  # Latin letters in either case
        ({"q": "YAK"}, (4,)),
        ({"q": "%"}, (6,)),  # LIKE wildcards are matched literally
        ({"q": "100%"}, (6,)),
        ({"q": "_"}, (6,)),
        ({"q": "\\"}, (7,)),
        ({"q": "c:\\琴"}, (7,)),
        ({"q": "  松茸  "}, (2, 1)),
        ({"q": "   "}, (7, 6, 5, 4, 3, 2, 1)),
        ({"q": "不存在"}, ()),
        ({"category": "mushrooms"}, (2, 1)),
        ({"category": "handicrafts"}, (7,)),
        ({"category": "no-such"}, ()),
        ({"township": "夏邛镇"}, (7, 6, 3)),
        ({"township": "夏邛"}, ()),  # exact, not a substring
        ({"min_price_fen": 20_000}, (7, 4, 3, 2, 1)),
        ({"max_price_fen": 20_000}, (6, 5, 4, 3)),
        ({"min_price_fen": 20_000, "max_price_fen": 20_000}, (4, 3)),
        ({"min_price_fen": 20_001, "max_price_fen": 20_000}, ()),
        ({"min_price_fen": 0, "max_price_fen": MAX_FEN}, (7, 6, 5, 4, 3, 2, 1)),
        ({"in_stock": "true"}, (7, 6, 5, 4, 3, 1)),
        ({"in_stock": "false"}, (7, 6, 5, 4, 3, 2, 1)),
        ({"category": "mushrooms", "in_stock": "true"}, (1,)),
        ({"q": "松茸", "township": "措拉镇", "max_price_fen": 30_000}, (1,)),
    ],
)
async def test_filters(client, shop, params, expected):
    assert await _ids(client, **params) == shop.ids(*expected)


async def test_merchant_filter(client, shop):
    assert await _ids(client, merchant_id=str(shop.b.id)) == shop.ids(7, 6, 5, 4)
    assert await _ids(client, merchant_id=str(shop.a.id), sort="price_desc") == shop.ids(2, 1, 3)
    assert await _ids(client, merchant_id=str(shop.pending.id)) == []
    assert await _ids(client, merchant_id=str(uuid.uuid4())) == []


# --- sorts ------------------------------------------------------------------------------------


async def test_sort_newest_is_the_default(client, shop):
    assert await _ids(client, sort="newest") == shop.ids(7, 6, 5, 4, 3, 2, 1)


async def test_sort_price_asc_breaks_ties_by_id(client, shop):
    expected = shop.ids(5, 6) + shop.by_id(3, 4) + shop.ids(1, 2, 7)
    assert await _ids(client, sort="price_asc") == expected


async def test_sort_price_desc_breaks_ties_by_id_desc(client, shop):
    expected = shop.ids(7, 2, 1) + shop.by_id(3, 4, reverse=True) + shop.ids(6, 5)
    assert await _ids(client, sort="price_desc") == expected


async def test_sort_best_selling(client, shop):
    expected = shop.by_id(2, 3, reverse=True) + shop.ids(1, 4, 6, 7, 5)
    assert await _ids(client, sort="best_selling") == expected


async def test_sort_with_filter(client, shop):
    assert await _ids(client, sort="price_asc", township="夏邛镇") == shop.ids(6, 3, 7)


# --- pagination -------------------------------------------------------------------------------


@pytest.mark.parametrize("sort", ["newest", "price_asc", "price_desc", "best_selling"])
@pytest.mark.parametrize("limit", [1, 2, 3, 7, 100])
async def test_walking_the_pages_gives_the_whole_list_once(client, shop, sort, limit):
    assert await _walk(client, limit, sort=sort) == await _ids(client, sort=sort)


async def test_a_full_last_page_has_no_next_cursor(client, shop):
    r = await client.get(URL, params={"limit": 7})
    assert r.json()["next_cursor"] is None
    r = await client.get(URL, params={"limit": 6})
    assert r.json()["next_cursor"] is not None


async def test_pages_of_a_filtered_list(client, shop):
    assert await _walk(client, 2, township="夏邛镇", sort="price_desc") == shop.ids(7, 3, 6)


async def test_default_limit_is_20(client, session):
    merchant, _ = await make_merchant(session)
    for n in range(21):
        await _product(session, merchant, n)
    r = await client.get(URL)
    assert len(r.json()["items"]) == 20
    assert r.json()["next_cursor"] is not None


@pytest.mark.parametrize("sort", ["newest", "price_asc", "best_selling"])
async def test_no_repeats_or_skips_while_products_are_added(client, session, shop, sort):
    originals = await _ids(client, sort=sort)
    seen: list[str] = []
    cursor = None
    n = 100
    while True:
        params = {"sort": sort, "limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await client.get(URL, params=params)).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
        # new products between pages: newest of all, and at prices/sales on both sides
        for price, sold in ((1, 0), (25_000, 60), (10**6, 10**6)):
            n += 1
            await make_product(
                session, shop.a, price_fen=price, sold_units=sold, created_at=datetime.now(UTC)
            )
    assert len(seen) == len(set(seen)), "an item was repeated"
    assert [i for i in seen if i in originals] == originals


# --- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 101},
        {"limit": "ten"},
        {"limit": 2**64},
        {"q": "松" * 101},
        {"q": "a\x00b"},
        {"category": "c" * 41},
        {"township": "t" * 41},
        {"merchant_id": "not-a-uuid"},
        {"min_price_fen": -1},
        {"max_price_fen": MAX_FEN + 1},
        {"min_price_fen": 2**64},
        {"max_price_fen": "1e3"},
        {"in_stock": "maybe"},
        {"sort": "cheapest"},
    ],
)
async def test_bad_query_is_422(client, shop, params):
    r = await client.get(URL, params=params)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "validation_error"
    assert r.headers["content-type"].startswith("application/problem+json")


def _raw_cursor(data) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


async def test_bad_cursors_are_400(client, shop):
    r = await client.get(URL, params={"limit": 2})
    newest_cursor = r.json()["next_cursor"]
    r = await client.get(URL, params={"limit": 2, "sort": "price_asc"})
    price_cursor = r.json()["next_cursor"]
    pid = str(shop.p[1].id)
    bad = [
        ("garbage", {}),
        ("!!!!", {}),
        (_raw_cursor({"a": 1}), {}),
        (newest_cursor, {"sort": "price_asc"}),  # another sort's cursor
        (price_cursor, {"sort": "price_desc"}),
        (price_cursor, {}),
        (_raw_cursor(["newest", "yesterday", pid]), {}),
        (_raw_cursor(["newest", "2026-03-01T08:00:00", pid]), {}),  # no offset
        (_raw_cursor(["newest", "2026-03-01T08:00:00+00:00", "nope"]), {}),
        (_raw_cursor(["newest", "2026-03-01T08:00:00+00:00"]), {}),
        (_raw_cursor(["price_asc", "100", pid]), {"sort": "price_asc"}),
        (_raw_cursor(["price_asc", True, pid]), {"sort": "price_asc"}),
        (_raw_cursor(["price_asc", 2**64, pid]), {"sort": "price_asc"}),
        (_raw_cursor(["price_asc", -5, pid]), {"sort": "price_asc"}),
        (_raw_cursor(["best_selling", 1.5, pid]), {"sort": "best_selling"}),
        (encode_cursor("stock_adjustments", ["2026-03-01T08:00:00+00:00", pid]), {}),
    ]
    for cursor, params in bad:
        r = await client.get(URL, params={**params, "cursor": cursor})
        assert r.status_code == 400, (cursor, params, r.text)
        assert r.json()["code"] == "invalid_cursor"


async def test_a_cursor_still_works_after_its_product_left(client, session, shop):
    r = await client.get(URL, params={"limit": 2})
    cursor = r.json()["next_cursor"]
    shop.p[6].status = ProductStatus.inactive
    session.add(shop.p[6])
    await session.commit()
    assert await _ids(client, cursor=cursor) == shop.ids(5, 4, 3, 2, 1)


async def test_an_overlong_cursor_is_invalid_cursor_not_a_validation_error(client):
    for path in ("/api/v1/products", "/api/v1/merchants"):
        r = await client.get(path, params={"cursor": "A" * 5000})
        assert r.status_code == 400, path
        assert r.json()["code"] == "invalid_cursor"


async def test_list_items_equal_the_product_read_field_for_field(client, session):
    """On PostgreSQL the database renders list items; they must be what GET /products/{id}
    shows: same fields, values and formats (timestamps, dates, nested certification)."""
    from datetime import date

    from tests.fixtures.factories import make_merchant, make_product

    merchant, _ = await make_merchant(session)
    tricky = await make_product(
        session,
        merchant,
        name='松茸 "特级" \\ 礼盒 🍄',
        price_fen=29900,
        category="mushrooms",
        images=["https://img.example.cn/a.jpg", "https://img.example.cn/b.jpg"],
        cert_scheme="消费帮扶产品认定",
        cert_no="XFBF-2026-0001",
        cert_issuer="四川省农业农村厅",
        cert_valid_from=date(2026, 1, 1),
        cert_valid_to=date(2027, 12, 31),
        weight_grams=500,
    )
    plain = await make_product(session, merchant, category="mushrooms")

    listed = (await client.get("/api/v1/products", params={"category": "mushrooms"})).json()
    by_id = {item["id"]: item for item in listed["items"]}
    for product in (tricky, plain):
        detail = (await client.get(f"/api/v1/products/{product.id}")).json()
        assert by_id[str(product.id)] == detail
    assert by_id[str(tricky.id)]["name"] == '松茸 "特级" \\ 礼盒 🍄'
    assert by_id[str(tricky.id)]["certification"]["valid_to"] == "2027-12-31"
    assert by_id[str(plain.id)]["certification"] is None
    assert listed["items"][0]["created_at"].endswith("+00:00")
