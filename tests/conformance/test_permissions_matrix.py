"""The permissions matrix: every route of the app, called by every kind of caller, against real
resources, answers as the table below declares.

One world per caller: an approved merchant with its owner and a staff member, another merchant
with its owner, a product on sale, an order of the buyer paid by bank with a refund awaiting a
decision, an order completed and settled (a statement awaiting payout), and an invitation to the
other buyer. Each caller then calls every route once, in the order of `ROUTES`: routes that change
what later calls see come last, in pairs that undo each other (suspend, reinstate) or on
resources no later call needs.

A cell is the answer: who may act gets a 2xx, or the domain 4xx (409, 503) that shows
authorisation passed; who sees the resource but may not act, 403; who may not see it, 404
(API.md, "auth"); the anonymous caller, 401 (the dashboard sends it to its sign-in page).

Validation and authorisation: authentication (401) and the role checks made by a dependency
(the 403 of `ROLE_ONLY` routes) come before the body is validated; ownership and visibility are
decided by the services, after validation, so an invalid body from a stranger is a 422 that says
nothing about the resource. Each route is therefore called with a valid body;
`test_authentication_comes_before_validation` pins the order down.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.time import shanghai_today
from app.dashboard.session import SESSION_COOKIE, session_csrf
from app.models import MerchantStatus, ProductStatus, Role
from tests.conformance.helpers import API, OPEN, ROLE_ONLY, SEE_OR_ACT, problem
from tests.conformance.world import World, build_world
from tests.fixtures.catalog import product_body
from tests.fixtures.factories import PASSWORD, make_merchant, make_product, make_user
from tests.fixtures.merchants import application, make_staff
from tests.fixtures.orders import ADDRESS, idem

CALLERS = (
    "anonymous",
    "buyer",
    "other_buyer",
    "owner",
    "staff",
    "other_member",
    "official",
    "admin",
)
SIGNED_IN = CALLERS[1:]
MEMBERS = ("owner", "staff")
DASHBOARD_VIEWERS = ("official", "admin")

# --- the table ---------------------------------------------------------------------------------

Send = Callable[[httpx.AsyncClient, World, str], Awaitable[httpx.Response]]


@dataclass(frozen=True)
class Route:
    """How one route answers each caller, and how to call it.

    An answer is `"<status>"`, `"<status> <problem code>"` or, for a redirect,
    `"<status> <location>"`. Callers in `act` pass authorisation and get what is written there;
    callers in `hide` may not see the resource (`hidden`); the anonymous caller gets `anonymous`;
    everyone else sees but may not act (`refuse`)."""

    act: Mapping[str, str]
    refuse: str = "403 forbidden"
    hide: tuple[str, ...] = ()
    hidden: str = ""
    anonymous: str = "401 not_authenticated"
    ids: Mapping[str, str] = field(default_factory=dict)  # path parameter → key of World.ids
    body: Any = None  # JSON, or a function of the world and the caller giving it
    params: Mapping[str, str] | None = None
    idempotent: bool = False  # sends an Idempotency-Key
    send: Send | None = None  # for routes that are not called as JSON with a bearer token

    def expected(self, caller: str) -> str:
        if caller in self.act:
            return self.act[caller]
        if caller == "anonymous":
            return self.anonymous
        if caller in self.hide:
            return self.hidden
        return self.refuse


def everyone(answer: str) -> dict[str, str]:
    return dict.fromkeys(CALLERS, answer)


def only(*callers: str, answer: str) -> dict[str, str]:
    return dict.fromkeys(callers, answer)


STRANGERS = ("other_buyer", "other_member")  # no part in the buyer's order nor the merchant
# Officials may do nothing outside statistics: 403 (API.md, roles), never 404.
# An invitation is the invitee's alone: 404 to everyone else who may hold one.
NOT_INVITED = ("buyer", "owner", "staff", "other_member", "admin")


def _fresh_email(_world: World, _caller: str) -> dict[str, Any]:
    return {
        "email": f"new-{uuid.uuid4().hex[:10]}@example.cn",
        "password": "a long enough password",
        "display_name": "新用户",
        "region_code": "330127",
    }


def _new_official(world: World, caller: str) -> dict[str, Any]:
    return {**_fresh_email(world, caller), "role": "official"}


def _invitee(_world: World, _caller: str) -> dict[str, Any]:
    return {"email": f"staff-{uuid.uuid4().hex[:10]}@example.cn", "role": "staff"}


def _order_lines(world: World, _caller: str) -> dict[str, Any]:
    return {
        "lines": [{"product_id": world.ids["product_id"], "quantity": 1}],
        "shipping_address": ADDRESS,
        "payment_method": "bank_transfer",
    }


def _refund_lines(world: World, _caller: str) -> dict[str, Any]:
    line = world.order["merchant_orders"][0]["lines"][0]
    return {"lines": [{"order_line_id": line["id"], "quantity": 1}], "reason": "包装破损"}


def _bank_transfer(world: World, _caller: str) -> dict[str, Any]:
    return {"amount_fen": world.order["total_fen"], "bank_reference": _reference()}


def _bank_reference(_world: World, _caller: str) -> dict[str, Any]:
    return {"bank_reference": _reference()}


def _reference() -> str:
    return f"REF-{uuid.uuid4().hex[:12]}"


def _application(_world: World, _caller: str) -> dict[str, Any]:
    return application()


async def _sign_in_by_api(client: httpx.AsyncClient, world: World, caller: str) -> httpx.Response:
    email = "nobody@example.cn" if caller == "anonymous" else world.users[caller].email
    return await client.post(f"{API}/auth/token", data={"username": email, "password": PASSWORD})


def _dashboard_get(path: str) -> Send:
    async def send(client: httpx.AsyncClient, world: World, caller: str) -> httpx.Response:
        return await client.get(path, headers=_dashboard_cookie(world, caller))

    return send


def _dashboard_cookie(world: World, caller: str) -> dict[str, str]:
    return {} if caller == "anonymous" else {"Cookie": f"{SESSION_COOKIE}={world.token(caller)}"}


async def _dashboard_sign_in(
    client: httpx.AsyncClient, world: World, caller: str
) -> httpx.Response:
    form = await client.get("/dashboard/login")
    match = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert match, form.text
    email = "nobody@example.cn" if caller == "anonymous" else world.users[caller].email
    return await client.post(
        "/dashboard/login",
        data={"username": email, "password": PASSWORD, "csrf_token": match.group(1)},
        headers={"Origin": "http://testserver"},
    )


async def _dashboard_sign_out(
    client: httpx.AsyncClient, world: World, caller: str
) -> httpx.Response:
    csrf = (
        ""
        if caller == "anonymous"
        else session_csrf(world.app.state.settings.secret_key, world.token(caller))
    )
    return await client.post(
        "/dashboard/logout",
        data={"csrf_token": csrf},
        headers={"Origin": "http://testserver", **_dashboard_cookie(world, caller)},
    )


M = f"{API}/merchants/{{merchant_id}}"
P = f"{API}/products/{{product_id}}"
ADMIN_ON_MERCHANT = {"act": only("admin", answer="409 invalid_transition")}
NOT_MEMBER = "403 not_merchant_member"

# In call order: what changes the world for later calls comes last.
ROUTES: dict[str, Route] = {
    # operations and what is public
    "GET /healthz": Route(act=everyone("200")),
    "GET /readyz": Route(act=everyone("200")),
    "GET /metrics": Route(act=everyone("200")),
    f"POST {API}/auth/register": Route(act=everyone("201"), body=_fresh_email),
    f"POST {API}/auth/token": Route(
        act=only(*SIGNED_IN, answer="200"),
        anonymous="401 invalid_credentials",
        send=_sign_in_by_api,
    ),
    f"GET {API}/me": Route(act=only(*SIGNED_IN, answer="200")),
    f"GET {API}/me/invitations": Route(act=only(*SIGNED_IN, answer="200")),
    f"GET {API}/categories": Route(act=everyone("200")),
    f"GET {API}/products": Route(act=everyone("200")),
    f"GET {P}": Route(act=everyone("200")),
    f"GET {API}/merchants": Route(act=everyone("200")),
    f"GET {M}": Route(act=everyone("200")),
    # Stripe is not configured in the tests: the webhook is refused before its signature is read
    f"POST {API}/webhooks/stripe": Route(act=everyone("503 payment_provider_unavailable"), body={}),
    # users
    f"POST {API}/users": Route(act=only("admin", answer="201"), body=_new_official),
    f"GET {API}/users": Route(act=only("admin", answer="200")),
    f"GET {API}/users/{{user_id}}": Route(
        act=only("admin", answer="200"), ids={"user_id": "buyer_id"}
    ),
    f"PATCH {API}/users/{{user_id}}": Route(
        act=only("admin", answer="200"),
        ids={"user_id": "other_buyer_id"},
        body={"buyer_type": "enterprise"},
    ),
    # merchants
    f"PATCH {M}": Route(
        act=only("owner", "admin", answer="200"), body={"address": "巴塘县夏邛镇团结路9号"}
    ),
    f"POST {M}/approve": Route(**ADMIN_ON_MERCHANT),
    f"POST {M}/reject": Route(**ADMIN_ON_MERCHANT, body={"reason": "资料不全"}),
    f"POST {M}/verify-bank-account": Route(act=only("admin", answer="200")),
    f"POST {M}/resubmit": Route(act=only("owner", answer="409 invalid_transition")),
    f"POST {M}/members": Route(act=only("owner", answer="202"), body=_invitee),
    f"GET {M}/members": Route(act=only(*MEMBERS, "admin", answer="200")),
    f"POST {M}/payout-account": Route(act=only("owner", answer="503 payment_provider_unavailable")),
    f"GET {M}/payout-account": Route(act=only(*MEMBERS, "admin", answer="200")),
    # catalog
    f"POST {API}/products": Route(
        act=only(*MEMBERS, "other_member", answer="201"), body=product_body()
    ),
    f"PATCH {P}": Route(act=only(*MEMBERS, answer="200"), refuse=NOT_MEMBER, body={"unit": "箱"}),
    f"POST {P}/approve": Route(act=only("admin", answer="409 invalid_transition")),
    f"POST {P}/reject": Route(
        act=only("admin", answer="409 invalid_transition"), body={"reason": "图片不清晰"}
    ),
    f"POST {P}/stock-adjustments": Route(
        act=only(*MEMBERS, answer="201"), refuse=NOT_MEMBER, body={"delta": 1, "reason": "盘点"}
    ),
    f"GET {P}/stock-adjustments": Route(
        act=only(*MEMBERS, "admin", answer="200"), refuse=NOT_MEMBER
    ),
    f"GET {M}/products": Route(
        act={**only(*MEMBERS, "admin", answer="200"), "other_member": NOT_MEMBER}
    ),
    # orders, merchant orders, payments: the paid order, or the completed one
    f"POST {API}/orders": Route(
        act=only("buyer", "other_buyer", answer="201"), body=_order_lines, idempotent=True
    ),
    f"GET {API}/orders": Route(act=only("buyer", "other_buyer", "admin", answer="200")),
    # only a buyer reads, pays or asks for a refund (an admin reads too): others by role, 403
    f"GET {API}/orders/{{order_id}}": Route(
        act=only("buyer", "admin", answer="200"),
        hide=("other_buyer",),
        hidden="404 order_not_found",
    ),
    f"GET {M}/orders": Route(act=only(*MEMBERS, "admin", answer="200")),
    f"POST {API}/orders/{{order_id}}/cancel": Route(
        act=only("buyer", answer="409 invalid_transition"),
        hide=STRANGERS,
        hidden="404 order_not_found",
        ids={"order_id": "done_order_id"},
    ),
    f"POST {API}/merchant-orders/{{merchant_order_id}}/ship": Route(
        act=only(*MEMBERS, answer="409 invalid_transition"),
        hide=STRANGERS,
        hidden="404 merchant_order_not_found",
        ids={"merchant_order_id": "done_merchant_order_id"},
        body={"carrier": "顺丰速运", "tracking_no": "SF1234567890"},
    ),
    f"POST {API}/merchant-orders/{{merchant_order_id}}/confirm-receipt": Route(
        act=only("buyer", answer="409 invalid_transition"),
        hide=STRANGERS,
        hidden="404 merchant_order_not_found",
        ids={"merchant_order_id": "done_merchant_order_id"},
    ),
    f"POST {API}/orders/{{order_id}}/payments": Route(
        act=only("buyer", answer="409 order_not_payable"),
        hide=("other_buyer",),
        hidden="404 order_not_found",
        idempotent=True,
    ),
    f"POST {API}/payments/{{payment_id}}/confirm": Route(
        act=only("admin", answer="409 invalid_transition"),
        hide=(*STRANGERS, *MEMBERS),
        hidden="404 payment_not_found",
        body=_bank_transfer,
    ),
    f"GET {API}/ledger/balances": Route(act=only("admin", answer="200")),
    # refunds: the buyer's request on the paid order is decided, paid back, then refused twice
    f"POST {API}/orders/{{order_id}}/refunds": Route(
        act=only("buyer", answer="409 refund_exceeds_purchase"),
        hide=("other_buyer",),
        hidden="404 order_not_found",
        body=_refund_lines,
        idempotent=True,
    ),
    f"GET {API}/refunds": Route(act=only(*MEMBERS, "other_member", "admin", answer="200")),
    f"POST {API}/refunds/{{refund_id}}/approve": Route(
        act=only(*MEMBERS, "admin", answer="200"),
        hide=STRANGERS,
        hidden="404 refund_not_found",
    ),
    f"POST {API}/refunds/{{refund_id}}/mark-paid": Route(
        act=only("admin", answer="200"),
        hide=STRANGERS,
        hidden="404 refund_not_found",
        body=_bank_reference,
    ),
    f"POST {API}/refunds/{{refund_id}}/retry": Route(
        act=only("admin", answer="200"), hide=STRANGERS, hidden="404 refund_not_found"
    ),
    f"POST {API}/refunds/{{refund_id}}/reject": Route(
        act=only(*MEMBERS, "admin", answer="409 invalid_transition"),
        hide=STRANGERS,
        hidden="404 refund_not_found",
        body={"reason": "已签收"},
    ),
    # settlement: the statement is paid last
    f"POST {API}/settlements/runs": Route(
        act=only("admin", answer="200"),
        body=lambda world, caller: {"period_end": str(shanghai_today())},
        idempotent=True,
    ),
    f"GET {API}/settlements": Route(act=only(*MEMBERS, "other_member", "admin", answer="200")),
    f"GET {API}/settlements/export": Route(
        act=only("admin", answer="200"), params={"format": "csv"}
    ),
    f"GET {API}/settlements/{{settlement_id}}": Route(
        act=only(*MEMBERS, "admin", answer="200"),
        hide=("other_member",),
        hidden="404 settlement_not_found",
    ),
    f"GET {API}/settlements/{{settlement_id}}/export": Route(
        act=only(*MEMBERS, "admin", answer="200"),
        hide=("other_member",),
        hidden="404 settlement_not_found",
        params={"format": "csv"},
    ),
    f"POST {API}/settlements/{{settlement_id}}/payout": Route(
        act=only("admin", answer="409 payouts_not_enabled")
    ),
    f"POST {API}/settlements/{{settlement_id}}/mark-paid": Route(
        act=only("admin", answer="200"), body=_bank_reference
    ),
    # audit and statistics
    f"GET {API}/audit-events": Route(act=only("admin", answer="200")),
    f"GET {API}/stats/assistance": Route(act=only(*DASHBOARD_VIEWERS, answer="200")),
    f"PUT {API}/stats/targets/{{year}}": Route(
        act=only(*DASHBOARD_VIEWERS, answer="200"),
        body={"purchased_fen": 100_000_00, "helped_sold_fen": 200_000_00},
    ),
    f"GET {API}/stats/assistance/progress": Route(act=only(*DASHBOARD_VIEWERS, answer="200")),
    f"GET {API}/stats/assistance/export": Route(
        act=only(*DASHBOARD_VIEWERS, answer="200"), params={"format": "csv"}
    ),
    # the dashboard: a session cookie instead of a bearer token, pages instead of problems
    "GET /dashboard": Route(
        act=only(*DASHBOARD_VIEWERS, answer="200"),
        refuse="403",
        anonymous="303 /dashboard/login",
        send=_dashboard_get("/dashboard"),
    ),
    "GET /dashboard/export": Route(
        act=only(*DASHBOARD_VIEWERS, answer="200"),
        refuse="403",
        anonymous="303 /dashboard/login",
        send=_dashboard_get("/dashboard/export?format=csv"),
    ),
    "GET /dashboard/login": Route(
        act={**everyone("200"), **only(*DASHBOARD_VIEWERS, answer="303 /dashboard")},
        send=_dashboard_get("/dashboard/login"),
    ),
    "POST /dashboard/login": Route(
        act=only(*SIGNED_IN, answer="303 /dashboard"), anonymous="401", send=_dashboard_sign_in
    ),
    "POST /dashboard/logout": Route(act=everyone("303 /dashboard/login"), send=_dashboard_sign_out),
    # changes undone at once: suspended then reinstated, taken off sale then back on sale
    f"POST {M}/suspend": Route(act=only("admin", answer="200"), body={"reason": "核查中"}),
    f"POST {M}/reinstate": Route(act=only("admin", answer="200")),
    f"POST {P}/deactivate": Route(act=only(*MEMBERS, answer="200"), refuse=NOT_MEMBER),
    f"POST {P}/activate": Route(act=only(*MEMBERS, answer="200"), refuse=NOT_MEMBER),
    # the invitation is declined, then cannot be accepted; buyers hold orders in progress
    f"POST {API}/invitations/{{invitation_id}}/decline": Route(
        act=only("other_buyer", answer="200"),
        hide=NOT_INVITED,
        hidden="404 invitation_not_found",
    ),
    f"POST {API}/invitations/{{invitation_id}}/accept": Route(
        act=only("other_buyer", answer="409 invalid_transition"),
        hide=NOT_INVITED,
        hidden="404 invitation_not_found",
    ),
    f"POST {API}/merchants": Route(
        act={
            **only("buyer", "other_buyer", answer="409 orders_in_progress"),
            **only(*MEMBERS, "other_member", answer="409 already_merchant"),
        },
        body=_application,
    ),
    # last: the staff member leaves, or is removed by the owner
    f"DELETE {M}/members/{{user_id}}": Route(
        act=only(*MEMBERS, answer="204"), ids={"user_id": "staff_id"}
    ),
}


# --- the tests ---------------------------------------------------------------------------------


def route_table(app: FastAPI) -> set[str]:
    """Every operation the app serves: its API routes and the dashboard's pages."""
    operations = set()
    for context in iter_route_contexts(app.routes):
        if isinstance(context.original_route, APIRoute):
            operations |= {f"{method} {context.path}" for method in context.methods or ()}
    return operations


def test_every_route_has_declared_rules(app: FastAPI) -> None:
    assert set(ROUTES) == route_table(app)


def test_the_rules_agree_with_the_route_groups() -> None:
    """OPEN routes refuse no signed-in caller; ROLE_ONLY routes never hide (404); every rule
    names only known callers."""
    for op, route in ROUTES.items():
        assert set(route.act) | set(route.hide) <= set(CALLERS), op
        answers = {caller: route.expected(caller) for caller in CALLERS}
        if op in OPEN:
            assert all(not a.startswith(("403", "404")) for a in answers.values()), op
        if op in ROLE_ONLY:
            assert all(not a.startswith("404") for a in answers.values()), op
        if op in SEE_OR_ACT:
            assert any(a.startswith(("403", "404")) for a in answers.values()), op


def _call(route: Route, op: str, world: World, caller: str) -> tuple[str, str, dict[str, Any]]:
    method, template = op.split(" ", 1)
    names = re.findall(r"{(\w+)}", template)
    path = template.format(**{n: world.ids[route.ids.get(n, n)] for n in names})
    headers = world.auth(caller)
    if route.idempotent:
        headers |= idem()
    body = route.body(world, caller) if callable(route.body) else route.body
    kwargs: dict[str, Any] = {"headers": headers, "params": route.params}
    if method in ("POST", "PUT", "PATCH") and body is not None:
        kwargs["json"] = body
    return method, path, kwargs


def _answer(r: httpx.Response, expected: str) -> str:
    """The response in the table's notation, as detailed as `expected` is."""
    status = str(r.status_code)
    if " " not in expected:
        return status
    if 300 <= r.status_code < 400:
        return f"{status} {r.headers.get('location')}"
    if r.headers.get("content-type", "").startswith("application/problem+json"):
        return f"{status} {r.json().get('code')}"
    return f"{status} (not a problem: {r.headers.get('content-type')})"


def _problem_shape(op: str, r: httpx.Response) -> str | None:
    """An API error that is not problem+json with a code, described; else None."""
    if r.status_code < 400 or not op.split(" ", 1)[1].startswith(API):
        return None
    if not r.headers.get("content-type", "").startswith("application/problem+json"):
        return f"{r.status_code} as {r.headers.get('content-type')}"
    body = r.json()
    if not isinstance(body.get("code"), str) or body.get("status") != r.status_code:
        return f"{r.status_code} without a code: {body}"
    return None


@pytest.mark.parametrize("caller", CALLERS)
async def test_every_route_answers_every_caller_as_declared(
    client: httpx.AsyncClient, app: FastAPI, session: AsyncSession, caller: str
) -> None:
    world = await build_world(client, app, session)
    wrong = []
    for op, route in ROUTES.items():
        client.cookies.clear()  # the dashboard's cookies belong to one call
        expected = route.expected(caller)
        if route.send is not None:
            r = await route.send(client, world, caller)
        else:
            method, path, kwargs = _call(route, op, world, caller)
            r = await client.request(method, path, **kwargs)
        got = _answer(r, expected)
        if got != expected:
            wrong.append(f"{op}: expected {expected}, got {got}: {r.text[:300]}")
        elif (shape := _problem_shape(op, r)) is not None:
            wrong.append(f"{op}: {shape}")
    assert wrong == [], "\n".join(wrong)


HIDING = {"merchant_id": "404 merchant_not_found", "product_id": "404 product_not_found"}


async def test_what_a_stranger_may_not_see_is_404_on_every_route_that_names_it(
    client: httpx.AsyncClient, app: FastAPI, session: AsyncSession
) -> None:
    """The other column of the 404/403 rule: a merchant that is not approved, and its product
    awaiting review, are hidden from everyone but their members and admins. Every route naming
    one answers 404 to the buyers, another merchant's member and an official (the public reads,
    to the anonymous caller too), as if it did not exist; a route that refuses by role answers
    as it does for a visible merchant."""
    merchant, _ = await make_merchant(session, status=MerchantStatus.pending)
    staff = await make_staff(session, merchant)
    product = await make_product(session, merchant, status=ProductStatus.pending_review)
    _, other_member = await make_merchant(session)
    users = {
        "buyer": await make_user(session),
        "other_buyer": await make_user(session),
        "other_member": other_member,
        "official": await make_user(session, role=Role.official),
    }
    ids = {
        "merchant_id": str(merchant.id),
        "product_id": str(product.id),
        "staff_id": str(staff.id),
    }
    world = World(users=users, ids=ids, order={}, app=app)
    wrong = []
    for op, route in ROUTES.items():
        named = [name for name in HIDING if f"{{{name}}}" in op]
        if not named:
            continue
        for caller in ("anonymous", *users):
            expected = route.expected(caller)  # by role, as for a visible merchant
            if op in OPEN or (op in SEE_OR_ACT and caller != "anonymous"):
                expected = HIDING[named[-1]]
            method, path, kwargs = _call(route, op, world, caller)
            r = await client.request(method, path, **kwargs)
            if (got := _answer(r, expected)) != expected:
                wrong.append(f"{op} as {caller}: expected {expected}, got {got}: {r.text[:200]}")
    assert wrong == [], "\n".join(wrong)


async def test_authentication_comes_before_validation(
    client: httpx.AsyncClient, app: FastAPI, session: AsyncSession
) -> None:
    """An invalid body (a JSON array fits no route) from the anonymous caller is 401 on every
    route that needs a token, and from a buyer 403 on the admin-only routes (a role dependency);
    a stranger's invalid body to a route that checks ownership is 422 (`validation_error`)."""
    world = World(users={"buyer": await make_user(session)}, ids={}, order={}, app=app)
    zero = str(uuid.UUID(int=0))
    for op, route in ROUTES.items():
        if route.send is not None or route.expected("anonymous") != "401 not_authenticated":
            continue
        method, template = op.split(" ", 1)
        path = re.sub(r"{\w+}", zero, template)  # a year too: path parameters come later
        r = await client.request(
            method, path, content=b"[]", headers={"Content-Type": "application/json"}
        )
        assert r.status_code == 401, (op, r.text)
    admin_only = [
        op for op, route in ROUTES.items() if set(route.act) == {"admin"} and op in ROLE_ONLY
    ]
    assert admin_only
    for op in admin_only:
        method, template = op.split(" ", 1)
        path = re.sub(r"{\w+}", zero, template)
        r = await client.request(
            method,
            path,
            content=b"[]",
            headers={"Content-Type": "application/json", **world.auth("buyer")},
        )
        assert r.status_code == 403, (op, r.text)
    r = await client.patch(
        f"{API}/merchants/{zero}",
        content=b"[]",
        headers={"Content-Type": "application/json", **world.auth("buyer")},
    )
    problem(r, 422, "validation_error")
