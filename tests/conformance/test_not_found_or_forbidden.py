"""404 for what the caller may not see; 403 when it sees the resource (or the merchant it
belongs to) but its role or ownership does not allow the action. Routes where the two can differ
are tested from both sides, on resources in statuses the permissions matrix does not build; the
route table itself is checked so that a new route must be placed in one of the groups of
`helpers.py`."""

from __future__ import annotations

import pytest

from app.models import MerchantStatus, ProductStatus, Role
from tests.conformance.helpers import API, OPEN, ROLE_ONLY, SEE_OR_ACT, problem
from tests.fixtures.factories import auth, make_merchant, make_product, make_user
from tests.fixtures.merchants import make_staff
from tests.fixtures.orders import pay_by_bank, place


def test_every_route_is_placed(app):
    operations = {
        f"{method.upper()} {path}"
        for path, item in app.openapi()["paths"].items()
        for method in item
        if method != "head"
    }
    assert operations == SEE_OR_ACT | ROLE_ONLY | OPEN
    assert len(SEE_OR_ACT) + len(ROLE_ONLY) + len(OPEN) == len(operations)  # one group each


# --- merchants --------------------------------------------------------------------------------


@pytest.mark.parametrize("verb", ["approve", "reject"])
async def test_deciding_a_pending_merchant(client, app, session, verb):
    merchant, owner = await make_merchant(session, status=MerchantStatus.pending)
    body = {"reason": "资料不全"} if verb == "reject" else {}
    url = f"{API}/merchants/{merchant.id}/{verb}"
    stranger = await make_user(session)
    problem(
        await client.post(url, json=body, headers=auth(app, stranger)), 404, "merchant_not_found"
    )
    problem(await client.post(url, json=body, headers=auth(app, owner)), 403, "forbidden")


@pytest.mark.parametrize(("verb", "status"), [("suspend", "approved"), ("approve", "approved")])
async def test_acting_on_an_approved_merchant_is_403(client, app, session, verb, status):
    merchant, _ = await make_merchant(session, status=MerchantStatus(status))
    _, other_owner = await make_merchant(session)
    body = {"reason": "x"} if verb == "suspend" else {}
    for caller in (
        await make_user(session),
        other_owner,
        await make_user(session, role=Role.official),
    ):
        r = await client.post(
            f"{API}/merchants/{merchant.id}/{verb}", json=body, headers=auth(app, caller)
        )
        problem(r, 403, "forbidden")


async def test_payout_account(client, app, session):
    approved, _ = await make_merchant(session)
    pending, pending_owner = await make_merchant(session, status=MerchantStatus.pending)
    _, other_owner = await make_merchant(session)
    buyer = await make_user(session)
    for caller in (buyer, other_owner):
        for method in ("GET", "POST"):
            r = await client.request(
                method, f"{API}/merchants/{approved.id}/payout-account", headers=auth(app, caller)
            )
            problem(r, 403, "forbidden")
            r = await client.request(
                method, f"{API}/merchants/{pending.id}/payout-account", headers=auth(app, caller)
            )
            problem(r, 404, "merchant_not_found")
    r = await client.get(
        f"{API}/merchants/{pending.id}/payout-account", headers=auth(app, pending_owner)
    )
    assert r.status_code == 200


async def test_merchant_order_list(client, app, session):
    approved, _ = await make_merchant(session)
    pending, _ = await make_merchant(session, status=MerchantStatus.pending)
    buyer = await make_user(session)
    problem(
        await client.get(f"{API}/merchants/{approved.id}/orders", headers=auth(app, buyer)),
        403,
        "forbidden",
    )
    problem(
        await client.get(f"{API}/merchants/{pending.id}/orders", headers=auth(app, buyer)),
        404,
        "merchant_not_found",
    )


# --- products ---------------------------------------------------------------------------------


async def test_reviewing_a_product(client, app, session):
    merchant, owner = await make_merchant(session)
    staff = await make_staff(session, merchant)
    waiting = await make_product(session, merchant, status=ProductStatus.pending_review)
    on_sale = await make_product(session, merchant)
    stranger = await make_user(session)
    url = f"{API}/products/{waiting.id}/approve"
    problem(await client.post(url, headers=auth(app, stranger)), 404, "product_not_found")
    for member in (owner, staff):
        problem(await client.post(url, headers=auth(app, member)), 403, "forbidden")
    r = await client.post(
        f"{API}/products/{on_sale.id}/reject", json={"reason": "x"}, headers=auth(app, stranger)
    )
    problem(r, 403, "forbidden")


# --- orders, merchant orders, payments --------------------------------------------------------


@pytest.fixture
async def paid(client, app, session):
    m1, owner1 = await make_merchant(session)
    _, owner2 = await make_merchant(session)
    p1 = await make_product(session, m1, price_fen=4500, stock=10)
    buyer = await make_user(session)
    admin = await make_user(session, role=Role.admin)
    order = await place(client, app, buyer, [(p1, 1)])
    payment = await pay_by_bank(client, app, buyer, admin, order)
    return {
        "order": order,
        "mo": order["merchant_orders"][0]["id"],
        "payment": payment,
        "buyer": buyer,
        "owner1": owner1,
        "owner2": owner2,
        "admin": admin,
    }


async def test_shipping_by_the_wrong_side(client, app, session, paid):
    url = f"{API}/merchant-orders/{paid['mo']}/ship"
    body = {"carrier": "顺丰", "tracking_no": "SF1234567890"}
    problem(await client.post(url, json=body, headers=auth(app, paid["buyer"])), 403, "forbidden")
    r = await client.post(url, json=body, headers=auth(app, paid["owner2"]))
    problem(r, 404, "merchant_order_not_found")
    r = await client.post(url, json=body, headers=auth(app, paid["owner1"]))
    assert r.status_code == 200, r.text


async def test_confirming_receipt_by_the_wrong_side(client, app, session, paid):
    body = {"carrier": "顺丰", "tracking_no": "SF1234567890"}
    r = await client.post(
        f"{API}/merchant-orders/{paid['mo']}/ship", json=body, headers=auth(app, paid["owner1"])
    )
    assert r.status_code == 200
    url = f"{API}/merchant-orders/{paid['mo']}/confirm-receipt"
    problem(await client.post(url, headers=auth(app, paid["owner1"])), 403, "forbidden")
    other_buyer = await make_user(session)
    problem(await client.post(url, headers=auth(app, other_buyer)), 404, "merchant_order_not_found")
    problem(
        await client.post(url, headers=auth(app, paid["owner2"])), 404, "merchant_order_not_found"
    )


async def test_cancelling_by_a_merchant_of_the_order(client, app, session, paid):
    url = f"{API}/orders/{paid['order']['id']}/cancel"
    problem(await client.post(url, headers=auth(app, paid["owner1"])), 403, "forbidden")
    problem(await client.post(url, headers=auth(app, paid["owner2"])), 404, "order_not_found")
    other_buyer = await make_user(session)
    problem(await client.post(url, headers=auth(app, other_buyer)), 404, "order_not_found")


async def test_confirming_a_payment_by_its_buyer(client, app, session):
    merchant, _ = await make_merchant(session)
    product = await make_product(session, merchant)
    buyer = await make_user(session)
    order = await place(client, app, buyer, [(product, 1)])
    r = await client.post(
        f"{API}/orders/{order['id']}/payments",
        headers={**auth(app, buyer), "Idempotency-Key": "pay-1"},
    )
    assert r.status_code == 201, r.text
    url = f"{API}/payments/{r.json()['payment_id']}/confirm"
    body = {"amount_fen": order["total_fen"], "bank_reference": "ABC1"}
    problem(await client.post(url, json=body, headers=auth(app, buyer)), 403, "forbidden")
    other = await make_user(session)
    problem(await client.post(url, json=body, headers=auth(app, other)), 404, "payment_not_found")


@pytest.mark.parametrize("path", ["/users", "/audit-events", "/ledger/balances"])
async def test_admin_only_lists_are_403_by_role(client, app, session, path):
    for role in (Role.buyer, Role.official):
        caller = await make_user(session, role=role)
        problem(await client.get(f"{API}{path}", headers=auth(app, caller)), 403, "forbidden")


@pytest.mark.parametrize("action", ["patch", "activate", "deactivate", "stock-adjustments"])
async def test_member_actions_on_a_product(client, app, session, action):
    merchant, _ = await make_merchant(session)
    waiting = await make_product(session, merchant, status=ProductStatus.pending_review)
    on_sale = await make_product(session, merchant)
    buyer = await make_user(session)
    admin = await make_user(session, role=Role.admin)

    async def call(product, caller):
        if action == "patch":
            return await client.patch(
                f"{API}/products/{product.id}", json={"unit": "箱"}, headers=auth(app, caller)
            )
        body = {"delta": 1, "reason": "盘点"} if action == "stock-adjustments" else {}
        url = f"{API}/products/{product.id}/{action}"
        return await client.post(url, json=body, headers=auth(app, caller))

    problem(await call(waiting, buyer), 404, "product_not_found")
    problem(await call(on_sale, buyer), 403, "not_merchant_member")
    problem(await call(waiting, admin), 403, "not_merchant_member")
