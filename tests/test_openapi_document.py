"""What the OpenAPI document promises, checked from a client's side against the service."""

from __future__ import annotations

import uuid

import pytest

from app.models import MerchantStatus, Role
from tests.fixtures.catalog import product_body
from tests.fixtures.factories import auth, make_merchant, make_product, make_user
from tests.fixtures.orders import order_body

API = "/api/v1"
IDEMPOTENT = [
    ("post", "/api/v1/orders"),
    ("post", "/api/v1/orders/{order_id}/payments"),
    ("post", "/api/v1/orders/{order_id}/refunds"),
]
OPTIONAL_TOKEN = [
    ("get", "/api/v1/merchants"),
    ("get", "/api/v1/merchants/{merchant_id}"),
    ("get", "/api/v1/products/{product_id}"),
]


@pytest.fixture
async def doc(client):
    r = await client.get("/openapi.json")
    assert r.status_code == 200
    return r.json()


def _operations(doc):
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            yield method, path, operation


def _schema(doc, name):
    return doc["components"]["schemas"][name]


async def test_every_error_is_one_problem_schema(doc):
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    problem = _schema(doc, "Problem")
    assert set(problem["required"]) == {"type", "title", "status", "detail", "code"}
    assert "errors" in problem["properties"]
    for method, path, operation in _operations(doc):
        for status, response in operation["responses"].items():
            if int(status) >= 400:
                assert response["content"] == {
                    "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
                }, (method, path, status)


async def test_a_422_is_the_documented_problem(client, doc):
    r = await client.post(f"{API}/auth/register", json={"email": "x"})
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    assert {e["loc"][-1] for e in r.json()["errors"]} >= {"password", "region_code"}
    assert "422" in doc["paths"]["/api/v1/auth/register"]["post"]["responses"]


async def test_signed_in_routes_document_401_and_json_bodies_400_and_413(doc):
    for method, path, operation in _operations(doc):
        if operation.get("security"):
            assert "401" in operation["responses"], (method, path)
        if "application/json" in operation.get("requestBody", {}).get("content", {}):
            assert "`malformed_json`" in operation["responses"]["400"]["description"]
            assert "413" in operation["responses"]
        names = {p["name"] for p in operation.get("parameters", [])}
        if "cursor" in names:
            assert "`invalid_cursor`" in operation["responses"]["400"]["description"]


async def test_idempotency_key_is_documented_required_and_is(client, app, session, doc):
    for method, path in IDEMPOTENT:
        operation = doc["paths"][path][method]
        (header,) = [p for p in operation["parameters"] if p["name"] == "Idempotency-Key"]
        assert header["required"] is True
        assert "`idempotency_key_required`" in operation["responses"]["400"]["description"]
    merchant, _ = await make_merchant(session)
    product = await make_product(session, merchant)
    buyer = await make_user(session)
    body = order_body([(product, 1)])
    r = await client.post(f"{API}/orders", json=body, headers=auth(app, buyer))
    assert r.status_code == 400
    assert r.json()["code"] == "idempotency_key_required"


async def test_routes_open_to_anonymous_callers_do_not_demand_a_token(client, session, doc):
    signed_in = doc["paths"]["/api/v1/me"]["get"]["security"]
    assert {} not in signed_in
    for method, path in OPTIONAL_TOKEN:
        assert {} in doc["paths"][path][method]["security"], path
    merchant, _ = await make_merchant(session)
    assert (await client.get(f"{API}/merchants")).status_code == 200
    assert (await client.get(f"{API}/merchants/{merchant.id}")).status_code == 200
    r = await client.get(f"{API}/merchants", headers={"Authorization": "Bearer nonsense"})
    assert r.status_code == 401


async def test_patch_fields_that_refuse_null_are_not_documented_nullable(client, app, session, doc):
    merchant, _ = await make_merchant(session, status=MerchantStatus.approved)
    admin = await make_user(session, role=Role.admin)
    for name in ("MerchantUpdate", "UserUpdate"):
        for field, schema in _schema(doc, name)["properties"].items():
            assert "anyOf" not in schema or {"type": "null"} not in schema["anyOf"], field
    r = await client.patch(
        f"{API}/merchants/{merchant.id}", json={"name": None}, headers=auth(app, admin)
    )
    assert r.status_code == 422
    product_update = _schema(doc, "ProductUpdate")["properties"]
    assert {"type": "null"} not in product_update["name"].get("anyOf", [])
    assert {"type": "null"} in product_update["certification"]["anyOf"]


async def test_patterns_are_in_the_schema_with_ascii_digits(doc):
    register = _schema(doc, "RegisterRequest")["properties"]
    assert register["region_code"]["pattern"] == "^[1-8][0-9]{5}$"
    application = _schema(doc, "MerchantCreate")["properties"]
    assert "1[3-9][0-9]" in application["contact_phone"]["pattern"]
    assert "[0-9]{6}" in application["uscc"]["pattern"]
    assert "[0-9]" in _schema(doc, "BankAccountIn")["properties"]["account_no"]["pattern"]
    text = str(doc)
    assert "\\d" not in text


@pytest.mark.parametrize(
    "field,value",
    [("region_code", "3٣٠١٢٧"), ("phone", "1380000123٤"), ("region_code", "３30127")],
)
async def test_non_ascii_digits_are_refused(client, field, value):
    body = {
        "email": f"{uuid.uuid4().hex[:8]}@example.cn",
        "password": "a-long-password",
        "display_name": "李娜",
        "region_code": "330127",
        field: value,
    }
    r = await client.post(f"{API}/auth/register", json=body)
    assert r.status_code == 422
    assert r.json()["errors"][0]["loc"] == ["body", field]


async def test_options_on_a_path_with_get_and_post_lists_both(client):
    r = await client.options(f"{API}/orders")
    assert r.status_code == 405
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "method_not_allowed"
    allowed = {m.strip() for m in r.headers["allow"].split(",")}
    assert {"GET", "POST"} <= allowed
    assert "OPTIONS" not in allowed
    r = await client.delete(f"{API}/merchants/{uuid.uuid4()}")
    assert {m.strip() for m in r.headers["allow"].split(",")} == {"GET", "HEAD", "PATCH"}


async def test_a_body_that_is_not_utf8_is_malformed_json(client):
    r = await client.post(
        f"{API}/auth/register",
        content=b'{"email": "\xff\xfe"}',
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 400
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "malformed_json"


@pytest.mark.parametrize("valid_from", [0, 1767225600, "2026-01-01T00:00:00", "20260101", None])
async def test_certificate_dates_are_yyyy_mm_dd_strings_only(client, app, session, valid_from):
    _, owner = await make_merchant(session)
    body = product_body()
    body["certification"] = {**body["certification"], "valid_from": valid_from}
    r = await client.post(f"{API}/products", json=body, headers=auth(app, owner))
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["loc"] == ["body", "certification", "valid_from"]
    body["certification"]["valid_from"] = "2026-01-01"
    r = await client.post(f"{API}/products", json=body, headers=auth(app, owner))
    assert r.status_code == 201, r.text
    assert r.json()["certification"]["valid_from"] == "2026-01-01"


async def test_email_taken_is_documented_and_answered(client, session, doc):
    responses = doc["paths"]["/api/v1/auth/register"]["post"]["responses"]
    assert "`email_taken`" in responses["409"]["description"]
    user = await make_user(session)
    body = {
        "email": user.email.upper(),
        "password": "a-long-password",
        "display_name": "李娜",
        "region_code": "330127",
    }
    r = await client.post(f"{API}/auth/register", json=body)
    assert r.status_code == 409
    assert r.json()["code"] == "email_taken"


async def test_every_operation_and_field_is_described(doc):
    for method, path, operation in _operations(doc):
        assert operation.get("description"), (method, path)
    for name, schema in doc["components"]["schemas"].items():
        for field, prop in schema.get("properties", {}).items():
            assert prop.get("description"), (name, field)
