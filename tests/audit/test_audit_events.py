"""GET /api/v1/audit-events: admins only, newest first, filters, keyset pagination."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from app.audit.service import record
from app.models import AuditEvent, Role
from tests.fixtures.factories import auth, make_merchant, make_user

URL = "/api/v1/audit-events"
T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


async def _event(session, *, at, action="merchant.approved", subject_type="merchant", **kw):
    event = AuditEvent(
        id=kw.pop("id", uuid.uuid4()),
        at=at,
        actor_id=kw.pop("actor_id", None),
        action=action,
        subject_type=subject_type,
        subject_id=kw.pop("subject_id", str(uuid.uuid4())),
        detail=kw.pop("detail", {}),
    )
    session.add(event)
    await session.commit()
    return event


async def test_anonymous_is_401(client):
    r = await client.get(URL)
    assert r.status_code == 401
    assert r.json()["code"] == "not_authenticated"


async def test_a_bad_token_is_401(client):
    r = await client.get(URL, headers={"Authorization": "Bearer not-a-token"})
    assert r.status_code == 401
    assert r.json()["code"] == "invalid_token"


async def test_buyer_merchant_and_official_are_403(app, client, session):
    buyer = await make_user(session, role=Role.buyer)
    official = await make_user(session, role=Role.official)
    _, owner = await make_merchant(session)
    for user in (buyer, official, owner):
        r = await client.get(URL, headers=auth(app, user))
        assert r.status_code == 403, user.role
        assert r.json()["code"] == "forbidden"


async def test_admin_sees_events_newest_first_with_every_field(app, client, session):
    admin = await make_user(session, role=Role.admin)
    subject = uuid.uuid4()
    old = await _event(session, at=T0, actor_id=admin.id, subject_id=str(subject))
    new = await _event(
        session,
        at=T0 + timedelta(hours=1),
        action="product.rejected",
        subject_type="product",
        detail={"reason": "标签产地与许可证不符"},
    )
    r = await client.get(URL, headers=auth(app, admin))
    assert r.status_code == 200
    body = r.json()
    assert body["next_cursor"] is None
    assert [item["id"] for item in body["items"]] == [str(new.id), str(old.id)]
    first, second = body["items"]
    assert set(first) >= {"id", "at", "actor_id", "action", "subject_type", "subject_id", "detail"}
    assert first["action"] == "product.rejected"
    assert first["actor_id"] is None
    assert first["detail"] == {"reason": "标签产地与许可证不符"}
    assert second["actor_id"] == str(admin.id)
    assert second["subject_id"] == str(subject)
    # RFC 3339 with an offset.
    assert datetime.fromisoformat(second["at"]) == T0
    assert datetime.fromisoformat(second["at"]).tzinfo is not None


async def test_events_recorded_by_the_service_are_listed(app, client, session):
    admin = await make_user(session, role=Role.admin)
    merchant, _ = await make_merchant(session)
    await record(
        session,
        actor_id=admin.id,
        action="merchant.suspended",
        subject_type="merchant",
        subject_id=merchant.id,
        detail={"reason": "资质过期"},
    )
    await session.commit()
    r = await client.get(URL, headers=auth(app, admin), params={"subject_id": str(merchant.id)})
    assert r.status_code == 200
    [item] = r.json()["items"]
    assert item["action"] == "merchant.suspended"
    assert item["detail"] == {"reason": "资质过期"}


async def test_filters_match_exactly_and_combine(app, client, session):
    admin = await make_user(session, role=Role.admin)
    other_admin = await make_user(session, role=Role.admin)
    target = str(uuid.uuid4())
    a = await _event(session, at=T0, actor_id=admin.id, subject_id=target)
    b = await _event(
        session,
        at=T0 + timedelta(minutes=1),
        actor_id=other_admin.id,
        action="merchant.suspended",
        subject_id=target,
    )
    c = await _event(
        session,
        at=T0 + timedelta(minutes=2),
        actor_id=admin.id,
        action="product.stock_adjusted",
        subject_type="product",
    )
    headers = auth(app, admin)

    async def ids(**params):
        r = await client.get(URL, headers=headers, params=params)
        assert r.status_code == 200, r.text
        return [item["id"] for item in r.json()["items"]]

    assert await ids(action="merchant.approved") == [str(a.id)]
    assert await ids(action="merchant") == []  # exact, not a prefix
    assert await ids(subject_type="product") == [str(c.id)]
    assert await ids(subject_id=target) == [str(b.id), str(a.id)]
    assert await ids(actor_id=str(admin.id)) == [str(c.id), str(a.id)]
    assert await ids(actor_id=str(admin.id), subject_id=target) == [str(a.id)]
    assert await ids(subject_type="merchant", action="merchant.suspended") == [str(b.id)]


async def test_pagination_walks_every_event_once_even_with_equal_times(app, client, session):
    admin = await make_user(session, role=Role.admin)
    made = []
    for i in range(7):
        # Pairs of events at the same instant: the id breaks the tie.
        made.append(await _event(session, at=T0 + timedelta(seconds=i // 2)))
    expected = [str(e.id) for e in sorted(made, key=lambda e: (e.at, str(e.id).replace("-", "")))][
        ::-1
    ]
    headers = auth(app, admin)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        r = await client.get(URL, headers=headers, params=params)
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["items"]) <= 3
        seen += [item["id"] for item in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert len(seen) == len(set(seen)) == 7
    # Newest first; within an instant, ids descend.
    assert seen == expected


async def test_bad_cursor_is_400(app, client, session):
    admin = await make_user(session, role=Role.admin)
    headers = auth(app, admin)
    for cursor in ("garbage!!", "WyJvdGhlciIsMV0", "WyJhdWRpdDpuZXdlc3QiLCJ4IiwieSJd"):
        r = await client.get(URL, headers=headers, params={"cursor": cursor})
        assert r.status_code == 400, cursor
        assert r.json()["code"] == "invalid_cursor"


async def test_bad_query_values_are_422_not_500(app, client, session):
    admin = await make_user(session, role=Role.admin)
    headers = auth(app, admin)
    for params in (
        {"actor_id": "not-a-uuid"},
        {"limit": 0},
        {"limit": 101},
        {"limit": 2**70},
        {"action": "x" * 61},
        {"subject_id": "x" * 65},
    ):
        r = await client.get(URL, headers=headers, params=params)
        assert r.status_code == 422, params
        body = r.json()
        assert body["code"] == "validation_error"
        assert body["errors"][0]["loc"][0] == "query"


async def test_listing_writes_nothing(app, client, session):
    admin = await make_user(session, role=Role.admin)
    await client.get(URL, headers=auth(app, admin))
    await client.get(URL)
    count = await session.scalar(select(func.count()).select_from(AuditEvent))
    assert count == 0
