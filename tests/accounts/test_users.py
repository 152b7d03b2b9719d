"""Admin user management through HTTP: create, update, list, read."""

from __future__ import annotations

import uuid

import pytest

from app.models import BuyerType, MerchantRole, Role
from tests.fixtures.accounts import audit_events, count_users, reload, sign_in
from tests.fixtures.factories import PASSWORD, auth, make_merchant, make_user

USERS = "/api/v1/users"


def _new(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "email": "Official@Chunan.gov.cn",
        "password": "a long enough password",
        "display_name": "淳安县协作办",
        "role": "official",
        "region_code": "330127",
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not ...}


@pytest.fixture
async def admin(session):
    return await make_user(session, role=Role.admin, email="root@example.cn")


async def _callers(session):
    """Everyone who must be refused admin endpoints, with the status they get."""
    buyer = await make_user(session)
    official = await make_user(session, role=Role.official)
    _, owner = await make_merchant(session)
    return [(buyer, 403), (official, 403), (owner, 403)]


# --- POST /users ---------------------------------------------------------------------------------


async def test_admin_creates_an_official(client, session, app, admin):
    r = await client.post(USERS, json=_new(phone="+86 139 0000 0000"), headers=auth(app, admin))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["email"] == "official@chunan.gov.cn"
    assert body["role"] == "official"
    assert body["buyer_type"] is None
    assert body["phone"] == "+8613900000000"
    assert r.headers["location"] == f"{USERS}/{body['id']}"

    events = await audit_events(session, "user.created")
    assert len(events) == 1
    assert events[0].actor_id == admin.id
    assert events[0].subject_type == "user" and events[0].subject_id == body["id"]
    assert events[0].detail == {"role": "official", "buyer_type": None}

    r = await sign_in(client, "OFFICIAL@chunan.gov.cn", "a long enough password")
    assert r.status_code == 200


@pytest.mark.parametrize(
    ("role", "buyer_type"),
    [("admin", ...), ("buyer", "budget_unit"), ("buyer", "union"), ("buyer", "individual")],
)
async def test_admin_creates_admins_and_organisation_buyers(
    client, session, app, admin, role, buyer_type
):
    r = await client.post(
        USERS, json=_new(role=role, buyer_type=buyer_type), headers=auth(app, admin)
    )
    assert r.status_code == 201, r.text
    assert r.json()["role"] == role
    assert r.json()["buyer_type"] == (None if buyer_type is ... else buyer_type)


@pytest.mark.parametrize(
    "change",
    [
        {"role": "merchant"},
        {"role": "merchant", "buyer_type": "individual"},
        {"role": "superuser"},
        {"role": "buyer"},  # without buyer_type
        {"role": "official", "buyer_type": "union"},
        {"role": "admin", "buyer_type": "individual"},
        {"role": "buyer", "buyer_type": "charity"},
        {"role": ...},
        {"email": "nope"},
        {"password": "too short"},
        {"region_code": "999"},
        {"phone": "555-0100"},
        {"display_name": "x" * 101},
        {"merchant_id": str(uuid.uuid4())},
        {"disabled": True},
        {"role": 1},
    ],
)
async def test_create_refuses_bad_input(client, session, app, admin, change):
    r = await client.post(USERS, json=_new(**change), headers=auth(app, admin))
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "validation_error"
    assert r.json()["errors"]
    assert await count_users(session) == 1  # the admin alone
    assert await audit_events(session) == []


async def test_create_refuses_a_taken_email(client, session, app, admin):
    r = await client.post(USERS, json=_new(email="ROOT@example.cn"), headers=auth(app, admin))
    assert r.status_code == 409
    assert r.json()["code"] == "email_taken"
    assert await count_users(session) == 1
    assert await audit_events(session) == []


async def test_create_is_for_admins_only(client, session, app):
    callers = await _callers(session)
    before = await count_users(session)
    r = await client.post(USERS, json=_new())
    assert r.status_code == 401
    assert r.json()["code"] == "not_authenticated"
    for caller, status in callers:
        r = await client.post(USERS, json=_new(role="admin"), headers=auth(app, caller))
        assert r.status_code == status, caller.role
        assert r.json()["code"] == "forbidden"
    assert await count_users(session) == before


# --- PATCH /users/{id} ---------------------------------------------------------------------------


async def test_set_buyer_type_after_verification(client, session, app, admin):
    buyer = await make_user(session)
    r = await client.patch(
        f"{USERS}/{buyer.id}", json={"buyer_type": "budget_unit"}, headers=auth(app, admin)
    )
    assert r.status_code == 200, r.text
    assert r.json()["buyer_type"] == "budget_unit"
    assert (await reload(session, buyer)).buyer_type == BuyerType.budget_unit

    events = await audit_events(session, "user.buyer_type_changed")
    assert len(events) == 1
    assert events[0].actor_id == admin.id
    assert events[0].subject_id == str(buyer.id)
    assert events[0].detail == {"old": "individual", "new": "budget_unit"}

    # The same value again changes nothing and records nothing.
    r = await client.patch(
        f"{USERS}/{buyer.id}", json={"buyer_type": "budget_unit"}, headers=auth(app, admin)
    )
    assert r.status_code == 200
    assert len(await audit_events(session, "user.buyer_type_changed")) == 1


async def test_buyer_type_of_a_merchant_member(client, session, app, admin):
    merchant, owner = await make_merchant(session)
    staff_with = await make_user(
        session,
        role=Role.merchant,
        merchant=merchant,
        merchant_role=MerchantRole.staff,
        buyer_type=BuyerType.individual,
    )
    r = await client.patch(
        f"{USERS}/{staff_with.id}", json={"buyer_type": "enterprise"}, headers=auth(app, admin)
    )
    assert r.status_code == 200
    assert r.json()["buyer_type"] == "enterprise"
    assert r.json()["role"] == "merchant"

    # The factory's owner never had one.
    r = await client.patch(
        f"{USERS}/{owner.id}", json={"buyer_type": "enterprise"}, headers=auth(app, admin)
    )
    assert r.status_code == 409
    assert r.json()["code"] == "not_a_buyer"


async def test_buyer_type_is_refused_for_admins_and_officials(client, session, app, admin):
    official = await make_user(session, role=Role.official)
    for target in (official, admin):
        r = await client.patch(
            f"{USERS}/{target.id}",
            json={"buyer_type": "union", "display_name": "改名"},
            headers=auth(app, admin),
        )
        assert r.status_code == 409
        assert r.json()["code"] == "not_a_buyer"
        # All or nothing: the name did not change either.
        fresh = await reload(session, target)
        assert fresh.buyer_type is None
        assert fresh.display_name != "改名"
    assert await audit_events(session) == []


async def test_disable_and_enable(client, session, app, admin):
    user = await make_user(session, email="leaving@example.cn")
    token = auth(app, user)
    r = await client.patch(f"{USERS}/{user.id}", json={"disabled": True}, headers=auth(app, admin))
    assert r.status_code == 200
    assert r.json()["disabled"] is True

    assert (await client.get("/api/v1/me", headers=token)).status_code == 401
    r = await sign_in(client, "leaving@example.cn", PASSWORD)
    assert r.status_code == 401
    assert r.json()["code"] == "account_disabled"

    r = await client.patch(f"{USERS}/{user.id}", json={"disabled": False}, headers=auth(app, admin))
    assert r.status_code == 200
    assert r.json()["disabled"] is False
    assert (await client.get("/api/v1/me", headers=token)).status_code == 200
    assert (await sign_in(client, "leaving@example.cn", PASSWORD)).status_code == 200

    actions = [(e.action, e.subject_id, e.actor_id) for e in await audit_events(session)]
    assert actions == [
        ("user.disabled", str(user.id), admin.id),
        ("user.enabled", str(user.id), admin.id),
    ]


async def test_disabled_admin_loses_admin_rights_at_once(client, session, app, admin):
    other_admin = await make_user(session, role=Role.admin)
    r = await client.patch(
        f"{USERS}/{other_admin.id}", json={"disabled": True}, headers=auth(app, admin)
    )
    assert r.status_code == 200
    r = await client.get(USERS, headers=auth(app, other_admin))
    assert r.status_code == 401


async def test_admin_cannot_disable_itself(client, session, app, admin):
    r = await client.patch(
        f"{USERS}/{admin.id}",
        json={"disabled": True, "display_name": "new name"},
        headers=auth(app, admin),
    )
    assert r.status_code == 409
    assert r.json()["code"] == "cannot_disable_self"
    fresh = await reload(session, admin)
    assert fresh.disabled is False
    assert fresh.display_name != "new name"
    # Renaming itself is fine.
    r = await client.patch(
        f"{USERS}/{admin.id}", json={"display_name": " 平台运营 "}, headers=auth(app, admin)
    )
    assert r.status_code == 200
    assert r.json()["display_name"] == "平台运营"


async def test_update_unknown_user(client, session, app, admin):
    r = await client.patch(
        f"{USERS}/{uuid.uuid4()}", json={"disabled": True}, headers=auth(app, admin)
    )
    assert r.status_code == 404
    assert r.json()["code"] == "user_not_found"


@pytest.mark.parametrize(
    "body",
    [
        {"buyer_type": None},
        {"disabled": None},
        {"display_name": None},
        {"buyer_type": "charity"},
        {"disabled": "maybe"},
        {"display_name": ""},
        {"display_name": "x" * 101},
        {"role": "admin"},
        {"email": "new@example.cn"},
        {"password": "a long enough password"},
        {"merchant_id": None},
        [],
    ],
)
async def test_update_refuses_bad_input(client, session, app, admin, body):
    buyer = await make_user(session)
    r = await client.patch(f"{USERS}/{buyer.id}", json=body, headers=auth(app, admin))
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "validation_error"
    fresh = await reload(session, buyer)
    assert (fresh.buyer_type, fresh.disabled, fresh.role) == (BuyerType.individual, False, "buyer")
    assert await audit_events(session) == []


async def test_update_refuses_a_bad_id_and_malformed_json(client, session, app, admin):
    r = await client.patch(f"{USERS}/not-a-uuid", json={}, headers=auth(app, admin))
    assert r.status_code == 422
    buyer = await make_user(session)
    r = await client.patch(
        f"{USERS}/{buyer.id}",
        content=b'{"disabled": tru',
        headers={**auth(app, admin), "Content-Type": "application/json"},
    )
    assert r.status_code == 400
    assert r.json()["code"] == "malformed_json"


async def test_update_is_for_admins_only(client, session, app):
    target = await make_user(session)
    callers = await _callers(session)
    r = await client.patch(f"{USERS}/{target.id}", json={"disabled": True})
    assert r.status_code == 401
    for caller, status in callers:
        r = await client.patch(
            f"{USERS}/{target.id}",
            json={"disabled": True, "buyer_type": "union"},
            headers=auth(app, caller),
        )
        assert r.status_code == status
        assert r.json()["code"] == "forbidden"
    fresh = await reload(session, target)
    assert (fresh.disabled, fresh.buyer_type) == (False, BuyerType.individual)
    # A buyer cannot even change its own buyer type.
    r = await client.patch(
        f"{USERS}/{target.id}", json={"buyer_type": "union"}, headers=auth(app, target)
    )
    assert r.status_code == 403


# --- GET /users, GET /users/{id} -----------------------------------------------------------------


async def test_list_newest_first_in_pages(client, session, app, admin):
    created = [admin]
    for i in range(4):
        created.append(await make_user(session, email=f"page{i}@example.cn"))
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, object] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        r = await client.get(USERS, params=params, headers=auth(app, admin))
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["items"]) <= 2
        seen += [item["id"] for item in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == [str(u.id) for u in reversed(created)]


async def test_list_filters(client, session, app, admin):
    official = await make_user(session, role=Role.official, email="stats@chunan.gov.cn")
    union = await make_user(
        session, email="gonghui@example.cn", buyer_type=BuyerType.union, display_name="县总工会"
    )
    await make_user(session, email="someone@example.cn", display_name="张三")
    percent = await make_user(session, email="percent%user@example.cn", display_name="百分")
    headers = auth(app, admin)

    async def ids(**params: object) -> list[str]:
        r = await client.get(USERS, params=params, headers=headers)
        assert r.status_code == 200, r.text
        return [item["id"] for item in r.json()["items"]]

    assert await ids(role="official") == [str(official.id)]
    assert await ids(role="admin") == [str(admin.id)]
    assert await ids(email="GONGHUI@example.cn") == [str(union.id)]
    assert await ids(email="gonghui") == []
    assert await ids(q="工会") == [str(union.id)]
    assert await ids(q="CHUNAN") == [str(official.id)]
    assert await ids(q="%") == [str(percent.id)]  # a literal %, not a wildcard
    assert await ids(q="_") == []
    assert await ids(role="buyer", q="example.cn") == await ids(role="buyer")
    assert len(await ids(role="buyer")) == 3


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 101},
        {"limit": "many"},
        {"role": "superuser"},
        {"q": ""},
        {"q": "x" * 101},
        {"email": "x" * 300},
    ],
)
async def test_list_refuses_bad_parameters(client, session, app, admin, params):
    r = await client.get(USERS, params=params, headers=auth(app, admin))
    assert r.status_code == 422
    assert r.json()["code"] == "validation_error"


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        "eyJ4IjoxfQ",
        "WyJ1c2VyczpuZXdlc3QiLCAibm90IGEgZGF0ZSIsICJ4Il0",
        "WyJ1c2VyczpuZXdlc3QiLCAiMjAyNi0wMS0wMVQwMDowMDowMCIsICJub3QtYS11dWlkIl0",
        "WyJ1c2VyczpuZXdlc3QiLCAiMjAyNi0wMS0wMVQwMDowMDowMCIsICI4YjFhOTk1My1jNDYxLTRiMmUtOWE1MS00ZDJjMWMxZDBhMTEiXQ",
        "x" * 512,
    ],
)
async def test_list_refuses_a_bad_cursor(client, session, app, admin, cursor):
    r = await client.get(USERS, params={"cursor": cursor}, headers=auth(app, admin))
    assert r.status_code == 400
    assert r.json()["code"] == "invalid_cursor"


async def test_get_one_user(client, session, app, admin):
    buyer = await make_user(session, email="one@example.cn")
    r = await client.get(f"{USERS}/{buyer.id}", headers=auth(app, admin))
    assert r.status_code == 200
    assert r.json()["email"] == "one@example.cn"
    assert r.json()["buyer_type"] == "individual"
    r = await client.get(f"{USERS}/{uuid.uuid4()}", headers=auth(app, admin))
    assert r.status_code == 404
    assert r.json()["code"] == "user_not_found"


async def test_reading_users_is_for_admins_only(client, session, app):
    target = await make_user(session)
    callers = await _callers(session)
    for path in (USERS, f"{USERS}/{target.id}"):
        r = await client.get(path)
        assert r.status_code == 401
        for caller, status in callers:
            r = await client.get(path, headers=auth(app, caller))
            assert r.status_code == status
            assert r.json()["code"] == "forbidden"
