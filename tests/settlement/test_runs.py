"""`POST /settlements/runs` and reading statements: what is settled, the figures, idempotency,
bad input, and who may see which statement."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.core.time import shanghai_today, utcnow
from app.models import MerchantStatus, Role
from tests.fixtures.factories import auth, make_merchant, make_user
from tests.fixtures.orders import API, ask_refund, audit_actions, counts
from tests.fixtures.settlement import approve, count_settlements, of, run, sell, sold

YESTERDAY = shanghai_today() - timedelta(days=1)


async def test_a_run_settles_each_merchant_once_with_its_figures(client, app, session, cast):
    first = await sell(client, app, session, cast, "m1", 2)
    refund = await ask_refund(client, app, cast["buyer"], first, [(first["line_id"], 1)])
    await approve(client, app, cast["admin"], refund["id"])
    await sell(client, app, session, cast, "m1", 3)
    await sell(client, app, session, cast, "m2", 1)

    result = await run(client, app, cast["admin"], YESTERDAY)

    assert len(result["settlements"]) == 2
    s1 = of(result, cast["m1"].id)
    # 2 + 3 apples at 45 yuan, one refunded; 5% commission on what was kept
    assert s1["gross_fen"] == 5 * 4500
    assert s1["refunds_fen"] == 4500
    assert s1["commission_fen"] == round(4 * 4500 * 0.05)
    assert s1["adjustments_fen"] == 0
    assert s1["net_fen"] == 5 * 4500 - 4500 - 900
    assert s1["status"] == "pending_payout"
    assert s1["period_end"] == YESTERDAY.isoformat()
    assert len(s1["merchant_orders"]) == 2
    assert sum(mo["net_fen"] for mo in s1["merchant_orders"]) == s1["net_fen"]
    s2 = of(result, cast["m2"].id)
    assert (s2["gross_fen"], s2["commission_fen"], s2["net_fen"]) == (21000, 1050, 19950)

    again = await run(client, app, cast["admin"], YESTERDAY)
    assert again["settlements"] == []
    later = await run(client, app, cast["admin"], shanghai_today())
    assert later["settlements"] == []  # nothing new: nothing settled twice
    assert await count_settlements(session) == 2
    events = await audit_actions(client, app, cast["admin"], "settlement.run", result["run_id"])
    assert events[0]["detail"]["statements"] == 2


async def test_only_settleable_merchant_orders_are_settled(client, app, session, cast):
    await sell(client, app, session, cast, "m1", 1, days_ago=10)  # settleable
    await sell(client, app, session, cast, "m1", 2, days_ago=3)  # inside the refund window
    await sell(client, app, session, cast, "m1", 4, days_ago=None)  # shipped, not completed
    await sell(client, app, session, cast, "m2", 1, days_ago=0.5)  # after period_end, in window

    result = await run(client, app, cast["admin"], YESTERDAY)

    assert [s["merchant_id"] for s in result["settlements"]] == [str(cast["m1"].id)]
    assert of(result, cast["m1"].id)["gross_fen"] == 4500


async def test_an_earlier_period_end_leaves_later_completions(client, app, session, cast):
    await sell(client, app, session, cast, "m1", 1, days_ago=30)
    await sell(client, app, session, cast, "m1", 2, days_ago=10)
    early = shanghai_today() - timedelta(days=20)

    first = await run(client, app, cast["admin"], early)
    second = await run(client, app, cast["admin"], YESTERDAY)

    assert of(first, cast["m1"].id)["gross_fen"] == 4500
    assert of(second, cast["m1"].id)["gross_fen"] == 9000


async def test_the_same_key_replays_the_run(client, app, session, cast):
    await sell(client, app, session, cast, "m1", 1)
    first = await run(client, app, cast["admin"], YESTERDAY, key="weekly-run-1")
    r = await client.post(
        f"{API}/settlements/runs",
        json={"period_end": YESTERDAY.isoformat()},
        headers={**auth(app, cast["admin"]), "Idempotency-Key": "weekly-run-1"},
    )
    assert r.status_code == 200
    assert r.headers["Idempotent-Replayed"] == "true"
    assert r.json() == first
    assert await count_settlements(session) == 1


@pytest.mark.parametrize(
    ("body", "headers_key", "status", "code"),
    [
        ({"period_end": "2999-01-01"}, True, 422, "period_end_in_future"),
        ({"period_end": "2026-13-45"}, True, 422, "validation_error"),
        ({"period_end": "last monday"}, True, 422, "validation_error"),
        ({}, True, 422, "validation_error"),
        ({"period_end": "2026-11-30", "extra": 1}, True, 422, "validation_error"),
        ({"period_end": "2026-11-30"}, False, 400, "idempotency_key_required"),
    ],
)
async def test_bad_runs_write_nothing(client, app, session, cast, body, headers_key, status, code):
    await sell(client, app, session, cast, "m1", 1)
    before = await counts(session)
    headers = auth(app, cast["admin"])
    if headers_key:
        headers["Idempotency-Key"] = "bad-run"
    r = await client.post(f"{API}/settlements/runs", json=body, headers=headers)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == code
    assert await count_settlements(session) == 0
    assert await counts(session) == before


async def test_tomorrow_in_shanghai_is_the_future(client, app, cast):
    r = await client.post(
        f"{API}/settlements/runs",
        json={"period_end": (shanghai_today() + timedelta(days=1)).isoformat()},
        headers={**auth(app, cast["admin"]), "Idempotency-Key": "tomorrow"},
    )
    assert r.status_code == 422
    assert r.json()["code"] == "period_end_in_future"


@pytest.mark.parametrize("role", ["merchant", "official", "buyer"])
async def test_only_admins_run_settlement(client, app, session, cast, role):
    caller = cast["owner1"] if role == "merchant" else await make_user(session, role=Role(role))
    r = await client.post(
        f"{API}/settlements/runs",
        json={"period_end": YESTERDAY.isoformat()},
        headers={**auth(app, caller), "Idempotency-Key": "not-mine"},
    )
    assert r.status_code == 403
    assert r.json()["code"] == "forbidden"


async def test_a_merchant_sees_only_its_own_statements(client, app, session, cast):
    await sell(client, app, session, cast, "m1", 2)
    await sell(client, app, session, cast, "m2", 1)
    result = await run(client, app, cast["admin"], YESTERDAY)
    mine, theirs = of(result, cast["m1"].id), of(result, cast["m2"].id)
    owner = cast["owner1"]

    r = await client.get(f"{API}/settlements/{mine['id']}", headers=auth(app, owner))
    assert r.status_code == 200
    body = r.json()
    assert body["net_fen"] == mine["net_fen"]
    (mo,) = body["merchant_orders"]
    assert mo["lines"][0]["quantity"] == 2
    assert mo["order_no"].startswith("SH")

    r = await client.get(f"{API}/settlements/{theirs['id']}", headers=auth(app, owner))
    assert r.status_code == 404
    assert r.json()["code"] == "settlement_not_found"
    r = await client.get(
        f"{API}/settlements/{theirs['id']}/export?format=csv", headers=auth(app, owner)
    )
    assert r.status_code == 404

    listed = (await client.get(f"{API}/settlements", headers=auth(app, owner))).json()
    assert [s["id"] for s in listed["items"]] == [mine["id"]]
    other = await client.get(
        f"{API}/settlements", params={"merchant_id": str(cast["m2"].id)}, headers=auth(app, owner)
    )
    assert other.json()["items"] == []

    admin_list = await client.get(
        f"{API}/settlements",
        params={"merchant_id": str(cast["m2"].id), "status": "pending_payout"},
        headers=auth(app, cast["admin"]),
    )
    assert [s["id"] for s in admin_list.json()["items"]] == [theirs["id"]]


@pytest.mark.parametrize("role", ["official", "buyer"])
async def test_officials_and_buyers_are_refused_statements(client, app, session, cast, role):
    await sell(client, app, session, cast, "m1", 1)
    statement = of(await run(client, app, cast["admin"], YESTERDAY), cast["m1"].id)
    caller = await make_user(session, role=Role(role))
    for path in (f"/settlements/{statement['id']}", "/settlements"):
        r = await client.get(f"{API}{path}", headers=auth(app, caller))
        assert r.status_code == 403, path
    r = await client.get(f"{API}/settlements")
    assert r.status_code == 401


async def test_the_list_pages_with_a_cursor(client, app, session, cast):
    await sell(client, app, session, cast, "m1", 1, days_ago=30)
    await sell(client, app, session, cast, "m1", 1, days_ago=10)
    await run(client, app, cast["admin"], shanghai_today() - timedelta(days=20))
    await run(client, app, cast["admin"], YESTERDAY)
    headers = auth(app, cast["admin"])
    page1 = (await client.get(f"{API}/settlements?limit=1", headers=headers)).json()
    page2 = (
        await client.get(
            f"{API}/settlements",
            params={"limit": 1, "cursor": page1["next_cursor"]},
            headers=headers,
        )
    ).json()
    assert page1["items"][0]["period_end"] == YESTERDAY.isoformat()
    assert page2["items"][0]["period_end"] < YESTERDAY.isoformat()
    assert page2["next_cursor"] is None
    r = await client.get(f"{API}/settlements?cursor=nonsense", headers=headers)
    assert r.status_code == 400
    assert r.json()["code"] == "invalid_cursor"


async def test_a_suspended_merchant_is_still_settled(client, app, session, cast):
    merchant, owner = await make_merchant(session, status=MerchantStatus.approved)
    from tests.fixtures.factories import make_product

    product = await make_product(session, merchant, price_fen=1000, stock=10)
    await sold(
        client,
        app,
        session,
        buyer=cast["buyer"],
        admin=cast["admin"],
        member=owner,
        product=product,
        quantity=1,
        completed_at=utcnow() - timedelta(days=9),
    )
    merchant.status = MerchantStatus.suspended
    session.add(merchant)
    await session.commit()
    result = await run(client, app, cast["admin"], YESTERDAY)
    assert of(result, merchant.id)["net_fen"] == 1000 - 50
