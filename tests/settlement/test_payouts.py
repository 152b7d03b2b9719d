"""Paying statements: Stripe Connect transfers (exact requests, refusals, outages, retries that
never pay twice), mark-paid by bank, payouts on hold, and the ledger and audit trail."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.core.time import shanghai_today
from app.integrations.stripe import PaymentProviderError, PaymentProviderUnavailable
from tests.fixtures.factories import auth
from tests.fixtures.orders import API, ask_refund, audit_actions, balances_by_account
from tests.fixtures.settlement import (
    approve,
    assert_owed_agrees,
    ledger_sum,
    of,
    run,
    sell,
)
from tests.fixtures.stripe import closed_port, failing_server, gateway

YESTERDAY = shanghai_today() - timedelta(days=1)


async def statement_of(client, app, session, cast, merchant="m1", quantity=2):
    await sell(client, app, session, cast, merchant, quantity)
    return of(await run(client, app, cast["admin"], YESTERDAY), cast[merchant].id)


async def connect(session, app, merchant, *, enabled=True) -> str:
    """Give the merchant a connected account (as onboarding would), known to the fake."""
    account_id = f"acct_{merchant.id.hex[:16]}"
    app.state.stripe.set_payouts_enabled(account_id, enabled)
    merchant.stripe_account_id = account_id
    merchant.payouts_enabled = enabled
    session.add(merchant)
    await session.commit()
    return account_id


async def pay(client, app, admin, statement_id, *, expect=200):
    r = await client.post(f"{API}/settlements/{statement_id}/payout", headers=auth(app, admin))
    assert r.status_code == expect, r.text
    return r.json()


async def mark_paid(client, app, admin, statement_id, body=None, *, expect=200):
    r = await client.post(
        f"{API}/settlements/{statement_id}/mark-paid",
        json={"bank_reference": "ABC-PAYOUT-0001"} if body is None else body,
        headers=auth(app, admin),
    )
    assert r.status_code == expect, r.text
    return r.json()


async def test_a_stripe_payout_transfers_the_net_once(client, app, session, cast):
    statement = await statement_of(client, app, session, cast)
    account = await connect(session, app, cast["m1"])
    fake = app.state.stripe

    paid = await pay(client, app, cast["admin"], statement["id"])

    assert paid["status"] == "paid"
    assert paid["payout_method"] == "stripe"
    assert fake.transfer_requests == [
        {
            "amount": 8550,
            "currency": "cny",
            "destination": account,
            "metadata": {"settlement_id": statement["id"]},
            "idempotency_key": f"transfer-{statement['id']}",
        }
    ]
    assert paid["payout_reference"] == fake.transfers[0].id
    again = await pay(client, app, cast["admin"], statement["id"], expect=409)
    assert again["code"] == "settlement_already_paid"
    assert len(fake.transfer_requests) == 1
    assert await ledger_sum(session, "payouts", cast["m1"].id) == 0
    assert await ledger_sum(session, "platform_cash") == 450  # what stays: the commission
    (event,) = await audit_actions(client, app, cast["admin"], "settlement.paid", statement["id"])
    assert event["detail"]["method"] == "stripe"
    await assert_owed_agrees(session, cast["m1"].id)


@pytest.mark.parametrize("enabled", [False, None])
async def test_no_payouts_without_an_enabled_connected_account(client, app, session, cast, enabled):
    statement = await statement_of(client, app, session, cast)
    if enabled is not None:
        await connect(session, app, cast["m1"], enabled=enabled)
    body = await pay(client, app, cast["admin"], statement["id"], expect=409)
    assert body["code"] == "payouts_not_enabled"
    assert app.state.stripe.transfer_requests == []
    r = await client.get(f"{API}/settlements/{statement['id']}", headers=auth(app, cast["admin"]))
    assert r.json()["status"] == "pending_payout"


async def test_a_refusal_leaves_the_statement_payable(client, app, session, cast):
    statement = await statement_of(client, app, session, cast)
    await connect(session, app, cast["m1"])
    fake = app.state.stripe
    fake.fail_next = ["refuse"]

    body = await pay(client, app, cast["admin"], statement["id"], expect=502)
    assert body["code"] == "payment_provider_error"
    r = await client.get(f"{API}/settlements/{statement['id']}", headers=auth(app, cast["admin"]))
    assert r.json()["status"] == "pending_payout"
    assert fake.transfers == []
    await assert_owed_agrees(session, cast["m1"].id)

    # refused means nothing moved: the finance office may pay it by bank instead
    paid = await mark_paid(client, app, cast["admin"], statement["id"])
    assert paid["payout_method"] == "bank"


@pytest.mark.parametrize("failure", ["outage", "lost_answer"])
async def test_a_retry_after_an_outage_never_pays_twice(client, app, session, cast, failure):
    statement = await statement_of(client, app, session, cast)
    await connect(session, app, cast["m1"])
    fake = app.state.stripe
    fake.fail_next = [failure]

    body = await pay(client, app, cast["admin"], statement["id"], expect=503)
    assert body["code"] == "payment_provider_unavailable"
    r = await client.get(f"{API}/settlements/{statement['id']}", headers=auth(app, cast["admin"]))
    assert r.json()["status"] == "pending_payout"
    # the transfer may have been made: a bank payout now could pay twice
    blocked = await mark_paid(client, app, cast["admin"], statement["id"], expect=409)
    assert blocked["code"] == "payout_in_progress"
    batch = await client.get(
        f"{API}/settlements/export?format=csv", headers=auth(app, cast["admin"])
    )
    assert statement["id"] not in batch.content.decode("utf-8-sig")

    paid = await pay(client, app, cast["admin"], statement["id"])

    assert paid["status"] == "paid"
    assert len(fake.transfers) == 1
    keys = {req["idempotency_key"] for req in fake.transfer_requests}
    assert keys == {f"transfer-{statement['id']}"}
    assert len(fake.transfer_requests) == 2
    assert paid["payout_reference"] == fake.transfers[0].id
    await assert_owed_agrees(session, cast["m1"].id)


async def test_the_real_wrapper_maps_stripe_failures(client, app, session, cast):
    """Our gateway's own create_transfer against a Stripe that fails: 5xx is 503, 4xx is 502,
    no answer at all is 503."""
    import uuid

    async with failing_server(500) as down:
        with pytest.raises(PaymentProviderUnavailable):
            await gateway(down.url).create_transfer(
                settlement_id=uuid.uuid4(), amount_fen=100, destination="acct_x"
            )
        assert any("/v1/transfers" in line for line in down.requests)
    async with failing_server(400) as refusing:
        with pytest.raises(PaymentProviderError):
            await gateway(refusing.url).create_transfer(
                settlement_id=uuid.uuid4(), amount_fen=100, destination="acct_x"
            )
    with pytest.raises(PaymentProviderUnavailable):
        await gateway(f"http://127.0.0.1:{closed_port()}").create_transfer(
            settlement_id=uuid.uuid4(), amount_fen=100, destination="acct_x"
        )


async def test_mark_paid_records_the_bank_reference_once(client, app, session, cast):
    statement = await statement_of(client, app, session, cast)
    before = await balances_by_account(client, app, cast["admin"])
    assert before[("payouts", str(cast["m1"].id))] == -8550

    paid = await mark_paid(client, app, cast["admin"], statement["id"])

    assert paid["status"] == "paid"
    assert paid["payout_method"] == "bank"
    assert paid["payout_reference"] == "ABC-PAYOUT-0001"
    assert paid["paid_at"] is not None
    after = await balances_by_account(client, app, cast["admin"])
    assert after[("payouts", str(cast["m1"].id))] == 0
    twice = await mark_paid(client, app, cast["admin"], statement["id"], expect=409)
    assert twice["code"] == "settlement_already_paid"
    events = await audit_actions(client, app, cast["admin"], "settlement.paid", statement["id"])
    assert [e["detail"]["reference"] for e in events] == ["ABC-PAYOUT-0001"]
    await assert_owed_agrees(session, cast["m1"].id)


@pytest.mark.parametrize(
    ("body", "code"),
    [({}, "validation_error"), ({"bank_reference": ""}, "validation_error")],
)
async def test_mark_paid_needs_a_reference(client, app, session, cast, body, code):
    statement = await statement_of(client, app, session, cast)
    r = await mark_paid(client, app, cast["admin"], statement["id"], body, expect=422)
    assert r["code"] == code
    got = await client.get(f"{API}/settlements/{statement['id']}", headers=auth(app, cast["admin"]))
    assert got.json()["status"] == "pending_payout"


async def test_a_carried_forward_statement_is_never_paid(client, app, session, cast):
    order = await sell(client, app, session, cast, "m1", 2, days_ago=10)
    await run(client, app, cast["admin"], shanghai_today() - timedelta(days=3))
    refund = await ask_refund(client, app, cast["buyer"], order, [(order["line_id"], 2)])
    await approve(client, app, cast["admin"], refund["id"])
    carried = of(await run(client, app, cast["admin"], YESTERDAY), cast["m1"].id)
    assert carried["status"] == "carried_forward"
    await connect(session, app, cast["m1"])

    for action in (mark_paid, pay):
        body = await action(client, app, cast["admin"], carried["id"], expect=409)
        assert body["code"] == "settlement_not_payable"
    assert app.state.stripe.transfer_requests == []


async def test_payouts_on_hold(client, app, session, cast):
    statement = await statement_of(client, app, session, cast)
    await connect(session, app, cast["m1"])
    cast["m1"].payouts_on_hold = True
    session.add(cast["m1"])
    await session.commit()

    for action in (mark_paid, pay):
        body = await action(client, app, cast["admin"], statement["id"], expect=409)
        assert body["code"] == "payouts_on_hold"
    assert app.state.stripe.transfer_requests == []
    batch = await client.get(
        f"{API}/settlements/export?format=csv", headers=auth(app, cast["admin"])
    )
    assert statement["id"] not in batch.content.decode("utf-8-sig")

    cast["m1"].payouts_on_hold = False
    session.add(cast["m1"])
    await session.commit()
    assert (await pay(client, app, cast["admin"], statement["id"]))["status"] == "paid"


async def test_unknown_statements_are_404(client, app, cast):
    import uuid

    for path in ("payout", "mark-paid"):
        r = await client.post(
            f"{API}/settlements/{uuid.uuid4()}/{path}",
            json={"bank_reference": "X"} if path == "mark-paid" else {},
            headers=auth(app, cast["admin"]),
        )
        assert r.status_code == 404
        assert r.json()["code"] == "settlement_not_found"


@pytest.mark.parametrize("path", ["payout", "mark-paid"])
async def test_only_admins_pay(client, app, session, cast, path):
    statement = await statement_of(client, app, session, cast)
    await connect(session, app, cast["m1"])
    r = await client.post(
        f"{API}/settlements/{statement['id']}/{path}",
        json={"bank_reference": "MINE"} if path == "mark-paid" else {},
        headers=auth(app, cast["owner1"]),
    )
    assert r.status_code == 403
    assert app.state.stripe.transfer_requests == []


async def test_payouts_follow_the_account_updated_webhook(client, app, session, cast):
    """Stripe's signed `account.updated` turns payouts on (and off) for the merchant."""
    from tests.fixtures.stripe import deliver, event

    statement = await statement_of(client, app, session, cast)
    account = await connect(session, app, cast["m1"], enabled=False)
    assert (await pay(client, app, cast["admin"], statement["id"], expect=409))[
        "code"
    ] == "payouts_not_enabled"

    app.state.stripe.set_payouts_enabled(account, True)
    r = await deliver(
        client,
        event("account.updated", {"id": account, "object": "account", "payouts_enabled": True}),
    )
    assert r.status_code == 200, r.text

    paid = await pay(client, app, cast["admin"], statement["id"])
    assert paid["status"] == "paid"
    assert [t["destination"] for t in app.state.stripe.transfer_requests] == [account]
