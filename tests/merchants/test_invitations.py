"""No one is made staff without consent: the owner of an approved merchant invites an e-mail
address, and only the invited buyer, signed in, joins by accepting. Inviting tells the owner
nothing about who has an account; staff can leave.

Written from the side of the victim (a buyer someone tries to enrol), of the prober (an owner
testing which e-mails exist) and of the auditor."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from app.core.time import utcnow
from app.models import MerchantInvitation, MerchantRole, MerchantStatus, Role, User
from tests.fixtures.factories import PASSWORD, auth, make_merchant, make_user
from tests.fixtures.merchants import application, audit_events, make_staff, reload_user

BASE = "/api/v1/merchants"


async def invite(
    client: httpx.AsyncClient, app: FastAPI, owner: User, merchant: Any, email: str
) -> httpx.Response:
    return await client.post(
        f"{BASE}/{merchant.id}/members",
        json={"email": email, "role": "staff"},
        headers=auth(app, owner),
    )


async def my_invitations(
    client: httpx.AsyncClient, app: FastAPI, user: User
) -> list[dict[str, Any]]:
    r = await client.get("/api/v1/me/invitations", headers=auth(app, user))
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


async def answer(
    client: httpx.AsyncClient, app: FastAPI, user: User, invitation_id: str, verb: str
) -> httpx.Response:
    return await client.post(
        f"/api/v1/invitations/{invitation_id}/{verb}", json={}, headers=auth(app, user)
    )


async def test_inviting_does_not_enrol_and_accepting_does(client, app, session):
    merchant, owner = await make_merchant(session, name="巴塘县松茸合作社")
    buyer = await make_user(session, email="zhuoma@example.cn")

    r = await invite(client, app, owner, merchant, "  ZhuoMa@Example.CN ")
    assert r.status_code == 202, r.text
    assert r.json()["email"] == "zhuoma@example.cn" and r.json()["role"] == "staff"
    # Without the buyer's consent nothing changed: still a buyer, not listed as a member.
    assert (await reload_user(session, buyer)).role == Role.buyer
    members = await client.get(f"{BASE}/{merchant.id}/members", headers=auth(app, owner))
    assert [m["user_id"] for m in members.json()["items"]] == [str(owner.id)]

    [pending] = await my_invitations(client, app, buyer)
    assert pending["merchant_id"] == str(merchant.id)
    assert pending["merchant_name"] == "巴塘县松茸合作社"
    assert (pending["status"], pending["role"]) == ("pending", "staff")
    assert pending["expires_at"] == r.json()["expires_at"]

    r = await answer(client, app, buyer, pending["id"], "accept")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "accepted" and r.json()["decided_at"] is not None
    me = (await client.get("/api/v1/me", headers=auth(app, buyer))).json()
    assert (me["role"], me["merchant_id"], me["merchant_role"]) == (
        "merchant",
        str(merchant.id),
        "staff",
    )
    assert (await my_invitations(client, app, buyer))[0]["status"] == "accepted"

    [invited] = await audit_events(session, "merchant.member_invited")
    assert invited.actor_id == owner.id and invited.subject_id == str(merchant.id)
    assert invited.detail["invitation_id"] == pending["id"]
    [accepted] = await audit_events(session, "merchant.invitation_accepted")
    assert accepted.actor_id == buyer.id and accepted.subject_id == str(merchant.id)
    assert accepted.detail["user_id"] == str(buyer.id)


async def test_the_answer_is_the_same_whoever_the_address_is(client, app, session):
    merchant, owner = await make_merchant(session)
    other, other_owner = await make_merchant(session)
    targets = {
        "no account": "nobody-here@example.cn",
        "buyer": (await make_user(session)).email,
        "admin": (await make_user(session, role=Role.admin)).email,
        "official": (await make_user(session, role=Role.official)).email,
        "own staff": (await make_staff(session, merchant)).email,
        "other owner": other_owner.email,
        "other staff": (await make_staff(session, other)).email,
        "the owner": owner.email,
    }
    answers = {}
    for kind, email in targets.items():
        r = await invite(client, app, owner, merchant, email)
        body = r.json()
        assert body.pop("email") == email
        answers[kind] = (
            r.status_code,
            tuple(sorted(body)),
            body["role"],
            r.headers["content-type"],
        )
    assert len(set(answers.values())) == 1, answers
    assert answers["buyer"][0] == 202


@pytest.mark.parametrize("kind", ["admin", "official", "other_staff", "other_owner"])
async def test_an_invitation_to_a_non_buyer_can_never_be_accepted(client, app, session, kind):
    merchant, owner = await make_merchant(session)
    other, other_owner = await make_merchant(session)
    if kind == "other_staff":
        target = await make_staff(session, other)
    elif kind == "other_owner":
        target = other_owner
    else:
        target = await make_user(session, role=Role(kind))
    assert (await invite(client, app, owner, merchant, target.email)).status_code == 202
    assert await my_invitations(client, app, target) == []
    if kind == "other_staff":
        # Even once it has left its merchant and is a buyer, there is nothing to accept.
        r = await client.delete(f"{BASE}/{other.id}/members/{target.id}", headers=auth(app, target))
        assert r.status_code == 204, r.text
        assert (await reload_user(session, target)).role == Role.buyer
        assert await my_invitations(client, app, target) == []
    [event] = await audit_events(session, "merchant.member_invited")
    assert event.detail["deliverable"] is False and event.detail["invitation_id"] is None
    t = await reload_user(session, target)
    assert t.merchant_id != merchant.id


async def test_an_address_without_an_account_can_sign_up_and_accept(client, app, session):
    merchant, owner = await make_merchant(session)
    assert (await invite(client, app, owner, merchant, "new.hire@example.cn")).status_code == 202
    r = await client.post(
        "/api/v1/auth/register",
        json={
            "email": "new.hire@example.cn",
            "password": PASSWORD,
            "display_name": "新员工",
            "region_code": "513335",
        },
    )
    assert r.status_code == 201, r.text
    user = await session.get(User, uuid.UUID(r.json()["id"]))
    await session.commit()
    assert user is not None
    [pending] = await my_invitations(client, app, user)
    assert (await answer(client, app, user, pending["id"], "accept")).status_code == 200
    assert (await reload_user(session, user)).merchant_role == MerchantRole.staff


async def test_declining(client, app, session):
    merchant, owner = await make_merchant(session)
    buyer = await make_user(session)
    await invite(client, app, owner, merchant, buyer.email)
    [pending] = await my_invitations(client, app, buyer)
    r = await answer(client, app, buyer, pending["id"], "decline")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "declined"
    assert (await reload_user(session, buyer)).role == Role.buyer
    # A declined invitation cannot be accepted afterwards, nor declined twice.
    for verb in ("accept", "decline"):
        r = await answer(client, app, buyer, pending["id"], verb)
        assert r.status_code == 409 and r.json()["code"] == "invalid_transition", r.text
    assert (await reload_user(session, buyer)).role == Role.buyer
    [event] = await audit_events(session, "merchant.invitation_declined")
    assert event.actor_id == buyer.id and event.subject_id == str(merchant.id)


async def test_another_users_invitation_is_not_found(client, app, session):
    merchant, owner = await make_merchant(session)
    invited = await make_user(session)
    intruder = await make_user(session)
    await invite(client, app, owner, merchant, invited.email)
    [pending] = await my_invitations(client, app, invited)
    assert await my_invitations(client, app, intruder) == []
    for who in (intruder, owner, await make_user(session, role=Role.admin)):
        for verb in ("accept", "decline"):
            r = await answer(client, app, who, pending["id"], verb)
            assert r.status_code == 404 and r.json()["code"] == "invitation_not_found"
    r = await answer(client, app, invited, "00000000-0000-4000-8000-000000000000", "accept")
    assert r.status_code == 404
    assert (await reload_user(session, intruder)).role == Role.buyer
    assert (await my_invitations(client, app, invited))[0]["status"] == "pending"
    r = await client.post(f"/api/v1/invitations/{pending['id']}/accept")
    assert r.status_code == 401
    assert (await client.get("/api/v1/me/invitations")).status_code == 401


async def test_an_expired_invitation_cannot_be_answered(client, app, session):
    merchant, owner = await make_merchant(session)
    buyer = await make_user(session)
    r = await invite(client, app, owner, merchant, buyer.email)
    days = app.state.settings.invitation_ttl_days
    assert days == 7
    # The default lifetime is a week, as the answer says.
    expires = r.json()["expires_at"]
    [pending] = await my_invitations(client, app, buyer)
    await session.execute(
        update(MerchantInvitation)
        .where(MerchantInvitation.id == uuid.UUID(pending["id"]))
        .values(expires_at=utcnow() - timedelta(seconds=1))
    )
    await session.commit()
    assert expires > pending["created_at"]
    assert (await my_invitations(client, app, buyer))[0]["status"] == "expired"
    for verb in ("accept", "decline"):
        r = await answer(client, app, buyer, pending["id"], verb)
        assert r.status_code == 409 and r.json()["code"] == "invitation_expired", r.text
    assert (await reload_user(session, buyer)).role == Role.buyer
    # Inviting again gives a fresh invitation that works.
    await invite(client, app, owner, merchant, buyer.email)
    fresh = [i for i in await my_invitations(client, app, buyer) if i["status"] == "pending"]
    assert len(fresh) == 1
    assert (await answer(client, app, buyer, fresh[0]["id"], "accept")).status_code == 200


async def test_inviting_again_replaces_the_pending_invitation(client, app, session):
    merchant, owner = await make_merchant(session)
    buyer = await make_user(session)
    await invite(client, app, owner, merchant, buyer.email)
    [first] = await my_invitations(client, app, buyer)
    await invite(client, app, owner, merchant, buyer.email)
    [second] = await my_invitations(client, app, buyer)
    assert second["id"] != first["id"] and second["status"] == "pending"
    r = await answer(client, app, buyer, first["id"], "accept")
    assert r.status_code == 409 and r.json()["code"] == "invalid_transition"
    assert (await answer(client, app, buyer, second["id"], "accept")).status_code == 200


@pytest.mark.parametrize(
    "status", [MerchantStatus.pending, MerchantStatus.rejected, MerchantStatus.suspended]
)
async def test_only_an_approved_merchant_invites(client, app, session, status):
    merchant, owner = await make_merchant(session, status=status)
    buyer = await make_user(session)
    r = await invite(client, app, owner, merchant, buyer.email)
    assert r.status_code == 409 and r.json()["code"] == "merchant_not_approved", r.text
    assert await my_invitations(client, app, buyer) == []
    assert await audit_events(session, "merchant.member_invited") == []


async def test_accepting_when_no_longer_a_buyer(client, app, session):
    first, first_owner = await make_merchant(session)
    second, second_owner = await make_merchant(session)
    buyer = await make_user(session)
    await invite(client, app, first_owner, first, buyer.email)
    await invite(client, app, second_owner, second, buyer.email)
    by_merchant = {i["merchant_id"]: i["id"] for i in await my_invitations(client, app, buyer)}
    assert (
        await answer(client, app, buyer, by_merchant[str(first.id)], "accept")
    ).status_code == 200
    r = await answer(client, app, buyer, by_merchant[str(second.id)], "accept")
    assert r.status_code == 409 and r.json()["code"] == "not_a_buyer"
    user = await reload_user(session, buyer)
    assert (user.merchant_id, user.merchant_role) == (first.id, MerchantRole.staff)


async def test_an_applicant_cannot_accept(client, app, session):
    merchant, owner = await make_merchant(session)
    buyer = await make_user(session)
    await invite(client, app, owner, merchant, buyer.email)
    [pending] = await my_invitations(client, app, buyer)
    r = await client.post(BASE, json=application(), headers=auth(app, buyer))
    assert r.status_code == 201, r.text
    r = await answer(client, app, buyer, pending["id"], "accept")
    assert r.status_code == 409 and r.json()["code"] == "not_a_buyer"
    assert (await reload_user(session, buyer)).merchant_role == MerchantRole.owner


async def test_accepting_while_the_merchant_is_suspended(client, app, session):
    merchant, owner = await make_merchant(session)
    buyer = await make_user(session)
    admin = await make_user(session, role=Role.admin)
    await invite(client, app, owner, merchant, buyer.email)
    [pending] = await my_invitations(client, app, buyer)
    r = await client.post(
        f"{BASE}/{merchant.id}/suspend", json={"reason": "核查中"}, headers=auth(app, admin)
    )
    assert r.status_code == 200, r.text
    r = await answer(client, app, buyer, pending["id"], "accept")
    assert r.status_code == 409 and r.json()["code"] == "merchant_not_approved"
    assert (await reload_user(session, buyer)).role == Role.buyer


async def test_staff_leaves_and_is_a_buyer_again(client, app, session):
    merchant, owner = await make_merchant(session)
    staff = await make_staff(session, merchant)
    r = await client.delete(f"{BASE}/{merchant.id}/members/{staff.id}", headers=auth(app, staff))
    assert r.status_code == 204, r.text
    user = await reload_user(session, staff)
    assert (user.role, user.merchant_id, user.merchant_role) == (Role.buyer, None, None)
    [event] = await audit_events(session, "merchant.member_left")
    assert event.actor_id == staff.id and event.detail == {"user_id": str(staff.id)}
    # It can no longer act for the merchant, and the owner's list no longer has it.
    r = await client.get(f"{BASE}/{merchant.id}/members", headers=auth(app, owner))
    assert [m["user_id"] for m in r.json()["items"]] == [str(owner.id)]


async def test_leaving_refusals(client, app, session):
    merchant, owner = await make_merchant(session)
    buyer = await make_user(session)
    url = f"{BASE}/{merchant.id}/members"
    # The owner cannot leave this way; a buyer is not a member to begin with.
    r = await client.delete(f"{url}/{owner.id}", headers=auth(app, owner))
    assert r.status_code == 409 and r.json()["code"] == "cannot_remove_owner"
    r = await client.delete(f"{url}/{buyer.id}", headers=auth(app, buyer))
    assert r.status_code == 404 and r.json()["code"] == "member_not_found"
    # Staff may remove itself only, not a colleague.
    staff, colleague = await make_staff(session, merchant), await make_staff(session, merchant)
    r = await client.delete(f"{url}/{colleague.id}", headers=auth(app, staff))
    assert r.status_code == 403
    assert (await reload_user(session, colleague)).merchant_id == merchant.id
    assert await audit_events(session) == []
