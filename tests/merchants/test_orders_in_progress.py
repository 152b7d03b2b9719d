"""A buyer with orders in progress cannot become a merchant member (applying, or accepting an
invitation)."""

from app.models import Role
from tests.fixtures.factories import auth, make_merchant, make_product, make_user
from tests.fixtures.merchants import application, merchant_count, reload_user
from tests.fixtures.orders import get_order, pay_by_bank, place


async def test_applicant_with_an_unpaid_order_is_refused(client, app, session):
    seller, _ = await make_merchant(session)
    product = await make_product(session, seller)
    buyer = await make_user(session)
    await place(client, app, buyer, [(product, 1)])
    before = await merchant_count(session)

    r = await client.post("/api/v1/merchants", json=application(), headers=auth(app, buyer))

    assert r.status_code == 409
    assert r.json()["code"] == "orders_in_progress"
    assert await merchant_count(session) == before
    assert (await reload_user(session, buyer)).role == Role.buyer


async def test_applicant_whose_orders_are_done_may_apply(client, app, session):
    seller, _ = await make_merchant(session)
    product = await make_product(session, seller)
    buyer = await make_user(session)
    order = await place(client, app, buyer, [(product, 1)])
    r = await client.post(f"/api/v1/orders/{order['id']}/cancel", headers=auth(app, buyer))
    assert r.status_code == 200

    r = await client.post("/api/v1/merchants", json=application(), headers=auth(app, buyer))

    assert r.status_code == 201, r.text


async def test_invited_buyer_cannot_accept_with_a_paid_order_in_progress(client, app, session):
    seller, _ = await make_merchant(session)
    product = await make_product(session, seller)
    admin = await make_user(session, role=Role.admin)
    shopper = await make_user(session)
    order = await place(client, app, shopper, [(product, 1)])
    await pay_by_bank(client, app, shopper, admin, order)
    assert (await get_order(client, app, shopper, order["id"]))["status"] == "paid"
    other, owner = await make_merchant(session)

    r = await client.post(
        f"/api/v1/merchants/{other.id}/members",
        json={"email": shopper.email, "role": "staff"},
        headers=auth(app, owner),
    )
    assert r.status_code == 202, r.text
    r = await client.get("/api/v1/me/invitations", headers=auth(app, shopper))
    [invitation] = r.json()["items"]
    r = await client.post(
        f"/api/v1/invitations/{invitation['id']}/accept", headers=auth(app, shopper)
    )

    assert r.status_code == 409
    assert r.json()["code"] == "orders_in_progress"
    assert (await reload_user(session, shopper)).role == Role.buyer
    # Still pending: once the order is done, the buyer can accept.
    r = await client.get("/api/v1/me/invitations", headers=auth(app, shopper))
    assert r.json()["items"][0]["status"] == "pending"
