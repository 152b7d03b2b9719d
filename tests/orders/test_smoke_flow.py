from app.models import Role
from tests.fixtures.factories import auth, make_merchant, make_product, make_user
from tests.fixtures.orders import get_order, ledger_total, pay_back, pay_by_bank, place, stock_of


async def test_bank_transfer_order_paid_shipped_refunded(client, app, session):
    m1, owner1 = await make_merchant(session)
    m2, _ = await make_merchant(session)
    p1 = await make_product(session, m1, price_fen=4500, stock=10)
    p2 = await make_product(session, m2, price_fen=21000, stock=5)
    buyer = await make_user(session)
    admin = await make_user(session, role=Role.admin)

    order = await place(client, app, buyer, [(p1, 2), (p2, 1)])
    assert order["total_fen"] == 2 * 4500 + 21000
    assert order["status"] == "pending_payment"
    assert len(order["merchant_orders"]) == 2
    assert await stock_of(session, p1) == 8

    await pay_by_bank(client, app, buyer, admin, order)
    order = await get_order(client, app, buyer, order["id"])
    assert order["status"] == "paid"

    mo1 = next(mo for mo in order["merchant_orders"] if mo["merchant_id"] == str(m1.id))
    r = await client.post(
        f"/api/v1/merchant-orders/{mo1['id']}/ship",
        json={"carrier": "顺丰", "tracking_no": "SF1234567890"},
        headers=auth(app, owner1),
    )
    assert r.status_code == 200, r.text
    r = await client.post(
        f"/api/v1/orders/{order['id']}/refunds",
        json={"lines": [{"order_line_id": mo1["lines"][0]["id"], "quantity": 1}], "reason": "坏了"},
        headers={**auth(app, buyer), "Idempotency-Key": "r1"},
    )
    assert r.status_code == 201, r.text
    refund = r.json()
    assert refund["amount_fen"] == 4500
    r = await client.post(f"/api/v1/refunds/{refund['id']}/approve", headers=auth(app, owner1))
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "approved"  # owed to the buyer until the admin pays it
    await pay_back(client, app, admin, refund["id"])
    assert await ledger_total(session) == 0
    r = await client.get("/api/v1/ledger/balances", headers=auth(app, admin))
    assert r.json()["total_fen"] == 0
    # shipped units do not return to stock
    assert await stock_of(session, p1) == 8
