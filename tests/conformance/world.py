"""The world the permissions matrix and the fuzzing of the OpenAPI document act on: one of
every resource a route can name (a merchant with its owner and staff, another merchant, a
product, a paid order with a refund, a completed and settled order, an invitation), built
through the API, and who is who."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.time import shanghai_today, utcnow
from app.models import Role, User
from tests.conformance.helpers import API
from tests.fixtures.factories import make_merchant, make_product, make_user, token_for
from tests.fixtures.merchants import make_staff
from tests.fixtures.orders import ask_refund, pay_by_bank, place
from tests.fixtures.settlement import run, sold


@dataclass
class World:
    """The resources every route is called on, and who is who."""

    users: dict[str, User]
    ids: dict[str, str]  # a path parameter's name (or an alias) → the id it stands for
    order: dict[str, Any]
    app: FastAPI
    tokens: dict[str, str] = field(default_factory=dict)

    def token(self, caller: str) -> str:
        if caller not in self.tokens:
            self.tokens[caller] = token_for(self.app, self.users[caller])
        return self.tokens[caller]

    def auth(self, caller: str) -> dict[str, str]:
        return {} if caller == "anonymous" else {"Authorization": f"Bearer {self.token(caller)}"}


async def build_world(client: httpx.AsyncClient, app: FastAPI, session: AsyncSession) -> World:
    merchant, owner = await make_merchant(session)
    staff = await make_staff(session, merchant)
    _, other_member = await make_merchant(session)
    product = await make_product(session, merchant, stock=1000)
    users = {
        "buyer": await make_user(session),
        "other_buyer": await make_user(session),
        "owner": owner,
        "staff": staff,
        "other_member": other_member,
        "official": await make_user(session, role=Role.official),
        "admin": await make_user(session, role=Role.admin),
    }
    buyer, admin = users["buyer"], users["admin"]
    order = await place(client, app, buyer, [(product, 1)])
    payment = await pay_by_bank(client, app, buyer, admin, order)
    mo = order["merchant_orders"][0]
    refund = await ask_refund(client, app, buyer, order, [(mo["lines"][0]["id"], 1)])
    done = await sold(
        client,
        app,
        session,
        buyer=buyer,
        admin=admin,
        member=owner,
        product=product,
        quantity=1,
        completed_at=utcnow() - timedelta(days=30),
    )
    (statement,) = (await run(client, app, admin, shanghai_today()))["settlements"]
    world = World(users=users, ids={}, order=order, app=app)
    r = await client.post(
        f"{API}/merchants/{merchant.id}/members",
        json={"email": users["other_buyer"].email, "role": "staff"},
        headers=world.auth("owner"),
    )
    assert r.status_code == 202, r.text
    r = await client.get(f"{API}/me/invitations", headers=world.auth("other_buyer"))
    (invitation,) = r.json()["items"]
    world.ids = {
        "merchant_id": str(merchant.id),
        "product_id": str(product.id),
        "order_id": order["id"],
        "merchant_order_id": mo["id"],
        "payment_id": payment["payment_id"],
        "refund_id": refund["id"],
        "done_order_id": done["id"],
        "done_merchant_order_id": done["mo"]["id"],
        "settlement_id": statement["id"],
        "invitation_id": invitation["id"],
        "buyer_id": str(buyer.id),
        "other_buyer_id": str(users["other_buyer"].id),
        "staff_id": str(staff.id),
        "year": str(shanghai_today().year),
    }
    return world
