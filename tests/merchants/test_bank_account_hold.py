"""A change of the payout bank account by the owner is audited without the number and holds
payouts until an admin verifies the account (`POST /merchants/{id}/verify-bank-account`).

Written from the side of an attacker who took over an owner's account and redirects payouts,
and of the auditor who must see that it happened without seeing the number."""

from __future__ import annotations

from typing import Any

import pytest

from app.models import MerchantStatus, Role
from tests.fixtures.factories import auth, make_merchant, make_user
from tests.fixtures.merchants import audit_events, make_staff, reload_merchant

BASE = "/api/v1/merchants"
OLD_NO = "6228480000000001234"  # the factory's account number
NEW_BANK = {
    "bank_name": "四川农信巴塘支行",
    "account_name": "新户名",
    "account_no": "6210987654325678",
}


def _bank(**overrides: str) -> dict[str, str]:
    """The factory's bank account with some parts replaced."""
    bank = {"bank_name": "中国农业银行巴塘县支行", "account_no": OLD_NO}
    bank.update(overrides)
    return bank


async def _held_merchant(client: Any, app: Any, session: Any) -> tuple[Any, Any]:
    merchant, owner = await make_merchant(session)
    r = await client.patch(
        f"{BASE}/{merchant.id}", json={"bank_account": NEW_BANK}, headers=auth(app, owner)
    )
    assert r.status_code == 200 and r.json()["payouts_on_hold"] is True, r.text
    return merchant, owner


async def test_owner_changing_the_account_number_holds_payouts(client, app, session):
    merchant, owner = await make_merchant(session)
    r = await client.patch(
        f"{BASE}/{merchant.id}", json={"bank_account": NEW_BANK}, headers=auth(app, owner)
    )
    assert r.status_code == 200, r.text
    assert r.json()["payouts_on_hold"] is True
    # Every reader of the merchant sees the hold: the owner and an admin.
    admin = await make_user(session, role=Role.admin)
    for who in (owner, admin):
        body = (await client.get(f"{BASE}/{merchant.id}", headers=auth(app, who))).json()
        assert body["payouts_on_hold"] is True
        assert body["bank_account"]["account_no"] == "****5678"

    [event] = await audit_events(session, "merchant.bank_account_changed")
    assert event.actor_id == owner.id and event.subject_id == str(merchant.id)
    assert event.detail["changed"] == ["bank_name", "account_name", "account_no"]
    assert event.detail["account_no_masked"] == "****5678"
    assert event.detail["previous_account_no_masked"] == "****1234"
    # Neither number appears in the trail, whole or in any long part.
    text = str(event.detail)
    assert "6210987654" not in text and "62284800" not in text


@pytest.mark.parametrize(
    ("part", "value"),
    [
        ("bank_name", "中国建设银行巴塘支行"),
        ("account_name", "别人的名字"),
        ("account_no", "6228480000000009999"),
    ],
)
async def test_any_part_of_the_account_holds_payouts(client, app, session, part, value):
    merchant, owner = await make_merchant(session)
    bank = {**_bank(account_name=merchant.bank_account_name), part: value}
    r = await client.patch(
        f"{BASE}/{merchant.id}", json={"bank_account": bank}, headers=auth(app, owner)
    )
    assert r.status_code == 200, r.text
    assert (await reload_merchant(session, merchant)).payouts_on_hold is True
    [event] = await audit_events(session, "merchant.bank_account_changed")
    assert event.detail["changed"] == [part]


async def test_no_hold_when_the_account_is_unchanged(client, app, session):
    merchant, owner = await make_merchant(session)
    same = _bank(account_name=merchant.bank_account_name, account_no="6228 4800 0000 0001 234")
    r = await client.patch(
        f"{BASE}/{merchant.id}",
        json={"bank_account": same, "contact_phone": "13911112222"},
        headers=auth(app, owner),
    )
    assert r.status_code == 200, r.text
    assert r.json()["payouts_on_hold"] is False
    assert await audit_events(session, "merchant.bank_account_changed") == []


async def test_an_admins_change_is_audited_but_does_not_hold(client, app, session):
    merchant, _ = await make_merchant(session)
    admin = await make_user(session, role=Role.admin)
    r = await client.patch(
        f"{BASE}/{merchant.id}", json={"bank_account": NEW_BANK}, headers=auth(app, admin)
    )
    assert r.status_code == 200, r.text
    assert r.json()["payouts_on_hold"] is False
    [event] = await audit_events(session, "merchant.bank_account_changed")
    assert event.actor_id == admin.id and event.detail["payouts_on_hold"] is False
    assert "6210987654" not in str(event.detail)


async def test_an_admins_change_does_not_lift_a_hold(client, app, session):
    merchant, _ = await _held_merchant(client, app, session)
    admin = await make_user(session, role=Role.admin)
    r = await client.patch(
        f"{BASE}/{merchant.id}",
        json={"bank_account": _bank(account_name="改回", account_no=OLD_NO)},
        headers=auth(app, admin),
    )
    assert r.status_code == 200 and r.json()["payouts_on_hold"] is True, r.text


async def test_admin_verifies_the_account_once(client, app, session):
    merchant, owner = await _held_merchant(client, app, session)
    admin = await make_user(session, role=Role.admin)
    url = f"{BASE}/{merchant.id}/verify-bank-account"
    r = await client.post(url, json={}, headers=auth(app, admin))
    assert r.status_code == 200, r.text
    assert r.json()["payouts_on_hold"] is False
    assert (await reload_merchant(session, merchant)).payouts_on_hold is False
    [event] = await audit_events(session, "merchant.bank_account_verified")
    assert event.actor_id == admin.id and event.detail == {"account_no_masked": "****5678"}
    # Again: nothing to clear, same answer, no second event.
    r = await client.post(url, headers=auth(app, admin))
    assert r.status_code == 200 and r.json()["payouts_on_hold"] is False
    assert len(await audit_events(session, "merchant.bank_account_verified")) == 1
    # The owner sees the hold lifted.
    body = (await client.get(f"{BASE}/{merchant.id}", headers=auth(app, owner))).json()
    assert body["payouts_on_hold"] is False


@pytest.mark.parametrize("caller", ["owner", "staff", "buyer", "official", "other_owner"])
async def test_only_an_admin_verifies(client, app, session, caller):
    merchant, owner = await _held_merchant(client, app, session)
    if caller == "owner":
        who = owner
    elif caller == "staff":
        who = await make_staff(session, merchant)
    elif caller == "other_owner":
        who = (await make_merchant(session))[1]
    else:
        who = await make_user(session, role=Role(caller))
    r = await client.post(f"{BASE}/{merchant.id}/verify-bank-account", headers=auth(app, who))
    assert r.status_code == 403, r.text
    assert r.json()["code"] == "forbidden"
    assert (await reload_merchant(session, merchant)).payouts_on_hold is True
    assert await audit_events(session, "merchant.bank_account_verified") == []


async def test_verify_refusals_for_anonymous_and_hidden_merchants(client, app, session):
    merchant, owner = await make_merchant(session, status=MerchantStatus.pending)
    r = await client.patch(
        f"{BASE}/{merchant.id}", json={"bank_account": NEW_BANK}, headers=auth(app, owner)
    )
    assert r.json()["payouts_on_hold"] is True
    url = f"{BASE}/{merchant.id}/verify-bank-account"
    r = await client.post(url)
    assert r.status_code == 401 and r.json()["code"] == "not_authenticated"
    # A pending merchant does not exist for outsiders; its owner sees it but may not verify.
    for who in (await make_user(session), (await make_merchant(session))[1]):
        r = await client.post(url, headers=auth(app, who))
        assert r.status_code == 404 and r.json()["code"] == "merchant_not_found"
    r = await client.post(url, headers=auth(app, owner))
    assert r.status_code == 403
    assert (await reload_merchant(session, merchant)).payouts_on_hold is True
