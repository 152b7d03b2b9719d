"""Products: creation, reading, editing with If-Match, the review workflow, and who may do what."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest

from app.core.money import MAX_FEN, STRIPE_MAX_CNY_FEN
from app.models import MerchantStatus, Product, ProductStatus
from tests.fixtures.catalog import (
    audit_events,
    count,
    make_cast,
    product_body,
    product_state,
)
from tests.fixtures.factories import auth, make_merchant, make_product

API = "/api/v1"


# --- categories -------------------------------------------------------------------------------


async def test_categories_are_listed_in_display_order(client):
    r = await client.get(f"{API}/categories")
    assert r.status_code == 200
    assert r.json() == [
        {"slug": "mushrooms", "name": "菌菇"},
        {"slug": "fruit", "name": "水果"},
        {"slug": "meat", "name": "肉类"},
        {"slug": "grains", "name": "粮油"},
        {"slug": "specialties", "name": "土特产"},
        {"slug": "handicrafts", "name": "手工艺品"},
        {"slug": "gift-packs", "name": "礼盒"},
    ]


# --- creation ---------------------------------------------------------------------------------


async def test_owner_creates_a_product_pending_review(client, session, app):
    cast = await make_cast(session)
    r = await client.post(f"{API}/products", json=product_body(), headers=auth(app, cast.owner))
    assert r.status_code == 201, r.text
    assert r.headers["etag"] == '"1"'
    body = r.json()
    assert r.headers["location"] == f"/api/v1/products/{body['id']}"
    assert body["status"] == "pending_review"
    assert body["version"] == 1
    assert body["merchant_id"] == str(cast.merchant.id)
    assert body["merchant_name"] == cast.merchant.name
    assert body["currency"] == "CNY"
    assert body["price_fen"] == 28_000
    assert body["stock"] == 50
    assert body["sold_units"] == 0
    assert body["category"] == "mushrooms"
    assert body["certification"] == product_body()["certification"]
    assert body["images"] == ["https://img.example.cn/matsutake/1.jpg"]
    assert body["weight_grams"] == 500
    assert body["shelf_life_days"] == 7
    assert body["created_at"].endswith("Z") or "+" in body["created_at"]
    stored = await product_state(session, body["id"])
    assert stored["cert_no"] == "XFBF-2025-513335-0001"
    assert stored["merchant_id"] == cast.merchant.id


async def test_staff_creates_with_only_required_fields(client, session, app):
    cast = await make_cast(session)
    body = product_body()
    for optional in ("description", "stock", "certification", "images", "weight_grams"):
        body.pop(optional)
    body.pop("shelf_life_days")
    r = await client.post(f"{API}/products", json=body, headers=auth(app, cast.staff))
    assert r.status_code == 201, r.text
    got = r.json()
    assert (got["description"], got["stock"], got["certification"], got["images"]) == (
        "",
        0,
        None,
        [],
    )
    assert got["weight_grams"] is None and got["shelf_life_days"] is None


async def test_a_pending_merchant_may_prepare_its_catalogue(client, session, app):
    _merchant, owner = await make_merchant(session, status=MerchantStatus.pending)
    r = await client.post(f"{API}/products", json=product_body(), headers=auth(app, owner))
    assert r.status_code == 201
    # ... but nothing of it is public while the merchant is pending
    assert (await client.get(f"{API}/products/{r.json()['id']}")).status_code == 404


async def test_a_rejected_merchant_cannot_create(client, session, app):
    _merchant, owner = await make_merchant(session, status=MerchantStatus.rejected)
    r = await client.post(f"{API}/products", json=product_body(), headers=auth(app, owner))
    assert r.status_code == 403
    assert r.json()["code"] == "merchant_rejected"
    assert await count(session, Product) == 0


async def test_create_refuses_anonymous(client, session):
    r = await client.post(f"{API}/products", json=product_body())
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("application/problem+json")
    assert await count(session, Product) == 0


@pytest.mark.parametrize("who", ["buyer", "official", "admin"])
async def test_create_refuses_non_merchants(client, session, app, who):
    cast = await make_cast(session)
    r = await client.post(
        f"{API}/products", json=product_body(), headers=auth(app, getattr(cast, who))
    )
    assert r.status_code == 403
    assert r.json()["code"] == "forbidden"
    assert await count(session, Product) == 0


async def test_unknown_category_is_422(client, session, app):
    cast = await make_cast(session)
    r = await client.post(
        f"{API}/products", json=product_body(category="rocks"), headers=auth(app, cast.owner)
    )
    assert r.status_code == 422
    assert r.json()["code"] == "unknown_category"
    assert r.json()["errors"][0]["loc"] == ["body", "category"]
    assert await count(session, Product) == 0


def _cert(**changes):
    cert = dict(product_body()["certification"])
    cert.update(changes)
    return cert


BAD_BODIES = {
    "name empty": {"name": ""},
    "name blank": {"name": "   "},
    "name too long": {"name": "松" * 101},
    "name null": {"name": None},
    "name NUL": {"name": "松\x00茸"},
    "name newline": {"name": "松\n茸"},
    "name not a string": {"name": 5},
    "description too long": {"description": "x" * 5001},
    "description NUL": {"description": "a\x00b"},
    "category too long": {"category": "c" * 41},
    "unit empty": {"unit": ""},
    "unit too long": {"unit": "u" * 11},
    "price zero": {"price_fen": 0},
    "price negative": {"price_fen": -1},
    "price above MAX_FEN": {"price_fen": MAX_FEN + 1},
    "price 2**64": {"price_fen": 2**64},
    "price huge": {"price_fen": 10**40},
    "price as string": {"price_fen": "100"},
    "price as float": {"price_fen": 99.5},
    "price as bool": {"price_fen": True},
    "stock negative": {"stock": -1},
    "stock too large": {"stock": 1_000_000_001},
    "stock 2**64": {"stock": 2**64},
    "township empty": {"origin_township": ""},
    "township too long": {"origin_township": "乡" * 41},
    "class unknown": {"assistance_class": "industrial"},
    "class missing": {"assistance_class": None},
    "cert ends before it starts": {
        "certification": _cert(valid_from="2026-01-02", valid_to="2026-01-01")
    },
    "cert missing a field": {"certification": {"scheme": "消费帮扶产品认定"}},
    "cert extra field": {"certification": _cert(level="gold")},
    "cert bad date": {"certification": _cert(valid_from="2026-02-30")},
    "cert number too long": {"certification": _cert(certificate_no="N" * 61)},
    "cert issuer empty": {"certification": _cert(issuer="")},
    "too many images": {"images": [f"https://img.example.cn/{i}.jpg" for i in range(11)]},
    "image not http": {"images": ["ftp://img.example.cn/1.jpg"]},
    "image javascript": {"images": ["javascript:alert(1)"]},
    "image relative": {"images": ["/img/1.jpg"]},
    "image with space": {"images": ["https://img.example.cn/a b.jpg"]},
    "image too long": {"images": ["https://img.example.cn/" + "a" * 480]},
    "images not a list": {"images": "https://img.example.cn/1.jpg"},
    "weight zero": {"weight_grams": 0},
    "weight too large": {"weight_grams": 1_000_001},
    "shelf life zero": {"shelf_life_days": 0},
    "shelf life too long": {"shelf_life_days": 36_501},
    "extra field status": {"status": "active"},
    "extra field sold_units": {"sold_units": 5},
    "extra field merchant_id": {"merchant_id": str(uuid.uuid4())},
}


@pytest.mark.parametrize("changes", BAD_BODIES.values(), ids=BAD_BODIES.keys())
async def test_bad_input_is_422_and_writes_nothing(client, session, app, changes):
    cast = await make_cast(session)
    r = await client.post(
        f"{API}/products", json=product_body(**changes), headers=auth(app, cast.owner)
    )
    assert r.status_code == 422, r.text
    problem = r.json()
    assert problem["code"] == "validation_error"
    assert problem["errors"]
    assert r.headers["content-type"].startswith("application/problem+json")
    assert await count(session, Product) == 0


@pytest.mark.parametrize("field", ["name", "category", "unit", "price_fen", "origin_township"])
async def test_required_fields(client, session, app, field):
    cast = await make_cast(session)
    body = product_body()
    body.pop(field)
    r = await client.post(f"{API}/products", json=body, headers=auth(app, cast.owner))
    assert r.status_code == 422
    assert any(e["loc"] == ["body", field] for e in r.json()["errors"])
    assert await count(session, Product) == 0


async def test_malformed_json_is_400(client, session, app):
    cast = await make_cast(session)
    r = await client.post(
        f"{API}/products",
        content=b'{"name": "x",',
        headers={**auth(app, cast.owner), "content-type": "application/json"},
    )
    assert r.status_code == 400
    assert r.json()["code"] == "malformed_json"
    r = await client.post(
        f"{API}/products",
        content=b"[1, 2]",
        headers={**auth(app, cast.owner), "content-type": "application/json"},
    )
    assert r.status_code == 422
    assert await count(session, Product) == 0


async def test_a_lone_surrogate_is_refused(client, session, app):
    cast = await make_cast(session)
    raw = json.dumps(product_body(name="NAME")).replace("NAME", "\\ud800")
    r = await client.post(
        f"{API}/products",
        content=raw.encode(),
        headers={**auth(app, cast.owner), "content-type": "application/json"},
    )
    assert r.status_code in (400, 422)
    assert await count(session, Product) == 0


async def test_body_over_one_mib_is_413(client, session, app):
    cast = await make_cast(session)
    r = await client.post(
        f"{API}/products",
        json=product_body(description="x" * (1024 * 1024 + 1)),
        headers=auth(app, cast.owner),
    )
    assert r.status_code == 413
    assert await count(session, Product) == 0


async def test_name_is_stripped(client, session, app):
    cast = await make_cast(session)
    r = await client.post(
        f"{API}/products", json=product_body(name="  黑美人土豆  "), headers=auth(app, cast.owner)
    )
    assert r.status_code == 201
    assert r.json()["name"] == "黑美人土豆"


async def test_huge_values_at_the_limits_are_accepted(client, session, app):
    cast = await make_cast(session)
    r = await client.post(
        f"{API}/products",
        json=product_body(price_fen=STRIPE_MAX_CNY_FEN, stock=1_000_000_000, images=[]),
        headers=auth(app, cast.owner),
    )
    assert r.status_code == 201
    assert (r.json()["price_fen"], r.json()["stock"]) == (STRIPE_MAX_CNY_FEN, 1_000_000_000)


# --- reading one product ----------------------------------------------------------------------


async def test_a_product_on_sale_is_public_with_its_etag(client, session, app):
    cast = await make_cast(session)
    product = await make_product(session, cast.merchant)
    r = await client.get(f"{API}/products/{product.id}")
    assert r.status_code == 200
    assert r.headers["etag"] == '"1"'
    assert r.json()["id"] == str(product.id)
    assert r.json()["merchant_name"] == cast.merchant.name


async def test_unknown_product_is_404(client):
    r = await client.get(f"{API}/products/{uuid.uuid4()}")
    assert r.status_code == 404
    assert r.json()["code"] == "product_not_found"


@pytest.mark.parametrize(
    "status", [ProductStatus.pending_review, ProductStatus.inactive, ProductStatus.rejected]
)
async def test_a_product_not_on_sale_is_hidden_from_the_public(client, session, app, status):
    cast = await make_cast(session)
    product = await make_product(session, cast.merchant, status=status)
    url = f"{API}/products/{product.id}"
    for headers in (
        {},
        auth(app, cast.buyer),
        auth(app, cast.official),
        auth(app, cast.other_owner),
    ):
        r = await client.get(url, headers=headers)
        assert r.status_code == 404, headers
        assert r.json()["code"] == "product_not_found"
    for who in (cast.owner, cast.staff, cast.admin):
        r = await client.get(url, headers=auth(app, who))
        assert r.status_code == 200
        assert r.json()["status"] == status.value


@pytest.mark.parametrize(
    "merchant_status",
    [MerchantStatus.pending, MerchantStatus.suspended, MerchantStatus.rejected],
)
async def test_products_of_a_merchant_not_approved_are_hidden(
    client, session, app, merchant_status
):
    cast = await make_cast(session, status=merchant_status)
    product = await make_product(session, cast.merchant, status=ProductStatus.active)
    url = f"{API}/products/{product.id}"
    assert (await client.get(url)).status_code == 404
    assert (await client.get(url, headers=auth(app, cast.buyer))).status_code == 404
    assert (await client.get(url, headers=auth(app, cast.owner))).status_code == 200
    assert (await client.get(url, headers=auth(app, cast.admin))).status_code == 200


async def test_a_bad_token_is_401_even_on_a_public_product(client, session):
    cast = await make_cast(session)
    product = await make_product(session, cast.merchant)
    r = await client.get(
        f"{API}/products/{product.id}", headers={"Authorization": "Bearer nonsense"}
    )
    assert r.status_code == 401


# --- editing ----------------------------------------------------------------------------------


async def test_owner_edits_and_the_version_moves(client, session, app):
    cast = await make_cast(session)
    product = await make_product(session, cast.merchant, price_fen=9900)
    r = await client.patch(
        f"{API}/products/{product.id}",
        json={"price_fen": 12_800, "name": "巴塘苹果 礼盒", "images": []},
        headers=auth(app, cast.owner),
    )
    assert r.status_code == 200, r.text
    assert r.headers["etag"] == '"2"'
    body = r.json()
    assert (body["price_fen"], body["name"], body["version"]) == (12_800, "巴塘苹果 礼盒", 2)
    assert body["status"] == "active"  # a price change needs no new review
    assert body["stock"] == 100
    stored = await product_state(session, product.id)
    assert (stored["price_fen"], stored["version"]) == (12_800, 2)


async def test_staff_edits_category_and_clears_optional_fields(client, session, app):
    cast = await make_cast(session)
    product = await make_product(session, cast.merchant, weight_grams=500, shelf_life_days=30)
    r = await client.patch(
        f"{API}/products/{product.id}",
        json={"category": "gift-packs", "weight_grams": None, "shelf_life_days": None},
        headers=auth(app, cast.staff),
    )
    assert r.status_code == 200
    assert (r.json()["category"], r.json()["weight_grams"], r.json()["shelf_life_days"]) == (
        "gift-packs",
        None,
        None,
    )


@pytest.mark.parametrize("tag", ['"1"', "*", '"7", "1"'])
async def test_if_match_with_the_current_etag_applies(client, session, app, tag):
    cast = await make_cast(session)
    product = await make_product(session, cast.merchant)
    r = await client.patch(
        f"{API}/products/{product.id}",
        json={"unit": "箱"},
        headers={**auth(app, cast.owner), "If-Match": tag},
    )
    assert r.status_code == 200
    assert r.headers["etag"] == '"2"'


@pytest.mark.parametrize(
    "tag", ['"2"', 'W/"1"', "1", 'W/"0"', "1x", '""', '"99999999999999999999999"']
)
async def test_if_match_with_another_etag_is_412(client, session, app, tag):
    cast = await make_cast(session)
    product = await make_product(session, cast.merchant, price_fen=9900)
    r = await client.patch(
        f"{API}/products/{product.id}",
        json={"price_fen": 1},
        headers={**auth(app, cast.owner), "If-Match": tag},
    )
    assert r.status_code == 412
    assert r.json()["code"] == "precondition_failed"
    assert r.headers["etag"] == '"1"'  # the current one, to fetch-and-retry against
    stored = await product_state(session, product.id)
    assert (stored["price_fen"], stored["version"]) == (9900, 1)


async def test_concurrent_patches_with_the_same_if_match_one_wins(client, session, app):
    cast = await make_cast(session)
    product = await make_product(session, cast.merchant, price_fen=9900)
    headers = {**auth(app, cast.owner), "If-Match": '"1"'}
    responses = await asyncio.gather(
        client.patch(f"{API}/products/{product.id}", json={"price_fen": 111}, headers=headers),
        client.patch(f"{API}/products/{product.id}", json={"price_fen": 222}, headers=headers),
    )
    assert sorted(r.status_code for r in responses) == [200, 412]
    winner = next(r for r in responses if r.status_code == 200)
    stored = await product_state(session, product.id)
    assert stored["version"] == 2
    assert stored["price_fen"] == winner.json()["price_fen"]


async def test_stock_cannot_be_patched(client, session, app):
    cast = await make_cast(session)
    product = await make_product(session, cast.merchant, stock=100)
    r = await client.patch(
        f"{API}/products/{product.id}", json={"stock": 5}, headers=auth(app, cast.owner)
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["loc"] == ["body", "stock"]
    stored = await product_state(session, product.id)
    assert (stored["stock"], stored["version"]) == (100, 1)


@pytest.mark.parametrize(
    "changes",
    [
        {"name": None},
        {"price_fen": None},
        {"images": None},
        {"category": None},
        {"price_fen": 0},
        {"price_fen": 2**64},
        {"assistance_class": "other"},
        {"status": "active"},
        {"version": 9},
        {"certification": _cert(valid_to="2020-01-01")},
    ],
)
async def test_bad_patch_is_422_and_changes_nothing(client, session, app, changes):
    cast = await make_cast(session)
    product = await make_product(session, cast.merchant, price_fen=9900)
    r = await client.patch(
        f"{API}/products/{product.id}", json=changes, headers=auth(app, cast.owner)
    )
    assert r.status_code == 422, r.text
    stored = await product_state(session, product.id)
    assert (stored["price_fen"], stored["version"], stored["status"]) == (9900, 1, "active")


async def test_patch_to_unknown_category_is_422(client, session, app):
    cast = await make_cast(session)
    product = await make_product(session, cast.merchant)
    r = await client.patch(
        f"{API}/products/{product.id}", json={"category": "rocks"}, headers=auth(app, cast.owner)
    )
    assert r.status_code == 422
    assert r.json()["code"] == "unknown_category"
    assert (await product_state(session, product.id))["category_slug"] == "fruit"


async def test_empty_patch_changes_nothing(client, session, app):
    cast = await make_cast(session)
    product = await make_product(session, cast.merchant)
    r = await client.patch(f"{API}/products/{product.id}", json={}, headers=auth(app, cast.owner))
    assert r.status_code == 200
    assert r.headers["etag"] == '"1"'
    assert (await product_state(session, product.id))["version"] == 1


async def test_a_certification_change_sends_an_active_product_back_to_review(client, session, app):
    cast = await make_cast(session)
    created = await client.post(
        f"{API}/products", json=product_body(), headers=auth(app, cast.owner)
    )
    pid = created.json()["id"]
    approved = await client.post(f"{API}/products/{pid}/approve", headers=auth(app, cast.admin))
    assert approved.json()["status"] == "active"
    assert (await client.get(f"{API}/products/{pid}")).status_code == 200

    # the same certification again: still on sale
    same = await client.patch(
        f"{API}/products/{pid}",
        json={"certification": product_body()["certification"]},
        headers=auth(app, cast.owner),
    )
    assert same.json()["status"] == "active"

    changed = await client.patch(
        f"{API}/products/{pid}",
        json={"certification": _cert(valid_to="2028-12-31")},
        headers=auth(app, cast.owner),
    )
    assert changed.status_code == 200
    assert changed.json()["status"] == "pending_review"
    assert changed.json()["certification"]["valid_to"] == "2028-12-31"
    assert changed.json()["version"] == 4
    assert (await client.get(f"{API}/products/{pid}")).status_code == 404


async def test_removing_the_certification_also_needs_review(client, session, app):
    cast = await make_cast(session)
    product = await make_product(
        session,
        cast.merchant,
        cert_scheme="消费帮扶产品认定",
        cert_no="A-1",
        cert_issuer="巴塘县农牧农村和科技局",
        cert_valid_from=__import__("datetime").date(2025, 1, 1),
        cert_valid_to=__import__("datetime").date(2026, 12, 31),
    )
    r = await client.patch(
        f"{API}/products/{product.id}", json={"certification": None}, headers=auth(app, cast.owner)
    )
    assert r.status_code == 200
    assert r.json()["certification"] is None
    assert r.json()["status"] == "pending_review"


async def test_a_certification_change_of_an_inactive_product_needs_review(client, session, app):
    cast = await make_cast(session)
    product = await make_product(session, cast.merchant, status=ProductStatus.inactive)
    r = await client.patch(
        f"{API}/products/{product.id}",
        json={"certification": _cert()},
        headers=auth(app, cast.owner),
    )
    assert r.json()["status"] == "pending_review"
    # so it cannot simply be switched back on without review
    r = await client.post(f"{API}/products/{product.id}/activate", headers=auth(app, cast.owner))
    assert r.status_code == 409


async def test_editing_a_rejected_product_resubmits_it(client, session, app):
    cast = await make_cast(session)
    product = await make_product(
        session, cast.merchant, status=ProductStatus.rejected, status_reason="产地不符"
    )
    r = await client.patch(
        f"{API}/products/{product.id}",
        json={"origin_township": "地巫镇"},
        headers=auth(app, cast.owner),
    )
    assert r.status_code == 200
    assert r.json()["status"] == "pending_review"
    assert r.json()["version"] == 2
    r = await client.post(f"{API}/products/{product.id}/approve", headers=auth(app, cast.admin))
    assert r.status_code == 200
    assert r.json()["status"] == "active"


async def test_patch_refuses_anonymous(client, session):
    cast = await make_cast(session)
    product = await make_product(session, cast.merchant)
    r = await client.patch(f"{API}/products/{product.id}", json={"price_fen": 1})
    assert r.status_code == 401
    assert (await product_state(session, product.id))["version"] == 1


@pytest.mark.parametrize("who", ["buyer", "official", "admin"])
async def test_patch_refuses_non_merchants(client, session, app, who):
    cast = await make_cast(session)
    product = await make_product(session, cast.merchant)
    r = await client.patch(
        f"{API}/products/{product.id}",
        json={"price_fen": 1},
        headers=auth(app, getattr(cast, who)),
    )
    assert r.status_code == 403
    assert (await product_state(session, product.id))["price_fen"] == 9900


async def test_another_merchants_member_gets_403_on_sale_and_404_otherwise(client, session, app):
    cast = await make_cast(session)
    on_sale = await make_product(session, cast.merchant)
    hidden = await make_product(session, cast.merchant, status=ProductStatus.pending_review)
    headers = auth(app, cast.other_owner)
    r = await client.patch(f"{API}/products/{on_sale.id}", json={"price_fen": 1}, headers=headers)
    assert r.status_code == 403
    assert r.json()["code"] == "not_merchant_member"
    r = await client.patch(f"{API}/products/{hidden.id}", json={"price_fen": 1}, headers=headers)
    assert r.status_code == 404
    assert r.json()["code"] == "product_not_found"
    assert (await product_state(session, on_sale.id))["price_fen"] == 9900
    assert (await product_state(session, hidden.id))["price_fen"] == 9900


async def test_patch_of_unknown_product_is_404(client, session, app):
    cast = await make_cast(session)
    r = await client.patch(
        f"{API}/products/{uuid.uuid4()}", json={"price_fen": 1}, headers=auth(app, cast.owner)
    )
    assert r.status_code == 404


# --- the review workflow ----------------------------------------------------------------------


async def test_admin_approves_a_pending_product(client, session, app):
    cast = await make_cast(session)
    product = await make_product(session, cast.merchant, status=ProductStatus.pending_review)
    assert (await client.get(f"{API}/products/{product.id}")).status_code == 404
    r = await client.post(
        f"{API}/products/{product.id}/approve", json={}, headers=auth(app, cast.admin)
    )
    assert r.status_code == 200
    assert r.headers["etag"] == '"2"'
    assert r.json()["status"] == "active"
    assert (await client.get(f"{API}/products/{product.id}")).status_code == 200
    events = await audit_events(session, "product.approved")
    assert [(e.subject_type, e.subject_id, e.actor_id) for e in events] == [
        ("product", str(product.id), cast.admin.id)
    ]


async def test_admin_rejects_with_a_reason(client, session, app):
    cast = await make_cast(session)
    product = await make_product(session, cast.merchant, status=ProductStatus.pending_review)
    r = await client.post(
        f"{API}/products/{product.id}/reject",
        json={"reason": "标签产地与生产许可证不符"},
        headers=auth(app, cast.admin),
    )
    assert r.status_code == 200
    assert r.json()["status"] == "rejected"
    assert r.json()["status_reason"] == "标签产地与生产许可证不符"
    assert r.json()["version"] == 2
    events = await audit_events(session, "product.rejected")
    assert len(events) == 1
    assert events[0].detail["reason"] == "标签产地与生产许可证不符"
    # the merchant sees why
    r = await client.get(f"{API}/products/{product.id}", headers=auth(app, cast.owner))
    assert r.json()["status_reason"] == "标签产地与生产许可证不符"


@pytest.mark.parametrize("body", [{}, {"reason": ""}, {"reason": "  "}, {"reason": "x" * 501}])
async def test_reject_needs_a_reason(client, session, app, body):
    cast = await make_cast(session)
    product = await make_product(session, cast.merchant, status=ProductStatus.pending_review)
    r = await client.post(
        f"{API}/products/{product.id}/reject", json=body, headers=auth(app, cast.admin)
    )
    assert r.status_code == 422
    assert (await product_state(session, product.id))["status"] == "pending_review"
    assert await audit_events(session, "product.rejected") == []


async def test_approve_takes_an_empty_object_only(client, session, app):
    cast = await make_cast(session)
    product = await make_product(session, cast.merchant, status=ProductStatus.pending_review)
    r = await client.post(
        f"{API}/products/{product.id}/approve",
        json={"status": "active"},
        headers=auth(app, cast.admin),
    )
    assert r.status_code == 422
    assert (await product_state(session, product.id))["status"] == "pending_review"


async def test_merchant_deactivates_and_activates(client, session, app):
    cast = await make_cast(session)
    product = await make_product(session, cast.merchant)
    r = await client.post(f"{API}/products/{product.id}/deactivate", headers=auth(app, cast.staff))
    assert r.status_code == 200
    assert (r.json()["status"], r.json()["version"]) == ("inactive", 2)
    assert (await client.get(f"{API}/products/{product.id}")).status_code == 404
    r = await client.post(
        f"{API}/products/{product.id}/activate", json={}, headers=auth(app, cast.owner)
    )
    assert r.status_code == 200
    assert (r.json()["status"], r.json()["version"]) == ("active", 3)
    assert r.headers["etag"] == '"3"'
    assert (await client.get(f"{API}/products/{product.id}")).status_code == 200


@pytest.mark.parametrize(
    ("status", "action", "actor"),
    [
        (ProductStatus.active, "approve", "admin"),
        (ProductStatus.inactive, "approve", "admin"),
        (ProductStatus.rejected, "approve", "admin"),
        (ProductStatus.active, "reject", "admin"),
        (ProductStatus.rejected, "reject", "admin"),
        (ProductStatus.active, "activate", "owner"),
        (ProductStatus.pending_review, "activate", "owner"),
        (ProductStatus.rejected, "activate", "owner"),
        (ProductStatus.inactive, "deactivate", "owner"),
        (ProductStatus.pending_review, "deactivate", "owner"),
        (ProductStatus.rejected, "deactivate", "owner"),
    ],
)
async def test_any_other_transition_is_409(client, session, app, status, action, actor):
    cast = await make_cast(session)
    product = await make_product(session, cast.merchant, status=status)
    body = {"reason": "不合格"} if action == "reject" else {}
    r = await client.post(
        f"{API}/products/{product.id}/{action}", json=body, headers=auth(app, getattr(cast, actor))
    )
    assert r.status_code == 409
    assert r.json()["code"] == "invalid_transition"
    stored = await product_state(session, product.id)
    assert (stored["status"], stored["version"]) == (status.value, 1)


async def test_concurrent_approvals_apply_once(client, session, app):
    cast = await make_cast(session)
    product = await make_product(session, cast.merchant, status=ProductStatus.pending_review)
    headers = auth(app, cast.admin)
    responses = await asyncio.gather(
        client.post(f"{API}/products/{product.id}/approve", headers=headers),
        client.post(f"{API}/products/{product.id}/reject", json={"reason": "x"}, headers=headers),
    )
    assert sorted(r.status_code for r in responses) == [200, 409]
    assert (await product_state(session, product.id))["version"] == 2
    approved = await audit_events(session, "product.approved")
    rejected = await audit_events(session, "product.rejected")
    assert len(approved) + len(rejected) == 1


@pytest.mark.parametrize("action", ["approve", "reject"])
@pytest.mark.parametrize("who", [None, "owner", "staff", "buyer", "official"])
async def test_only_admins_review(client, session, app, action, who):
    cast = await make_cast(session)
    product = await make_product(session, cast.merchant, status=ProductStatus.pending_review)
    headers = auth(app, getattr(cast, who)) if who else {}
    r = await client.post(
        f"{API}/products/{product.id}/{action}",
        json={"reason": "x"} if action == "reject" else {},
        headers=headers,
    )
    # A product not on sale is seen only by its merchant's members (403); strangers: 404.
    expected = {None: 401, "owner": 403, "staff": 403}.get(who, 404)
    assert r.status_code == expected
    stored = await product_state(session, product.id)
    assert (stored["status"], stored["version"]) == ("pending_review", 1)


async def test_review_of_unknown_product_is_404(client, session, app):
    cast = await make_cast(session)
    r = await client.post(f"{API}/products/{uuid.uuid4()}/approve", headers=auth(app, cast.admin))
    assert r.status_code == 404
    assert r.json()["code"] == "product_not_found"


@pytest.mark.parametrize("action", ["activate", "deactivate"])
@pytest.mark.parametrize("who", ["buyer", "official", "admin"])
async def test_only_merchant_members_switch_sale(client, session, app, action, who):
    cast = await make_cast(session)
    status = ProductStatus.active if action == "deactivate" else ProductStatus.inactive
    product = await make_product(session, cast.merchant, status=status)
    r = await client.post(
        f"{API}/products/{product.id}/{action}", headers=auth(app, getattr(cast, who))
    )
    # An inactive product is not on sale: only admins (and members) see it; others get 404.
    hidden = status == ProductStatus.inactive and who != "admin"
    assert r.status_code == (404 if hidden else 403)
    assert (await product_state(session, product.id))["status"] == status.value
    r = await client.post(f"{API}/products/{product.id}/{action}")
    assert r.status_code == 401


async def test_another_merchant_cannot_switch_sale(client, session, app):
    cast = await make_cast(session)
    on_sale = await make_product(session, cast.merchant)
    off_sale = await make_product(session, cast.merchant, status=ProductStatus.inactive)
    headers = auth(app, cast.other_owner)
    r = await client.post(f"{API}/products/{on_sale.id}/deactivate", headers=headers)
    assert (r.status_code, r.json()["code"]) == (403, "not_merchant_member")
    r = await client.post(f"{API}/products/{off_sale.id}/activate", headers=headers)
    assert (r.status_code, r.json()["code"]) == (404, "product_not_found")
    assert (await product_state(session, on_sale.id))["status"] == "active"
    assert (await product_state(session, off_sale.id))["status"] == "inactive"


# --- a merchant's own catalogue ---------------------------------------------------------------


async def test_a_merchant_lists_its_own_catalogue_in_every_status(client, session, app):
    cast = await make_cast(session)
    ids = []
    for status in ProductStatus:
        ids.append((await make_product(session, cast.merchant, status=status)).id)
    await make_product(session, cast.other_merchant)
    url = f"{API}/merchants/{cast.merchant.id}/products"
    for who in (cast.owner, cast.staff, cast.admin):
        r = await client.get(url, headers=auth(app, who))
        assert r.status_code == 200
        assert [item["id"] for item in r.json()["items"]] == [str(i) for i in reversed(ids)]
    r = await client.get(url, params={"status": "rejected"}, headers=auth(app, cast.owner))
    assert [item["status"] for item in r.json()["items"]] == ["rejected"]
    r = await client.get(url, params={"status": "sold"}, headers=auth(app, cast.owner))
    assert r.status_code == 422


async def test_a_merchants_catalogue_pages(client, session, app):
    cast = await make_cast(session)
    ids = [str((await make_product(session, cast.merchant)).id) for _ in range(5)]
    url = f"{API}/merchants/{cast.merchant.id}/products"
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        r = await client.get(url, params=params, headers=auth(app, cast.owner))
        assert r.status_code == 200
        seen += [item["id"] for item in r.json()["items"]]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))
    r = await client.get(url, params={"cursor": "garbage"}, headers=auth(app, cast.owner))
    assert (r.status_code, r.json()["code"]) == (400, "invalid_cursor")


async def test_a_merchants_catalogue_is_private(client, session, app):
    cast = await make_cast(session)
    await make_product(session, cast.merchant)
    url = f"{API}/merchants/{cast.merchant.id}/products"
    assert (await client.get(url)).status_code == 401
    for who in (cast.buyer, cast.official):
        assert (await client.get(url, headers=auth(app, who))).status_code == 403
    r = await client.get(url, headers=auth(app, cast.other_owner))
    assert (r.status_code, r.json()["code"]) == (403, "not_merchant_member")
    r = await client.get(f"{API}/merchants/{uuid.uuid4()}/products", headers=auth(app, cast.admin))
    assert (r.status_code, r.json()["code"]) == (404, "merchant_not_found")
