"""A rejected merchant applies again: the owner corrects every field, then resubmits; the admin
sees the earlier rejections."""

import uuid

from app.models import Merchant, MerchantStatus, Role
from tests.fixtures.factories import auth, make_merchant, make_user, valid_uscc
from tests.fixtures.merchants import application, audit_events, make_staff, reload_merchant

M = "/api/v1/merchants"


async def _rejected(client, app, session, reason="营业执照照片不清晰"):
    """A merchant applied for over the API and rejected by an admin, its owner and the admin."""
    applicant = await make_user(session)
    admin = await make_user(session, role=Role.admin)
    r = await client.post(M, json=application(), headers=auth(app, applicant))
    assert r.status_code == 201, r.text
    merchant_id = r.json()["id"]
    r = await client.post(
        f"{M}/{merchant_id}/reject", json={"reason": reason}, headers=auth(app, admin)
    )
    assert r.status_code == 200, r.text
    return merchant_id, applicant, admin


async def test_owner_corrects_every_field_and_resubmits(client, app, session):
    merchant_id, owner, admin = await _rejected(client, app, session)
    new_code = valid_uscc("N2513335")
    correction = application(
        name="巴塘县中咱镇核桃专业合作社",
        kind="village_collective",
        uscc=new_code,
        legal_representative="次仁",
        contact_phone="13900001111",
        region_code="513335",
        township="中咱镇",
        address="巴塘县中咱镇1号",
        linked_households={"households": 80, "poverty_alleviated": 20, "monitored": 5},
        bank_account={
            "bank_name": "巴塘农商银行",
            "account_name": "次仁",
            "account_no": "62284800009999",
        },
    )

    r = await client.patch(f"{M}/{merchant_id}", json=correction, headers=auth(app, owner))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "rejected"
    assert body["uscc"] == new_code
    assert body["name"] == "巴塘县中咱镇核桃专业合作社"
    assert body["kind"] == "village_collective"
    assert body["township"] == "中咱镇"
    assert body["contact_phone"] == "+8613900001111"
    assert body["linked_households"]["households"] == 80

    r = await client.post(f"{M}/{merchant_id}/resubmit", json={}, headers=auth(app, owner))
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "pending"
    assert r.json()["status_reason"] is None

    r = await client.get(f"{M}/{merchant_id}", headers=auth(app, admin))
    rejections = r.json()["rejections"]
    assert [x["reason"] for x in rejections] == ["营业执照照片不清晰"]
    assert rejections[0]["by"] == str(admin.id)
    updated = await audit_events(session, "merchant.updated")
    assert [e.actor_id for e in updated] == [owner.id]
    assert "uscc" in updated[0].detail["fields"]
    resubmitted = await audit_events(session, "merchant.resubmitted")
    assert [(e.actor_id, e.subject_id) for e in resubmitted] == [(owner.id, merchant_id)]


async def test_second_rejection_keeps_both_reasons_and_approval_follows(client, app, session):
    merchant_id, owner, admin = await _rejected(client, app, session, reason="第一次")
    r = await client.post(f"{M}/{merchant_id}/resubmit", headers=auth(app, owner))
    assert r.status_code == 200
    r = await client.post(
        f"{M}/{merchant_id}/reject", json={"reason": "第二次"}, headers=auth(app, admin)
    )
    assert r.json()["rejections"][-1]["reason"] == "第二次"
    r = await client.post(f"{M}/{merchant_id}/resubmit", headers=auth(app, owner))
    assert r.status_code == 200

    r = await client.get(f"{M}?status=pending", headers=auth(app, admin))
    listed = next(m for m in r.json()["items"] if m["id"] == merchant_id)
    assert [x["reason"] for x in listed["rejections"]] == ["第一次", "第二次"]
    r = await client.get(f"{M}/{merchant_id}", headers=auth(app, owner))
    assert [x["reason"] for x in r.json()["rejections"]] == ["第一次", "第二次"]
    r = await client.post(f"{M}/{merchant_id}/approve", headers=auth(app, admin))
    assert r.status_code == 200
    assert r.json()["status"] == "approved"
    r = await client.get(f"{M}/{merchant_id}")
    assert "rejections" not in r.json()


async def test_corrected_uscc_is_still_checked_and_unique(client, app, session):
    merchant_id, owner, _ = await _rejected(client, app, session)
    other, _ = await make_merchant(session)
    before = (await client.get(f"{M}/{merchant_id}", headers=auth(app, owner))).json()["uscc"]

    r = await client.patch(
        f"{M}/{merchant_id}", json={"uscc": "91350100M000100Y4Z"}, headers=auth(app, owner)
    )
    assert r.status_code == 422
    assert r.json()["code"] == "invalid_uscc"
    r = await client.patch(
        f"{M}/{merchant_id}", json={"uscc": other.uscc}, headers=auth(app, owner)
    )
    assert r.status_code == 409
    assert r.json()["code"] == "uscc_taken"
    r = await client.get(f"{M}/{merchant_id}", headers=auth(app, owner))
    assert r.json()["uscc"] == before


async def test_owner_of_a_pending_or_approved_merchant_cannot_change_the_application(
    client, app, session
):
    for status in (MerchantStatus.pending, MerchantStatus.approved, MerchantStatus.suspended):
        merchant, owner = await make_merchant(session, status=status)
        await session.commit()
        r = await client.patch(
            f"{M}/{merchant.id}", json={"name": "改名"}, headers=auth(app, owner)
        )
        assert r.status_code == 403, status
        assert r.json()["fields"] == ["name"]
        r = await client.post(f"{M}/{merchant.id}/resubmit", headers=auth(app, owner))
        assert r.status_code == 409, status
        assert r.json()["code"] == "invalid_transition"
        assert (await reload_merchant(session, merchant)).status == status


async def test_only_the_owner_resubmits(client, app, session):
    merchant_id, owner, admin = await _rejected(client, app, session)
    rejected = await session.get(Merchant, uuid.UUID(merchant_id))
    await session.commit()
    staff = await make_staff(session, rejected)
    stranger = await make_user(session)
    other_owner = (await make_merchant(session))[1]

    r = await client.post(f"{M}/{merchant_id}/resubmit")
    assert r.status_code == 401
    for caller in (stranger, other_owner):
        r = await client.post(f"{M}/{merchant_id}/resubmit", headers=auth(app, caller))
        assert r.status_code == 404
        assert r.json()["code"] == "merchant_not_found"
    for caller in (staff, admin):
        r = await client.post(f"{M}/{merchant_id}/resubmit", headers=auth(app, caller))
        assert r.status_code == 403
    r = await client.patch(f"{M}/{merchant_id}", json={"name": "改名"}, headers=auth(app, staff))
    assert r.status_code == 403
    r = await client.get(f"{M}/{merchant_id}", headers=auth(app, owner))
    assert r.json()["status"] == "rejected"
    assert await audit_events(session, "merchant.resubmitted") == []
