"""A bank refund is paid when an admin records the outgoing transfer (mark-paid), once, with a
bank reference used once; until then it is owed to the buyer in refunds_in_transit. The refund
routes answer 404 to who may not see the refund and 403 to who sees it but may not act."""

from __future__ import annotations

from typing import Any

import pytest

from app.models import Role
from tests.fixtures.factories import auth, make_merchant, make_user
from tests.fixtures.orders import (
    API,
    ask_refund,
    audit_actions,
    balances_by_account,
    get_order,
    pay_by_bank,
    place_two_lines,
)


@pytest.fixture
async def asked(client, app, cast) -> dict[str, Any]:
    """The cast's paid two-merchant bank order, and a refund of one p1 asked of merchant 1."""
    order = await place_two_lines(client, app, cast)
    await pay_by_bank(client, app, cast["buyer"], cast["admin"], order)
    line = order["merchant_orders"][0]["lines"][0]
    refund = await ask_refund(client, app, cast["buyer"], order, [(line["id"], 1)])
    return {"order": order, "refund": refund}


async def _approve(client, app, user, refund_id: str) -> dict[str, Any]:
    r = await client.post(f"{API}/refunds/{refund_id}/approve", json={}, headers=auth(app, user))
    assert r.status_code == 200, r.text
    return dict(r.json())


async def _mark_paid(client, app, user, refund_id: str, reference: str | None = "BOC-R-0001"):
    body = {} if reference is None else {"bank_reference": reference}
    return await client.post(
        f"{API}/refunds/{refund_id}/mark-paid", json=body, headers=auth(app, user)
    )


async def test_a_bank_refund_stays_owed_until_the_admin_records_the_transfer(
    client, app, cast, asked
):
    refund = await _approve(client, app, cast["owner1"], asked["refund"]["id"])
    assert refund["status"] == "approved"  # not paid: nobody has sent the money yet
    assert refund["succeeded_at"] is None and refund["bank_reference"] is None
    ledger = await balances_by_account(client, app, cast["admin"])
    assert ledger[("refunds_in_transit", None)] == -4500
    cash_before = ledger[("platform_cash", None)]
    order = await get_order(client, app, cast["buyer"], asked["order"]["id"])
    assert order["refunded_fen"] == 4500  # counts from its approval

    r = await _mark_paid(client, app, cast["admin"], refund["id"], " BOC-R-0001 ")
    assert r.status_code == 200, r.text
    paid = r.json()
    assert (paid["status"], paid["bank_reference"]) == ("succeeded", "BOC-R-0001")
    assert paid["succeeded_at"] is not None
    ledger = await balances_by_account(client, app, cast["admin"])
    assert ledger[("refunds_in_transit", None)] == 0
    assert ledger[("platform_cash", None)] == cash_before - 4500
    [event] = await audit_actions(client, app, cast["admin"], "refund.paid_by_bank", refund["id"])
    assert event["detail"]["bank_reference"] == "BOC-R-0001"

    # once: a second mark-paid changes nothing
    r = await _mark_paid(client, app, cast["admin"], refund["id"], "BOC-R-0002")
    assert r.status_code == 409 and r.json()["code"] == "invalid_transition"
    again = await balances_by_account(client, app, cast["admin"])
    assert again == ledger


async def test_one_outgoing_transfer_pays_one_refund(client, app, cast, asked):
    await _approve(client, app, cast["owner1"], asked["refund"]["id"])
    line2 = asked["order"]["merchant_orders"][1]["lines"][0]
    other = await ask_refund(client, app, cast["buyer"], asked["order"], [(line2["id"], 1)])
    await _approve(client, app, cast["owner2"], other["id"])
    assert (await _mark_paid(client, app, cast["admin"], asked["refund"]["id"])).status_code == 200
    r = await _mark_paid(client, app, cast["admin"], other["id"])
    assert r.status_code == 409, r.text
    assert r.json()["code"] == "bank_reference_used"
    order = await get_order(client, app, cast["admin"], asked["order"]["id"])
    assert {x["id"]: x["status"] for x in order["refunds"]}[other["id"]] == "approved"


@pytest.mark.parametrize("body", [{}, {"bank_reference": ""}, {"bank_reference": "X" * 101}])
async def test_mark_paid_needs_a_bank_reference(client, app, cast, asked, body):
    await _approve(client, app, cast["owner1"], asked["refund"]["id"])
    r = await client.post(
        f"{API}/refunds/{asked['refund']['id']}/mark-paid",
        json=body,
        headers=auth(app, cast["admin"]),
    )
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")


async def test_a_refund_not_yet_approved_cannot_be_marked_paid(client, app, cast, asked):
    r = await _mark_paid(client, app, cast["admin"], asked["refund"]["id"])
    assert r.status_code == 409 and r.json()["code"] == "invalid_transition"


async def test_who_sees_a_refund_is_refused_with_403_who_does_not_with_404(
    client, app, session, cast, asked
):
    refund_id = asked["refund"]["id"]
    stranger = await make_user(session)
    _, owner3 = await make_merchant(session)
    official = await make_user(session, role=Role.official)
    for action, body in (("approve", {}), ("reject", {"reason": "不行"})):
        for user, status in (
            (cast["buyer"], 403),  # its own order: sees the refund, may not decide it
            (official, 403),
            (stranger, 404),  # another buyer's refund
            (owner3, 404),  # another merchant's refund
            (cast["owner2"], 404),  # the other merchant of the same order
        ):
            r = await client.post(
                f"{API}/refunds/{refund_id}/{action}", json=body, headers=auth(app, user)
            )
            assert r.status_code == status, (action, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")
    await _approve(client, app, cast["owner1"], refund_id)
    for action, body in (("mark-paid", {"bank_reference": "R-1"}), ("retry", {})):
        for user, status in (
            (cast["buyer"], 403),
            (cast["owner1"], 403),  # the refund's merchant: sees it, an admin's action
            (official, 403),
            (stranger, 404),
            (owner3, 404),
        ):
            r = await client.post(
                f"{API}/refunds/{refund_id}/{action}", json=body, headers=auth(app, user)
            )
            assert r.status_code == status, (action, r.text)
    r = await _mark_paid(client, app, cast["admin"], refund_id, "R-1")
    assert r.status_code == 200 and r.json()["status"] == "succeeded"


async def test_retry_is_for_failed_refunds(client, app, cast, asked):
    refund_id = asked["refund"]["id"]
    r = await client.post(
        f"{API}/refunds/{refund_id}/retry", json={}, headers=auth(app, cast["admin"])
    )
    assert r.status_code == 409 and r.json()["code"] == "invalid_transition"
    await _approve(client, app, cast["owner1"], refund_id)
    r = await client.post(
        f"{API}/refunds/{refund_id}/retry", json={}, headers=auth(app, cast["admin"])
    )
    assert r.status_code == 409  # approved bank refund: mark-paid, not retry
    assert (await _mark_paid(client, app, cast["admin"], refund_id)).status_code == 200
    r = await client.post(
        f"{API}/refunds/{refund_id}/retry", json={}, headers=auth(app, cast["admin"])
    )
    assert r.status_code == 200 and r.json()["status"] == "succeeded"  # unchanged


async def test_the_refunds_list(client, app, session, cast, asked):
    refund_id = asked["refund"]["id"]
    await _approve(client, app, cast["owner1"], refund_id)
    line2 = asked["order"]["merchant_orders"][1]["lines"][0]
    other = await ask_refund(client, app, cast["buyer"], asked["order"], [(line2["id"], 1)])

    async def ids(user, **params) -> list[str]:
        r = await client.get(f"{API}/refunds", params=params, headers=auth(app, user))
        assert r.status_code == 200, r.text
        return [x["id"] for x in r.json()["items"]]

    assert await ids(cast["admin"]) == [other["id"], refund_id]  # newest first
    assert await ids(cast["admin"], status="approved") == [refund_id]
    assert await ids(cast["admin"], order_id=asked["order"]["id"], status="requested") == [
        other["id"]
    ]
    assert await ids(cast["admin"], merchant_id=str(cast["m2"].id)) == [other["id"]]
    assert await ids(cast["owner1"]) == [refund_id]  # its own merchant's only
    assert await ids(cast["owner2"], merchant_id=str(cast["m2"].id)) == [other["id"]]
    # pages
    r = await client.get(f"{API}/refunds", params={"limit": 1}, headers=auth(app, cast["admin"]))
    first = r.json()
    assert [x["id"] for x in first["items"]] == [other["id"]]
    r = await client.get(
        f"{API}/refunds",
        params={"limit": 1, "cursor": first["next_cursor"]},
        headers=auth(app, cast["admin"]),
    )
    assert [x["id"] for x in r.json()["items"]] == [refund_id]
    assert r.json()["next_cursor"] is None
    r = await client.get(
        f"{API}/refunds", params={"cursor": "nope"}, headers=auth(app, cast["admin"])
    )
    assert r.status_code == 400 and r.json()["code"] == "invalid_cursor"
    # refused
    official = await make_user(session, role=Role.official)
    for user, params in (
        (cast["buyer"], {}),
        (official, {}),
        (cast["owner1"], {"merchant_id": str(cast["m2"].id)}),
    ):
        r = await client.get(f"{API}/refunds", params=params, headers=auth(app, user))
        assert r.status_code == 403, r.text
