"""Merchant onboarding over HTTP: applying, review, reading, editing and members."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from app.models import MerchantRole, MerchantStatus, Role
from tests.fixtures.factories import auth, make_merchant, make_user, valid_uscc
from tests.fixtures.merchants import (
    application,
    audit_events,
    make_staff,
    merchant_count,
    reload_merchant,
    reload_user,
)

BASE = "/api/v1/merchants"
VILLAGE_COLLECTIVE = "N2513335MA62D12348"


def assert_problem(r: Any, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = r.json()
    assert body["code"] == code, body
    assert body["status"] == status
    return body


# --- applying --------------------------------------------------------------------------------


async def test_buyer_applies_and_becomes_owner(client, app, session):
    buyer = await make_user(session)
    code = valid_uscc()
    r = await client.post(
        BASE, json=application(uscc=f"  {code.lower()} "), headers=auth(app, buyer)
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["status"] == "pending"
    assert body["uscc"] == code
    assert body["contact_phone"] == "+8613800001234"
    assert body["linked_households"] == {
        "households": 120,
        "poverty_alleviated": 40,
        "monitored": 12,
    }
    assert body["bank_account"] == {
        "bank_name": "中国农业银行巴塘县支行",
        "account_name": "巴塘县夏邛镇松茸专业合作社",
        "account_no": "****5678",
    }
    assert "6228" not in r.text
    assert body["status_reason"] is None and body["approved_at"] is None
    for field in ("id", "created_at", "updated_at", "legal_representative", "address"):
        assert field in body

    user = await reload_user(session, buyer)
    assert user.role == Role.merchant
    assert user.merchant_role == MerchantRole.owner
    assert str(user.merchant_id) == body["id"]

    # The new owner sees its pending merchant in full; nobody else sees it at all.
    mine = await client.get(f"{BASE}/{body['id']}", headers=auth(app, buyer))
    assert mine.status_code == 200
    assert mine.json()["bank_account"]["account_no"] == "****5678"
    assert_problem(await client.get(f"{BASE}/{body['id']}"), 404, "merchant_not_found")


async def test_village_collective_with_n_prefixed_code(client, app, session):
    buyer = await make_user(session)
    r = await client.post(
        BASE,
        json=application(uscc=VILLAGE_COLLECTIVE, kind="village_collective"),
        headers=auth(app, buyer),
    )
    assert r.status_code == 201, r.text
    assert r.json()["uscc"] == VILLAGE_COLLECTIVE
    assert r.json()["kind"] == "village_collective"


async def test_anonymous_cannot_apply(client, session):
    assert_problem(await client.post(BASE, json=application()), 401, "not_authenticated")
    assert await merchant_count(session) == 0


@pytest.mark.parametrize("role", [Role.admin, Role.official])
async def test_admins_and_officials_cannot_apply(client, app, session, role):
    user = await make_user(session, role=role)
    r = await client.post(BASE, json=application(), headers=auth(app, user))
    assert_problem(r, 403, "forbidden")
    assert await merchant_count(session) == 0
    assert (await reload_user(session, user)).role == role


@pytest.mark.parametrize("member_role", [MerchantRole.owner, MerchantRole.staff])
async def test_merchant_member_cannot_apply_again(client, app, session, member_role):
    merchant, owner = await make_merchant(session)
    member = owner if member_role == MerchantRole.owner else await make_staff(session, merchant)
    r = await client.post(BASE, json=application(), headers=auth(app, member))
    assert_problem(r, 409, "already_merchant")
    assert await merchant_count(session) == 1
    user = await reload_user(session, member)
    assert user.merchant_id == merchant.id and user.merchant_role == member_role


@pytest.mark.parametrize(
    "code",
    [
        "91350100M000100Y4Z",  # wrong check character
        "91350100M000100Y44",
        "91350100M000100Y4",  # 17 characters
        "91350100M000100Y433",  # 19 characters
        "",
        "91350100M0001O0Y43",  # an O where the alphabet has none
        "9135A100M000100Y4X",  # letters in the division code
        "91350100M000100Y43" + "X" * 40,
    ],
)
async def test_invalid_uscc_is_refused_with_its_own_code(client, app, session, code):
    buyer = await make_user(session)
    r = await client.post(BASE, json=application(uscc=code), headers=auth(app, buyer))
    body = assert_problem(r, 422, "invalid_uscc")
    assert body["errors"][0]["loc"] == ["body", "uscc"]
    assert await merchant_count(session) == 0
    user = await reload_user(session, buyer)
    assert user.role == Role.buyer and user.merchant_id is None


async def test_uscc_already_registered(client, app, session):
    existing, _ = await make_merchant(session)
    buyer = await make_user(session)
    r = await client.post(
        BASE, json=application(uscc=f" {existing.uscc.lower()}"), headers=auth(app, buyer)
    )
    assert_problem(r, 409, "uscc_taken")
    assert await merchant_count(session) == 1
    assert (await reload_user(session, buyer)).role == Role.buyer


async def test_same_uscc_at_once_gives_one_201_and_one_409(client, app, session):
    first, second = await make_user(session), await make_user(session)
    code = valid_uscc()
    responses = await asyncio.gather(
        client.post(BASE, json=application(uscc=code), headers=auth(app, first)),
        client.post(BASE, json=application(uscc=code), headers=auth(app, second)),
    )
    assert sorted(r.status_code for r in responses) == [201, 409], [r.text for r in responses]
    loser = next(r for r in responses if r.status_code == 409)
    assert loser.json()["code"] == "uscc_taken"
    assert await merchant_count(session) == 1
    roles = {(await reload_user(session, u)).role for u in (first, second)}
    assert roles == {Role.merchant, Role.buyer}


async def test_same_buyer_applying_twice_at_once_owns_one_merchant(client, app, session):
    buyer = await make_user(session)
    responses = await asyncio.gather(
        client.post(BASE, json=application(), headers=auth(app, buyer)),
        client.post(BASE, json=application(), headers=auth(app, buyer)),
    )
    assert sorted(r.status_code for r in responses) == [201, 409], [r.text for r in responses]
    assert next(r for r in responses if r.status_code == 409).json()["code"] == "already_merchant"
    assert await merchant_count(session) == 1
    created = next(r for r in responses if r.status_code == 201).json()
    assert str((await reload_user(session, buyer)).merchant_id) == created["id"]


def _households(**kw: Any) -> dict[str, Any]:
    return {"households": 10, "poverty_alleviated": 5, "monitored": 2} | kw


def _bank(**kw: Any) -> dict[str, Any]:
    return {"bank_name": "农行", "account_name": "合作社", "account_no": "62284800001"} | kw


BAD_APPLICATIONS: list[tuple[str, dict[str, Any]]] = [
    ("name empty", {"name": "   "}),
    ("name too long", {"name": "社" * 101}),
    ("name not a string", {"name": 123}),
    ("kind unknown", {"kind": "farm"}),
    ("legal representative too long", {"legal_representative": "扎" * 51}),
    ("legal representative empty", {"legal_representative": ""}),
    ("phone a landline", {"contact_phone": "0836-5622222"}),
    ("phone too long", {"contact_phone": "1" * 100}),
    ("phone starting 12", {"contact_phone": "12800001234"}),
    ("region 5 digits", {"region_code": "51333"}),
    ("region letters", {"region_code": "51333x"}),
    ("region starting 0", {"region_code": "013335"}),
    ("township too long", {"township": "镇" * 41}),
    ("address empty", {"address": ""}),
    ("address too long", {"address": "路" * 201}),
    ("uscc not a string", {"uscc": 913501001}),
    ("households negative", {"linked_households": _households(households=-1)}),
    ("households over a million", {"linked_households": _households(households=1_000_001)}),
    ("households beyond 64 bits", {"linked_households": _households(households=2**70)}),
    ("poverty alleviated negative", {"linked_households": _households(poverty_alleviated=-1)}),
    ("monitored negative", {"linked_households": _households(monitored=-3)}),
    ("poverty alleviated over total", {"linked_households": _households(poverty_alleviated=11)}),
    ("monitored over total", {"linked_households": _households(monitored=11)}),
    ("households missing a count", {"linked_households": {"households": 1, "monitored": 0}}),
    ("households extra field", {"linked_households": _households(names=["张三"])}),
    ("households fractional", {"linked_households": _households(households=10.5)}),
    ("account no 7 digits", {"bank_account": _bank(account_no="6228480")}),
    ("account no 35 digits", {"bank_account": _bank(account_no="6" * 35)}),
    ("account no letters", {"bank_account": _bank(account_no="6228ABCD0000")}),
    ("account no dashes", {"bank_account": _bank(account_no="6228-4800-0000")}),
    ("account no full-width digits", {"bank_account": _bank(account_no="６２２８４８００００")}),
    ("bank name empty", {"bank_account": _bank(bank_name="")}),
    ("account name too long", {"bank_account": _bank(account_name="户" * 101)}),
    ("bank account extra field", {"bank_account": _bank(iban="x")}),
    ("unknown top-level field", {"status": "approved"}),
    ("linked households null", {"linked_households": None}),
]


@pytest.mark.parametrize(
    ("case", "change"), BAD_APPLICATIONS, ids=[case for case, _ in BAD_APPLICATIONS]
)
async def test_bad_application_writes_nothing(client, app, session, case, change):
    buyer = await make_user(session)
    r = await client.post(BASE, json=application(**change), headers=auth(app, buyer))
    body = assert_problem(r, 422, "validation_error")
    assert body["errors"], case
    assert await merchant_count(session) == 0
    user = await reload_user(session, buyer)
    assert user.role == Role.buyer and user.merchant_id is None and user.merchant_role is None


@pytest.mark.parametrize(
    "missing", ["name", "kind", "uscc", "contact_phone", "linked_households", "bank_account"]
)
async def test_application_missing_a_field(client, app, session, missing):
    buyer = await make_user(session)
    body = application()
    del body[missing]
    r = await client.post(BASE, json=body, headers=auth(app, buyer))
    assert_problem(r, 422, "validation_error")
    assert await merchant_count(session) == 0


async def test_account_number_edges_are_accepted(client, app, session):
    for account_no, masked in [("12345678", "****5678"), ("9" * 30 + "4321", "****4321")]:
        buyer = await make_user(session)
        r = await client.post(
            BASE,
            json=application(bank_account=_bank(account_no=account_no)),
            headers=auth(app, buyer),
        )
        assert r.status_code == 201, r.text
        assert r.json()["bank_account"]["account_no"] == masked


async def test_household_counts_at_their_bounds(client, app, session):
    buyer = await make_user(session)
    counts = {"households": 1_000_000, "poverty_alleviated": 1_000_000, "monitored": 0}
    r = await client.post(
        BASE, json=application(linked_households=counts), headers=auth(app, buyer)
    )
    assert r.status_code == 201, r.text
    assert r.json()["linked_households"] == counts


# --- the status machine ----------------------------------------------------------------------

TRANSITIONS = [
    ("approve", None, MerchantStatus.pending, "approved", "merchant.approved"),
    ("reject", "资料不全", MerchantStatus.pending, "rejected", "merchant.rejected"),
    ("suspend", "食品安全抽检不合格", MerchantStatus.approved, "suspended", "merchant.suspended"),
    ("reinstate", None, MerchantStatus.suspended, "approved", "merchant.reinstated"),
]


@pytest.mark.parametrize(("verb", "reason", "start", "end", "action"), TRANSITIONS)
async def test_admin_moves_a_merchant_along_the_machine(
    client, app, session, verb, reason, start, end, action
):
    merchant, _ = await make_merchant(session, status=start)
    admin = await make_user(session, role=Role.admin)
    body = {"reason": reason} if reason else {}
    r = await client.post(f"{BASE}/{merchant.id}/{verb}", json=body, headers=auth(app, admin))
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["status"] == end
    assert out["status_reason"] == reason
    assert "bank_account" in out
    if verb == "approve":
        assert out["approved_at"] is not None
    assert (await reload_merchant(session, merchant)).status == end

    [event] = await audit_events(session, action)
    assert event.actor_id == admin.id
    assert event.subject_type == "merchant" and event.subject_id == str(merchant.id)
    assert event.detail["to"] == end
    if reason:
        assert event.detail["reason"] == reason


async def test_full_lifecycle_keeps_first_approval_time(client, app, session):
    merchant, _ = await make_merchant(session, status=MerchantStatus.pending)
    admin = await make_user(session, role=Role.admin)
    h = auth(app, admin)
    approved = (await client.post(f"{BASE}/{merchant.id}/approve", headers=h)).json()
    suspended = await client.post(f"{BASE}/{merchant.id}/suspend", json={"reason": "x"}, headers=h)
    assert suspended.json()["status_reason"] == "x"
    back = (await client.post(f"{BASE}/{merchant.id}/reinstate", headers=h)).json()
    assert back["status"] == "approved"
    assert back["status_reason"] is None
    assert back["approved_at"] == approved["approved_at"]
    actions = [e.action for e in await audit_events(session)]
    assert actions == ["merchant.approved", "merchant.suspended", "merchant.reinstated"]


INVALID = [
    (start, verb)
    for start in MerchantStatus
    for verb in ("approve", "reject", "suspend", "reinstate")
    if (verb, start)
    not in {
        ("approve", MerchantStatus.pending),
        ("reject", MerchantStatus.pending),
        ("suspend", MerchantStatus.approved),
        ("reinstate", MerchantStatus.suspended),
    }
]


@pytest.mark.parametrize(("start", "verb"), INVALID)
async def test_any_other_transition_is_invalid(client, app, session, start, verb):
    merchant, _ = await make_merchant(session, status=start)
    admin = await make_user(session, role=Role.admin)
    body = {"reason": "why not"} if verb in ("reject", "suspend") else {}
    r = await client.post(f"{BASE}/{merchant.id}/{verb}", json=body, headers=auth(app, admin))
    problem = assert_problem(r, 409, "invalid_transition")
    assert problem["from"] == start.value
    assert start.value in problem["detail"]
    assert (await reload_merchant(session, merchant)).status == start
    assert await audit_events(session) == []


@pytest.mark.parametrize("verb", ["approve", "reject", "suspend", "reinstate"])
async def test_unknown_merchant_for_an_action(client, app, session, verb):
    admin = await make_user(session, role=Role.admin)
    body = {"reason": "x"} if verb in ("reject", "suspend") else {}
    r = await client.post(f"{BASE}/{uuid.uuid4()}/{verb}", json=body, headers=auth(app, admin))
    assert_problem(r, 404, "merchant_not_found")


@pytest.mark.parametrize("verb", ["approve", "reject", "suspend", "reinstate"])
@pytest.mark.parametrize("caller", ["anonymous", "buyer", "official", "owner", "staff"])
async def test_only_admins_decide(client, app, session, verb, caller):
    start = {"approve": "pending", "reject": "pending", "suspend": "approved"}.get(
        verb, "suspended"
    )
    merchant, owner = await make_merchant(session, status=MerchantStatus(start))
    headers: dict[str, str] = {}
    if caller == "owner":
        headers = auth(app, owner)
    elif caller == "staff":
        headers = auth(app, await make_staff(session, merchant))
    elif caller != "anonymous":
        headers = auth(app, await make_user(session, role=Role(caller)))
    body = {"reason": "x"} if verb in ("reject", "suspend") else {}
    r = await client.post(f"{BASE}/{merchant.id}/{verb}", json=body, headers=headers)
    if caller == "anonymous":
        assert_problem(r, 401, "not_authenticated")
    elif start != "approved" and caller in ("buyer", "official"):
        # A merchant that is not approved is not public: strangers do not see it.
        assert_problem(r, 404, "merchant_not_found")
    else:
        assert_problem(r, 403, "forbidden")
    assert (await reload_merchant(session, merchant)).status == start
    assert await audit_events(session) == []


async def test_action_bodies(client, app, session):
    merchant, _ = await make_merchant(session, status=MerchantStatus.pending)
    admin = await make_user(session, role=Role.admin)
    h = auth(app, admin)
    url = f"{BASE}/{merchant.id}"
    assert_problem(
        await client.post(f"{url}/approve", json={"note": "hi"}, headers=h), 422, "validation_error"
    )
    for bad in [{}, {"reason": ""}, {"reason": "   "}, {"reason": "x" * 501}, None]:
        r = await client.post(f"{url}/reject", json=bad, headers=h)
        assert_problem(r, 422, "validation_error")
    r = await client.post(f"{url}/reject", json={"reason": "x", "extra": 1}, headers=h)
    assert_problem(r, 422, "validation_error")
    assert (await reload_merchant(session, merchant)).status == MerchantStatus.pending
    r = await client.post(f"{url}/reject", json={"reason": "x" * 500}, headers=h)
    assert r.status_code == 200 and r.json()["status"] == "rejected"


async def test_two_admins_racing_only_one_wins(client, app, session):
    merchant, _ = await make_merchant(session, status=MerchantStatus.pending)
    a1, a2 = await make_user(session, role=Role.admin), await make_user(session, role=Role.admin)
    responses = await asyncio.gather(
        client.post(f"{BASE}/{merchant.id}/approve", json={}, headers=auth(app, a1)),
        client.post(f"{BASE}/{merchant.id}/reject", json={"reason": "no"}, headers=auth(app, a2)),
    )
    assert sorted(r.status_code for r in responses) == [200, 409], [r.text for r in responses]
    winner = next(r for r in responses if r.status_code == 200).json()["status"]
    assert (await reload_merchant(session, merchant)).status == winner
    assert len(await audit_events(session)) == 1


# --- reading -----------------------------------------------------------------------------------

PUBLIC_FIELDS = {
    "id",
    "name",
    "kind",
    "uscc",
    "region_code",
    "township",
    "linked_households",
    "status",
    "created_at",
}
PRIVATE_ONLY = {"legal_representative", "contact_phone", "address", "bank_account", "status_reason"}


async def test_approved_merchant_is_public(client, app, session):
    merchant, _ = await make_merchant(session, households=90)
    buyer = await make_user(session)
    for headers in ({}, auth(app, buyer)):
        r = await client.get(f"{BASE}/{merchant.id}", headers=headers)
        assert r.status_code == 200, r.text
        body = r.json()
        assert set(body) >= PUBLIC_FIELDS
        assert not PRIVATE_ONLY & set(body)
        assert body["linked_households"] == {
            "households": 90,
            "poverty_alleviated": 30,
            "monitored": 9,
        }


@pytest.mark.parametrize("status", ["pending", "rejected", "suspended"])
@pytest.mark.parametrize("caller", ["anonymous", "buyer", "official", "other_owner"])
async def test_merchant_not_approved_is_hidden_from_outsiders(client, app, session, status, caller):
    merchant, _ = await make_merchant(session, status=MerchantStatus(status))
    headers: dict[str, str] = {}
    if caller == "other_owner":
        _, other = await make_merchant(session)
        headers = auth(app, other)
    elif caller != "anonymous":
        headers = auth(app, await make_user(session, role=Role(caller)))
    r = await client.get(f"{BASE}/{merchant.id}", headers=headers)
    assert_problem(r, 404, "merchant_not_found")


@pytest.mark.parametrize("status", list(MerchantStatus))
@pytest.mark.parametrize("caller", ["owner", "staff", "admin"])
async def test_members_and_admins_see_everything(client, app, session, status, caller):
    merchant, owner = await make_merchant(session, status=status)
    who = {
        "owner": owner,
        "staff": await make_staff(session, merchant),
        "admin": await make_user(session, role=Role.admin),
    }[caller]
    r = await client.get(f"{BASE}/{merchant.id}", headers=auth(app, who))
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) >= PRIVATE_ONLY
    assert body["bank_account"]["account_no"] == "****1234"
    assert "6228480000000001234" not in r.text


async def test_unknown_or_malformed_merchant_id(client):
    assert_problem(await client.get(f"{BASE}/{uuid.uuid4()}"), 404, "merchant_not_found")
    assert_problem(await client.get(f"{BASE}/not-a-uuid"), 422, "validation_error")


async def test_public_list_shows_approved_merchants_only(client, app, session):
    approved, _ = await make_merchant(session)
    for status in (MerchantStatus.pending, MerchantStatus.rejected, MerchantStatus.suspended):
        await make_merchant(session, status=status)
    _, owner = await make_merchant(session, status=MerchantStatus.pending)
    for headers in ({}, auth(app, await make_user(session)), auth(app, owner)):
        r = await client.get(BASE, headers=headers)
        assert r.status_code == 200, r.text
        page = r.json()
        assert [m["id"] for m in page["items"]] == [str(approved.id)]
        assert page["next_cursor"] is None
        assert not PRIVATE_ONLY & set(page["items"][0])
    # The filter narrows what the caller may see; it never widens it.
    r = await client.get(BASE, params={"status": "pending"})
    assert r.status_code == 200 and r.json()["items"] == []


async def test_admin_lists_everything_and_filters_by_status(client, app, session):
    made = {s: (await make_merchant(session, status=s))[0] for s in MerchantStatus}
    admin = auth(app, await make_user(session, role=Role.admin))
    r = await client.get(BASE, headers=admin)
    items = r.json()["items"]
    assert {m["id"] for m in items} == {str(m.id) for m in made.values()}
    assert all(set(m) >= PRIVATE_ONLY for m in items)
    for status, merchant in made.items():
        r = await client.get(BASE, params={"status": status.value}, headers=admin)
        assert [m["id"] for m in r.json()["items"]] == [str(merchant.id)]
    assert_problem(
        await client.get(BASE, params={"status": "open"}, headers=admin), 422, "validation_error"
    )


async def test_list_filters_by_township_and_kind(client, session):
    from app.models import MerchantKind

    a, _ = await make_merchant(session, township="中咱镇", kind=MerchantKind.enterprise)
    b, _ = await make_merchant(session, township="中咱镇")
    c, _ = await make_merchant(session, township="拉哇乡", kind=MerchantKind.enterprise)
    r = await client.get(BASE, params={"township": "中咱镇"})
    assert {m["id"] for m in r.json()["items"]} == {str(a.id), str(b.id)}
    r = await client.get(BASE, params={"kind": "enterprise"})
    assert {m["id"] for m in r.json()["items"]} == {str(a.id), str(c.id)}
    r = await client.get(BASE, params={"kind": "enterprise", "township": "拉哇乡"})
    assert [m["id"] for m in r.json()["items"]] == [str(c.id)]
    assert_problem(await client.get(BASE, params={"kind": "farm"}), 422, "validation_error")
    r = await client.get(BASE, params={"township": "镇" * 41})
    assert_problem(r, 422, "validation_error")


async def test_list_pages_newest_first(client, session):
    ids = [str((await make_merchant(session))[0].id) for _ in range(5)]
    seen: list[str] = []
    cursor = None
    for _ in range(3):
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get(BASE, params=params)).json()
        seen += [m["id"] for m in page["items"]]
        cursor = page["next_cursor"]
    assert cursor is None
    assert seen == list(reversed(ids))


@pytest.mark.parametrize(
    "params",
    [
        {"cursor": "garbage!"},
        {"cursor": "WyJwcm9kdWN0cyIsMV0"},  # someone else's cursor
        {"limit": 0},
        {"limit": 101},
    ],
)
async def test_list_bad_paging(client, params):
    r = await client.get(BASE, params=params)
    if "cursor" in params:
        assert_problem(r, 400, "invalid_cursor")
    else:
        assert_problem(r, 422, "validation_error")


async def test_list_cursor_with_bad_values(client):
    from app.core.pagination import encode_cursor

    r = await client.get(BASE, params={"cursor": encode_cursor("merchants", ["yesterday", "x"])})
    assert_problem(r, 400, "invalid_cursor")


# --- editing -----------------------------------------------------------------------------------

NEW_BANK = {
    "bank_name": "四川农信巴塘支行",
    "account_name": "新户名",
    "account_no": "6210 9876 5432",
}


async def test_owner_changes_contact_and_bank(client, app, session):
    merchant, owner = await make_merchant(session)
    r = await client.patch(
        f"{BASE}/{merchant.id}",
        json={"contact_phone": "+86 139 1111 2222", "address": "新地址", "bank_account": NEW_BANK},
        headers=auth(app, owner),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["contact_phone"] == "+8613911112222"
    assert body["address"] == "新地址"
    assert body["bank_account"] == {
        "bank_name": "四川农信巴塘支行",
        "account_name": "新户名",
        "account_no": "****5432",
    }
    assert "987654" not in r.text
    m = await reload_merchant(session, merchant)
    assert m.bank_account_no == "621098765432"
    assert await audit_events(session, "merchant.updated") == []


@pytest.mark.parametrize(
    "change",
    [
        {"name": "新名字"},
        {"uscc": VILLAGE_COLLECTIVE},
        {"kind": "enterprise"},
        {"linked_households": _households()},
        {"township": "中咱镇", "address": "新地址"},
        {"legal_representative": "次仁"},
        {"region_code": "513300"},
    ],
)
async def test_owner_cannot_change_registration_fields(client, app, session, change):
    merchant, owner = await make_merchant(session)
    before = (merchant.name, merchant.uscc, merchant.address, merchant.households)
    r = await client.patch(f"{BASE}/{merchant.id}", json=change, headers=auth(app, owner))
    body = assert_problem(r, 403, "forbidden")
    refused = sorted(set(change) - {"address"})
    assert body["fields"] == refused
    assert all(f in body["detail"] for f in refused)
    m = await reload_merchant(session, merchant)
    assert (m.name, m.uscc, m.address, m.households) == before


@pytest.mark.parametrize("caller", ["staff", "buyer", "official", "other_owner"])
async def test_others_cannot_edit_an_approved_merchant(client, app, session, caller):
    merchant, _ = await make_merchant(session)
    if caller == "staff":
        who = await make_staff(session, merchant)
    elif caller == "other_owner":
        who = (await make_merchant(session))[1]
    else:
        who = await make_user(session, role=Role(caller))
    r = await client.patch(
        f"{BASE}/{merchant.id}", json={"address": "抢占"}, headers=auth(app, who)
    )
    assert_problem(r, 403, "forbidden")
    assert (await reload_merchant(session, merchant)).address != "抢占"


async def test_edit_refusals_for_anonymous_and_hidden_merchants(client, app, session):
    merchant, _ = await make_merchant(session, status=MerchantStatus.pending)
    _, other_owner = await make_merchant(session)
    url = f"{BASE}/{merchant.id}"
    assert_problem(await client.patch(url, json={"address": "x"}), 401, "not_authenticated")
    r = await client.patch(url, json={"address": "x"}, headers=auth(app, other_owner))
    assert_problem(r, 404, "merchant_not_found")
    r = await client.patch(url, json={"address": "x"}, headers=auth(app, await make_user(session)))
    assert_problem(r, 404, "merchant_not_found")


async def test_admin_edits_every_field_and_is_audited(client, app, session):
    merchant, _ = await make_merchant(session, status=MerchantStatus.suspended)
    admin = await make_user(session, role=Role.admin)
    change = {
        "name": "巴塘县中咱镇村集体经济组织",
        "kind": "village_collective",
        "uscc": VILLAGE_COLLECTIVE.lower(),
        "legal_representative": "次仁",
        "region_code": "513335",
        "township": "中咱镇",
        "linked_households": {"households": 300, "poverty_alleviated": 100, "monitored": 20},
        "bank_account": NEW_BANK,
    }
    r = await client.patch(f"{BASE}/{merchant.id}", json=change, headers=auth(app, admin))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["uscc"] == VILLAGE_COLLECTIVE
    assert body["kind"] == "village_collective"
    assert body["township"] == "中咱镇"
    assert body["linked_households"]["households"] == 300
    assert body["status"] == "suspended"
    [event] = await audit_events(session, "merchant.updated")
    assert event.actor_id == admin.id
    # region_code did not change, so it is not listed; the account number never appears.
    assert event.detail == {
        "fields": [
            "bank_account",
            "kind",
            "legal_representative",
            "linked_households",
            "name",
            "township",
            "uscc",
        ]
    }
    assert "6210" not in str(event.detail)


async def test_patch_with_no_change_writes_nothing(client, app, session):
    merchant, _ = await make_merchant(session)
    admin = await make_user(session, role=Role.admin)
    r = await client.patch(
        f"{BASE}/{merchant.id}", json={"uscc": merchant.uscc}, headers=auth(app, admin)
    )
    assert r.status_code == 200
    r = await client.patch(f"{BASE}/{merchant.id}", json={}, headers=auth(app, admin))
    assert r.status_code == 200
    assert await audit_events(session) == []


async def test_admin_uscc_change_is_verified_and_unique(client, app, session):
    merchant, _ = await make_merchant(session)
    other, _ = await make_merchant(session)
    h = auth(app, await make_user(session, role=Role.admin))
    url = f"{BASE}/{merchant.id}"
    assert_problem(
        await client.patch(url, json={"uscc": "91350100M000100Y4Z"}, headers=h), 422, "invalid_uscc"
    )
    assert_problem(await client.patch(url, json={"uscc": other.uscc}, headers=h), 409, "uscc_taken")
    assert (await reload_merchant(session, merchant)).uscc != other.uscc
    assert await audit_events(session) == []


@pytest.mark.parametrize(
    "change",
    [
        {"name": None},
        {"contact_phone": None},
        {"bank_account": None},
        {"contact_phone": "12345"},
        {"address": "路" * 201},
        {"linked_households": _households(monitored=11)},
        {"linked_households": {"households": 5}},
        {"bank_account": {"account_no": "62284800001"}},
        {"status": "approved"},
        {"id": str(uuid.uuid4())},
    ],
)
async def test_bad_patch_writes_nothing(client, app, session, change):
    merchant, _ = await make_merchant(session)
    h = auth(app, await make_user(session, role=Role.admin))
    r = await client.patch(f"{BASE}/{merchant.id}", json=change, headers=h)
    assert_problem(r, 422, "validation_error")
    m = await reload_merchant(session, merchant)
    assert m.status == MerchantStatus.approved and m.contact_phone == "+8613800000000"
    assert await audit_events(session) == []


# --- members -----------------------------------------------------------------------------------


# Inviting, accepting, declining and leaving: tests/merchants/test_invitations.py.


@pytest.mark.parametrize(
    "body",
    [
        {"email": "a@example.cn", "role": "owner"},
        {"email": "a@example.cn", "role": "admin"},
        {"email": "", "role": "staff"},
        {"email": "not-an-email", "role": "staff"},
        {"email": "a" * 250 + "@x.cn", "role": "staff"},
        {"email": "a@example.cn", "role": "staff", "merchant_id": str(uuid.uuid4())},
        {"role": "staff"},
    ],
)
async def test_bad_member_bodies(client, app, session, body):
    merchant, owner = await make_merchant(session)
    await make_user(session, email="a@example.cn")
    r = await client.post(f"{BASE}/{merchant.id}/members", json=body, headers=auth(app, owner))
    assert_problem(r, 422, "validation_error")
    assert await audit_events(session) == []


@pytest.mark.parametrize("caller", ["staff", "admin", "buyer", "official", "other_owner"])
async def test_only_the_owner_adds_members(client, app, session, caller):
    merchant, _ = await make_merchant(session)
    if caller == "staff":
        who = await make_staff(session, merchant)
    elif caller == "other_owner":
        who = (await make_merchant(session))[1]
    else:
        who = await make_user(session, role=Role(caller))
    buyer = await make_user(session)
    r = await client.post(
        f"{BASE}/{merchant.id}/members",
        json={"email": buyer.email, "role": "staff"},
        headers=auth(app, who),
    )
    assert_problem(r, 403, "forbidden")
    assert (await reload_user(session, buyer)).role == Role.buyer


async def test_member_refusals_for_anonymous_and_hidden_merchants(client, app, session):
    merchant, _ = await make_merchant(session, status=MerchantStatus.pending)
    _, other_owner = await make_merchant(session)
    buyer = await make_user(session)
    url = f"{BASE}/{merchant.id}/members"
    body = {"email": buyer.email, "role": "staff"}
    assert_problem(await client.post(url, json=body), 401, "not_authenticated")
    assert_problem(await client.get(url), 401, "not_authenticated")
    r = await client.post(url, json=body, headers=auth(app, other_owner))
    assert_problem(r, 404, "merchant_not_found")
    assert_problem(await client.get(url, headers=auth(app, buyer)), 404, "merchant_not_found")
    r = await client.delete(f"{url}/{buyer.id}", headers=auth(app, other_owner))
    assert_problem(r, 404, "merchant_not_found")
    assert (await reload_user(session, buyer)).role == Role.buyer


async def test_list_members(client, app, session):
    merchant, owner = await make_merchant(session)
    staff = [await make_staff(session, merchant) for _ in range(3)]
    await make_merchant(session)  # another merchant's owner is not listed
    expected = {str(u.id) for u in (owner, *staff)}
    admin = await make_user(session, role=Role.admin)
    for who in (owner, staff[0], admin):
        r = await client.get(f"{BASE}/{merchant.id}/members", headers=auth(app, who))
        assert r.status_code == 200, r.text
        items = r.json()["items"]
        assert {m["user_id"] for m in items} == expected
        assert r.json()["next_cursor"] is None
        roles = {m["user_id"]: m["merchant_role"] for m in items}
        assert roles[str(owner.id)] == "owner" and roles[str(staff[0].id)] == "staff"
    # Paged two at a time.
    first = (
        await client.get(f"{BASE}/{merchant.id}/members?limit=2", headers=auth(app, owner))
    ).json()
    second = (
        await client.get(
            f"{BASE}/{merchant.id}/members",
            params={"limit": 2, "cursor": first["next_cursor"]},
            headers=auth(app, owner),
        )
    ).json()
    assert second["next_cursor"] is None
    # Ordered by e-mail in the database's collation; the pages neither repeat nor skip.
    paged = [m["user_id"] for m in first["items"] + second["items"]]
    assert paged == [m["user_id"] for m in items]
    assert [m["email"] for m in first["items"] + second["items"]] == [m["email"] for m in items]


@pytest.mark.parametrize("caller", ["buyer", "official", "other_owner"])
async def test_outsiders_cannot_list_members(client, app, session, caller):
    merchant, _ = await make_merchant(session)
    who = (
        (await make_merchant(session))[1]
        if caller == "other_owner"
        else await make_user(session, role=Role(caller))
    )
    r = await client.get(f"{BASE}/{merchant.id}/members", headers=auth(app, who))
    assert_problem(r, 403, "forbidden")


async def test_owner_removes_staff(client, app, session):
    merchant, owner = await make_merchant(session)
    staff = await make_staff(session, merchant)
    r = await client.delete(f"{BASE}/{merchant.id}/members/{staff.id}", headers=auth(app, owner))
    assert r.status_code == 204, r.text
    user = await reload_user(session, staff)
    assert user.role == Role.buyer
    assert user.merchant_id is None and user.merchant_role is None
    assert user.buyer_type is not None
    [event] = await audit_events(session, "merchant.member_removed")
    assert event.actor_id == owner.id and event.detail["user_id"] == str(staff.id)
    r = await client.get(f"{BASE}/{merchant.id}/members", headers=auth(app, owner))
    assert [m["user_id"] for m in r.json()["items"]] == [str(owner.id)]
    # Removed at once: the old token no longer opens the merchant's private view.
    r = await client.get(f"{BASE}/{merchant.id}/members", headers=auth(app, staff))
    assert_problem(r, 403, "forbidden")


async def test_owner_cannot_remove_itself(client, app, session):
    merchant, owner = await make_merchant(session)
    r = await client.delete(f"{BASE}/{merchant.id}/members/{owner.id}", headers=auth(app, owner))
    assert_problem(r, 409, "cannot_remove_owner")
    assert (await reload_user(session, owner)).role == Role.merchant
    assert await audit_events(session) == []


async def test_removing_a_non_member(client, app, session):
    merchant, owner = await make_merchant(session)
    other_merchant, other_owner = await make_merchant(session)
    other_staff = await make_staff(session, other_merchant)
    buyer = await make_user(session)
    h = auth(app, owner)
    for user_id in (buyer.id, other_staff.id, other_owner.id, uuid.uuid4()):
        r = await client.delete(f"{BASE}/{merchant.id}/members/{user_id}", headers=h)
        assert_problem(r, 404, "member_not_found")
    assert (await reload_user(session, other_staff)).merchant_id == other_merchant.id


@pytest.mark.parametrize("caller", ["staff", "admin", "buyer", "official", "other_owner"])
async def test_only_the_owner_removes_members(client, app, session, caller):
    merchant, _ = await make_merchant(session)
    target = await make_staff(session, merchant)
    if caller == "staff":
        who = await make_staff(session, merchant)
    elif caller == "other_owner":
        who = (await make_merchant(session))[1]
    else:
        who = await make_user(session, role=Role(caller))
    r = await client.delete(f"{BASE}/{merchant.id}/members/{target.id}", headers=auth(app, who))
    assert_problem(r, 403, "forbidden")
    assert (await reload_user(session, target)).merchant_id == merchant.id
    r = await client.delete(f"{BASE}/{merchant.id}/members/{target.id}")
    assert_problem(r, 401, "not_authenticated")
