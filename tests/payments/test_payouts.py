"""A merchant's payout account (Stripe Connect, through the fake Connect gateway)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from app.models import Merchant, MerchantRole, MerchantStatus, Role
from tests.fixtures.factories import auth, make_merchant, make_user
from tests.fixtures.stripe import FakeConnect, deliver, event

BASE = "http://127.0.0.1:8000/api/v1/merchants"


@pytest.fixture
def connect(stripe_app, localstripe) -> FakeConnect:
    fake = FakeConnect(localstripe.url)
    stripe_app.state.stripe = fake
    return fake


def _url(merchant) -> str:
    return f"/api/v1/merchants/{merchant.id}/payout-account"


async def _stored(session, merchant) -> tuple[str | None, bool]:
    row = (
        await session.execute(
            select(Merchant.stripe_account_id, Merchant.payouts_enabled)
            .where(Merchant.id == merchant.id)
            .execution_options(populate_existing=True)
        )
    ).one()
    return row[0], row[1]


async def test_the_owner_onboards_and_the_account_is_created_once(
    stripe_client, stripe_app, shop, connect, session
):
    m = shop.merchant
    before = datetime.now().astimezone()
    r = await stripe_client.post(_url(m), json={}, headers=auth(stripe_app, shop.owner))
    assert r.status_code == 200, r.text
    first = r.json()
    assert set(first) == {"onboarding_url", "expires_at"}
    expires_at = datetime.fromisoformat(first["expires_at"])
    assert expires_at.utcoffset() is not None
    assert before < expires_at <= before + timedelta(minutes=6)

    [(name, create)] = connect.calls[:1]
    assert name == "create_connected_account"
    assert create == {"merchant_id": m.id}
    [account_id] = list(connect.accounts)
    assert connect.calls[1] == (
        "create_account_link",
        {
            "account_id": account_id,
            "refresh_url": f"{BASE}/{m.id}/payout-account?refresh=1",
            "return_url": f"{BASE}/{m.id}/payout-account",
        },
    )
    assert first["onboarding_url"].startswith(f"https://connect.stripe.com/setup/e/{account_id}/")
    assert await _stored(session, m) == (account_id, False)

    # asking again: a fresh link for the same account, no second account
    r = await stripe_client.post(_url(m), json={}, headers=auth(stripe_app, shop.owner))
    assert r.status_code == 200, r.text
    assert r.json()["onboarding_url"] != first["onboarding_url"]
    assert connect.names() == [
        "create_connected_account",
        "create_account_link",
        "create_account_link",
    ]
    assert connect.calls[2][1]["account_id"] == account_id
    assert len(connect.accounts) == 1

    r = await stripe_client.get(_url(m), headers=auth(stripe_app, shop.owner))
    assert r.status_code == 200
    assert r.json() == {"method": "stripe", "account_id": account_id, "payouts_enabled": False}


async def test_account_updated_keeps_payouts_enabled_current(
    stripe_client, stripe_app, shop, connect, session
):
    m = shop.merchant
    r = await stripe_client.post(_url(m), json={}, headers=auth(stripe_app, shop.owner))
    assert r.status_code == 200
    [account_id] = list(connect.accounts)

    # the merchant finishes onboarding at Stripe
    connect.set_payouts_enabled(account_id, True)
    snapshot = {"id": account_id, "object": "account", "payouts_enabled": True}
    r = await deliver(stripe_client, event("account.updated", snapshot))
    assert r.status_code == 200, r.text
    assert connect.calls[-1] == ("retrieve_account", {"account_id": account_id})
    r = await stripe_client.get(_url(m), headers=auth(stripe_app, shop.owner))
    assert r.json() == {"method": "stripe", "account_id": account_id, "payouts_enabled": True}

    # a stale event (its snapshot says disabled) changes nothing: Stripe is re-read
    stale = {"id": account_id, "object": "account", "payouts_enabled": False}
    r = await deliver(stripe_client, event("account.updated", stale))
    assert r.status_code == 200
    assert await _stored(session, m) == (account_id, True)

    # Stripe disables payouts later (e.g. a document expired)
    connect.set_payouts_enabled(account_id, False)
    r = await deliver(stripe_client, event("account.updated", stale))
    assert r.status_code == 200
    assert await _stored(session, m) == (account_id, False)


async def test_account_updated_for_an_account_we_do_not_know(
    stripe_client, stripe_app, shop, connect, session
):
    connect.set_payouts_enabled("acct_elsewhere", True)
    r = await deliver(
        stripe_client,
        event("account.updated", {"id": "acct_elsewhere", "object": "account"}),
    )
    assert r.status_code == 200
    assert r.json()["duplicate"] is False
    assert await _stored(session, shop.merchant) == (None, False)


async def test_who_may_see_and_set_up_the_payout_account(
    stripe_client, stripe_app, shop, connect, session
):
    m = shop.merchant
    staff = await make_user(
        session, role=Role.merchant, merchant=m, merchant_role=MerchantRole.staff
    )
    other_merchant, other_owner = await make_merchant(session)

    # staff: may look, may not set up
    r = await stripe_client.post(_url(m), json={}, headers=auth(stripe_app, staff))
    assert r.status_code == 403
    assert r.json()["code"] == "forbidden"
    r = await stripe_client.get(_url(m), headers=auth(stripe_app, staff))
    assert r.status_code == 200
    assert r.json() == {"method": "bank_transfer", "account_id": None, "payouts_enabled": False}

    # another merchant's owner and a buyer see the approved (public) merchant: 403
    for outsider in (other_owner, shop.buyer):
        for method in ("GET", "POST"):
            r = await stripe_client.request(
                method,
                _url(m),
                json={} if method == "POST" else None,
                headers=auth(stripe_app, outsider),
            )
            assert r.status_code == 403, (outsider.role, method, r.text)
            assert r.json()["code"] == "forbidden"

    # an admin reads it but does not onboard for the merchant
    r = await stripe_client.get(_url(m), headers=auth(stripe_app, shop.admin))
    assert r.status_code == 200
    assert r.json()["method"] == "bank_transfer"
    r = await stripe_client.post(_url(m), json={}, headers=auth(stripe_app, shop.admin))
    assert r.status_code == 403

    # anonymous
    for method in ("GET", "POST"):
        r = await stripe_client.request(method, _url(m))
        assert r.status_code == 401
        assert r.headers["content-type"].startswith("application/problem+json")

    # no such merchant
    r = await stripe_client.get(
        f"/api/v1/merchants/{uuid.uuid4()}/payout-account", headers=auth(stripe_app, shop.admin)
    )
    assert r.status_code == 404

    assert connect.calls == []
    assert await _stored(session, m) == (None, False)
    assert await _stored(session, other_merchant) == (None, False)


async def test_a_rejected_merchant_cannot_set_up_payouts(
    stripe_client, stripe_app, connect, session
):
    merchant, owner = await make_merchant(session, status=MerchantStatus.rejected)
    r = await stripe_client.post(_url(merchant), json={}, headers=auth(stripe_app, owner))
    assert r.status_code == 409
    assert r.json()["code"] == "invalid_transition"
    assert connect.calls == []


async def test_without_stripe_payouts_go_by_bank(client, app, shop):
    r = await client.post(_url(shop.merchant), json={}, headers=auth(app, shop.owner))
    assert r.status_code == 503
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "payment_provider_unavailable"
    r = await client.get(_url(shop.merchant), headers=auth(app, shop.owner))
    assert r.status_code == 200
    assert r.json() == {"method": "bank_transfer", "account_id": None, "payouts_enabled": False}
