"""Bank transfers: the payment's reference and instructions, an admin confirming the transfer,
what the ledger records, a transfer that arrives after the order was cancelled, commission."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from app.core.time import utcnow
from app.models import Role
from tests.fixtures.factories import auth, make_merchant, make_product, make_user
from tests.fixtures.orders import (
    API,
    audit_actions,
    balances_by_account,
    counts,
    get_order,
    idem,
    open_payment,
    part_of,
    pay_by_bank,
    place,
    place_two_lines,
    run_jobs,
    set_order_times,
    stock_of,
)


async def _confirm(client, app, user, payment_id, amount_fen, bank_reference="ABC-0001"):
    return await client.post(
        f"{API}/payments/{payment_id}/confirm",
        json={"amount_fen": amount_fen, "bank_reference": bank_reference},
        headers=auth(app, user),
    )


async def test_a_bank_transfer_payment_has_a_reference_and_instructions(client, app, cast):
    order = await place_two_lines(client, app, cast)
    payment = await open_payment(client, app, cast["buyer"], order)
    assert payment["provider"] == "bank_transfer"
    assert payment["status"] == "pending"
    assert payment["amount_fen"] == order["total_fen"] == 30000
    assert payment["order_id"] == order["id"]
    assert payment["reference"].startswith("SHP")
    assert payment["client_secret"] is None
    instructions = payment["instructions"]
    settings = app.state.settings
    assert instructions["amount_fen"] == 30000
    assert instructions["reference"] == payment["reference"]
    assert instructions["bank_name"] == settings.platform_bank_name
    assert instructions["account_name"] == settings.platform_bank_account_name
    assert instructions["account_no"] == settings.platform_bank_account_no
    assert datetime.fromisoformat(instructions["pay_before"]) == datetime.fromisoformat(
        order["expires_at"]
    )
    assert "300.00" in instructions["note"]

    again = await open_payment(client, app, cast["buyer"], order)
    assert again["payment_id"] == payment["payment_id"]
    assert again["reference"] == payment["reference"]
    stored = await get_order(client, app, cast["buyer"], order["id"])
    assert [(p["id"], p["status"]) for p in stored["payments"]] == [
        (payment["payment_id"], "pending")
    ]


async def test_the_platform_bank_account_comes_from_the_settings(app_with, cast):
    other_app, other_client = await app_with(
        platform_bank_name="浙江农商银行千岛湖支行",
        platform_bank_account_no="201000123456789",
    )
    order = await place_two_lines(other_client, other_app, cast)
    payment = await open_payment(other_client, other_app, cast["buyer"], order)
    assert payment["instructions"]["bank_name"] == "浙江农商银行千岛湖支行"
    assert payment["instructions"]["account_no"] == "201000123456789"


async def test_only_the_buyer_opens_a_payment(client, app, session, cast):
    order = await place_two_lines(client, app, cast)
    stranger = await make_user(session)
    r = await client.post(
        f"{API}/orders/{order['id']}/payments", headers={**auth(app, stranger), **idem()}
    )
    assert r.status_code == 404
    assert r.json()["code"] == "order_not_found"
    for caller in (cast["owner1"], cast["admin"]):
        r = await client.post(
            f"{API}/orders/{order['id']}/payments", headers={**auth(app, caller), **idem()}
        )
        assert r.status_code == 403
    r = await client.post(f"{API}/orders/{order['id']}/payments", headers=idem())
    assert r.status_code == 401
    assert (await counts(session))["payments"] == 0


async def test_a_wrong_amount_is_refused_and_changes_nothing(client, app, session, cast):
    order = await place_two_lines(client, app, cast)
    payment = await open_payment(client, app, cast["buyer"], order)
    before = await counts(session)

    for amount in (29999, 30001):
        r = await _confirm(client, app, cast["admin"], payment["payment_id"], amount)
        assert r.status_code == 409, r.text
        assert r.json()["code"] == "amount_mismatch"
        assert r.json()["expected_amount_fen"] == 30000
    stored = await get_order(client, app, cast["buyer"], order["id"])
    assert stored["status"] == "pending_payment"
    assert stored["payments"][0]["status"] == "pending"
    assert {mo["status"] for mo in stored["merchant_orders"]} == {"pending_payment"}
    assert await counts(session) == before
    assert (
        await audit_actions(client, app, cast["admin"], "payment.confirmed", payment["payment_id"])
        == []
    )


@pytest.mark.parametrize(
    "body",
    [
        {"amount_fen": 0, "bank_reference": "X"},
        {"amount_fen": -30000, "bank_reference": "X"},
        {"amount_fen": 2**64, "bank_reference": "X"},
        {"amount_fen": 30000},
        {"amount_fen": 30000, "bank_reference": ""},
        {"amount_fen": 30000, "bank_reference": "X" * 101},
        {"amount_fen": 30000, "bank_reference": "X", "paid_at": "2026-01-01"},
        {"amount_fen": 30000.5, "bank_reference": "X"},
    ],
)
async def test_a_bad_confirmation_is_422(client, app, session, cast, body):
    order = await place_two_lines(client, app, cast)
    payment = await open_payment(client, app, cast["buyer"], order)
    r = await client.post(
        f"{API}/payments/{payment['payment_id']}/confirm",
        json=body,
        headers=auth(app, cast["admin"]),
    )
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "validation_error"
    assert (await get_order(client, app, cast["buyer"], order["id"]))["status"] == "pending_payment"


async def test_confirming_an_unknown_payment_is_404(client, app, cast):
    r = await _confirm(client, app, cast["admin"], "00000000-0000-4000-8000-000000000000", 100)
    assert r.status_code == 404
    assert r.json()["code"] == "payment_not_found"


async def test_the_right_amount_pays_the_order_and_posts_the_ledger(client, app, session, cast):
    order = await place_two_lines(client, app, cast)
    payment = await open_payment(client, app, cast["buyer"], order)

    r = await _confirm(client, app, cast["admin"], payment["payment_id"], 30000, "ICBC-778899")
    assert r.status_code == 200, r.text
    confirmed = r.json()
    assert confirmed["status"] == "succeeded"
    assert confirmed["bank_reference"] == "ICBC-778899"
    assert confirmed["succeeded_at"] is not None

    stored = await get_order(client, app, cast["buyer"], order["id"])
    assert stored["status"] == "paid"
    assert stored["paid_at"] is not None
    assert {mo["status"] for mo in stored["merchant_orders"]} == {"paid"}
    assert stored["payments"][0]["status"] == "succeeded"
    # Stock stays taken.
    assert await stock_of(session, cast["p1"]) == 8
    assert await stock_of(session, cast["p2"]) == 4

    events = await audit_actions(
        client, app, cast["admin"], "payment.confirmed", payment["payment_id"]
    )
    assert len(events) == 1
    assert events[0]["actor_id"] == str(cast["admin"].id)
    assert events[0]["subject_type"] == "payment"
    assert events[0]["detail"]["amount_fen"] == 30000

    balances = await balances_by_account(client, app, cast["admin"])
    assert balances[("platform_cash", None)] == 30000
    assert balances[("merchant_payable", str(cast["m1"].id))] == -9000
    assert balances[("merchant_payable", str(cast["m2"].id))] == -21000
    assert sum(v for (acct, _), v in balances.items() if acct == "platform_commission") == 0


@pytest.mark.parametrize("role", ["buyer", "merchant", "official"])
async def test_only_an_admin_confirms_a_transfer(client, app, session, cast, role):
    order = await place_two_lines(client, app, cast)
    payment = await open_payment(client, app, cast["buyer"], order)
    caller = {
        "buyer": cast["buyer"],
        "merchant": cast["owner1"],
        "official": await make_user(session, role=Role.official),
    }[role]
    r = await _confirm(client, app, caller, payment["payment_id"], 30000)
    # Its buyer sees the payment (403); a merchant may not see it (404); an official may do
    # nothing outside statistics (403, API.md roles).
    assert r.status_code == (404 if role == "merchant" else 403)
    assert r.json()["code"] == ("payment_not_found" if role == "merchant" else "forbidden")
    r = await client.post(
        f"{API}/payments/{payment['payment_id']}/confirm",
        json={"amount_fen": 30000, "bank_reference": "X"},
    )
    assert r.status_code == 401
    assert (await get_order(client, app, cast["buyer"], order["id"]))["status"] == "pending_payment"
    assert (await counts(session))["ledger_entries"] == 0


async def test_confirming_twice_is_409(client, app, session, cast):
    order = await place_two_lines(client, app, cast)
    payment = await pay_by_bank(client, app, cast["buyer"], cast["admin"], order)
    before = await counts(session)
    r = await _confirm(client, app, cast["admin"], payment["payment_id"], 30000)
    assert r.status_code == 409
    assert r.json()["code"] == "invalid_transition"
    assert await counts(session) == before
    balances = await balances_by_account(client, app, cast["admin"])
    assert balances[("platform_cash", None)] == 30000


async def test_a_paid_order_is_not_paid_again(client, app, cast):
    order = await place_two_lines(client, app, cast)
    await pay_by_bank(client, app, cast["buyer"], cast["admin"], order)
    r = await client.post(
        f"{API}/orders/{order['id']}/payments", headers={**auth(app, cast["buyer"]), **idem()}
    )
    assert r.status_code == 409
    assert r.json()["code"] == "order_not_payable"


async def test_a_cancelled_order_cannot_be_paid(client, app, session, cast):
    order = await place_two_lines(client, app, cast)
    r = await client.post(f"{API}/orders/{order['id']}/cancel", headers=auth(app, cast["buyer"]))
    assert r.status_code == 200, r.text
    r = await client.post(
        f"{API}/orders/{order['id']}/payments", headers={**auth(app, cast["buyer"]), **idem()}
    )
    assert r.status_code == 409
    assert r.json()["code"] == "order_not_payable"
    assert (await counts(session))["payments"] == 0


async def test_an_order_past_its_deadline_cannot_be_paid(client, app, session, cast):
    order = await place_two_lines(client, app, cast)
    await set_order_times(session, order["id"], expires_at=utcnow() - timedelta(seconds=1))
    r = await client.post(
        f"{API}/orders/{order['id']}/payments", headers={**auth(app, cast["buyer"]), **idem()}
    )
    assert r.status_code == 409
    assert r.json()["code"] == "order_not_payable"


async def test_a_transfer_for_an_order_cancelled_meanwhile_is_refunded_in_full(
    client, app, session, cast
):
    order = await place_two_lines(client, app, cast)
    payment = await open_payment(client, app, cast["buyer"], order)
    await set_order_times(session, order["id"], expires_at=utcnow() - timedelta(minutes=1))
    await run_jobs(app)
    cancelled = await get_order(client, app, cast["buyer"], order["id"])
    assert cancelled["status"] == "cancelled"
    assert cancelled["cancel_reason"] == "payment_timeout"
    assert cancelled["payments"][0]["status"] == "cancelled"

    # The buyer paid anyway; the money arrives after the deadline.
    r = await _confirm(client, app, cast["admin"], payment["payment_id"], 30000, "LATE-1")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "succeeded"

    stored = await get_order(client, app, cast["buyer"], order["id"])
    assert stored["status"] == "cancelled"
    assert {mo["status"] for mo in stored["merchant_orders"]} == {"cancelled"}
    assert [(f["kind"], f["status"], f["amount_fen"]) for f in stored["refunds"]] == [
        ("late_payment", "approved", 30000)  # owed back; paid when the admin sends it
    ]
    # Stock went back once, with the cancellation.
    assert await stock_of(session, cast["p1"]) == 10
    assert await stock_of(session, cast["p2"]) == 5
    events = await audit_actions(
        client, app, cast["admin"], "payment.confirmed", payment["payment_id"]
    )
    assert events[0]["detail"]["refunded_in_full"] is True
    balances = await balances_by_account(client, app, cast["admin"])
    assert balances[("platform_cash", None)] == 30000
    assert balances[("refunds_in_transit", None)] == -30000
    r = await client.post(
        f"{API}/refunds/{stored['refunds'][0]['id']}/mark-paid",
        json={"bank_reference": "BACK-1"},
        headers=auth(app, cast["admin"]),
    )
    assert r.status_code == 200 and r.json()["status"] == "succeeded", r.text
    balances = await balances_by_account(client, app, cast["admin"])
    assert balances.get(("platform_cash", None), 0) == 0
    assert balances.get(("refunds_in_transit", None), 0) == 0
    assert all(v == 0 for (acct, _), v in balances.items() if acct == "merchant_payable")
    # Recorded once: confirming it again is refused.
    r = await _confirm(client, app, cast["admin"], payment["payment_id"], 30000, "LATE-1")
    assert r.status_code == 409


async def test_commission_is_posted_at_the_rate_in_force(app_with, session, cast):
    other_app, other_client = await app_with(commission_rate_bps=500)
    order = await place_two_lines(other_client, other_app, cast)
    await pay_by_bank(other_client, other_app, cast["buyer"], cast["admin"], order)

    balances = await balances_by_account(other_client, other_app, cast["admin"])
    m1, m2 = str(cast["m1"].id), str(cast["m2"].id)
    assert part_of(order, cast["m1"])["subtotal_fen"] == 9000
    assert balances[("platform_cash", None)] == 30000
    assert balances[("platform_commission", m1)] == -450
    assert balances[("platform_commission", m2)] == -1050
    assert balances[("merchant_payable", m1)] == -(9000 - 450)
    assert balances[("merchant_payable", m2)] == -(21000 - 1050)


async def test_amounts_and_quantities_must_be_json_integers(client, app, session):
    from tests.fixtures.factories import auth, make_user
    from tests.fixtures.orders import ADDRESS, idem

    merchant, _ = await make_merchant(session)
    product = await make_product(session, merchant, price_fen=30000)
    buyer = await make_user(session)
    admin = await make_user(session, role=Role.admin)
    for quantity in ("1", 1.0, True):
        r = await client.post(
            "/api/v1/orders",
            json={
                "lines": [{"product_id": str(product.id), "quantity": quantity}],
                "shipping_address": ADDRESS,
                "payment_method": "bank_transfer",
            },
            headers={**auth(app, buyer), **idem()},
        )
        assert r.status_code == 422, quantity
    order = await place(client, app, buyer, [(product, 1)])
    r = await client.post(
        f"/api/v1/orders/{order['id']}/payments", headers={**auth(app, buyer), **idem()}
    )
    payment_id = r.json()["payment_id"]
    for amount in ("30000", "300.00", 30000.0):
        r = await client.post(
            f"/api/v1/payments/{payment_id}/confirm",
            json={"amount_fen": amount, "bank_reference": "B1"},
            headers=auth(app, admin),
        )
        assert r.status_code == 422, amount
        assert r.json()["code"] == "validation_error"
