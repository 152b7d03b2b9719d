"""Statistics tests: a western cast (two Batang merchants, certified products), an eastern
merchant whose sales never count, buyers from Chun'an, Hangzhou and an organisation, and helpers
that buy, refund and cancel at a given instant through the API."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time
from typing import Any

import httpx
import pytest
import time_machine
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.time import SHANGHAI
from app.models import BuyerType, Role
from tests.fixtures.factories import auth, make_merchant, make_product, make_user
from tests.fixtures.orders import API, idem, pay_by_bank, place

CERT = {"cert_no": "消帮认〔2025〕0001", "cert_valid_from": date(2024, 1, 1)}


def shanghai(day: date, hh: int, mm: int) -> datetime:
    """An instant given on the Shanghai wall clock, in UTC."""
    return datetime.combine(day, time(hh, mm), tzinfo=SHANGHAI).astimezone(UTC)


@contextmanager
def at(instant: datetime) -> Iterator[None]:
    """Run the app's clock from `instant` (ticking)."""
    with time_machine.travel(instant, tick=True):
        yield


@pytest.fixture
async def world(session: AsyncSession) -> dict[str, Any]:
    m1, owner1 = await make_merchant(session, township="夏邛镇", households=120)
    m2, owner2 = await make_merchant(session, township="竹巴龙乡", households=45)
    east_m, _ = await make_merchant(session, region_code="330127", township="千岛湖镇")
    apples = await make_product(
        session,
        m1,
        price_fen=4500,
        stock=10_000,
        category="fruit",
        **CERT,
        cert_valid_to=date(2027, 12, 31),
    )
    matsutake = await make_product(
        session,
        m2,
        price_fen=21000,
        stock=10_000,
        category="mushrooms",
        origin_township="竹巴龙乡",
        **CERT,
        cert_valid_to=date(2027, 12, 31),
    )
    expiring = await make_product(
        session,
        m1,
        price_fen=3000,
        stock=10_000,
        category="fruit",
        **CERT,
        cert_valid_to=date(2025, 6, 30),
    )
    uncertified = await make_product(session, m1, price_fen=1000, stock=10_000)
    eastern = await make_product(
        session, east_m, price_fen=5000, stock=10_000, **CERT, cert_valid_to=date(2027, 12, 31)
    )
    return {
        "m1": m1,
        "m2": m2,
        "owner1": owner1,
        "owner2": owner2,
        "east_merchant": east_m,
        "apples": apples,
        "matsutake": matsutake,
        "expiring": expiring,
        "uncertified": uncertified,
        "eastern": eastern,
        "chunan": await make_user(session, region_code="330127"),
        "hangzhou": await make_user(session, region_code="330106"),
        "union": await make_user(session, region_code="330127", buyer_type=BuyerType.union),
        "admin": await make_user(session, role=Role.admin),
        "official": await make_user(session, role=Role.official, region_code="330127"),
    }


async def buy(
    client: httpx.AsyncClient,
    app: FastAPI,
    world: dict[str, Any],
    buyer: str,
    lines: list[tuple[str, int]],
    when: datetime,
) -> dict[str, Any]:
    """`buyer` orders and pays by bank transfer at `when`."""
    with at(when):
        order = await place(client, app, world[buyer], [(world[p], q) for p, q in lines])
        await pay_by_bank(client, app, world[buyer], world["admin"], order)
    return order


async def refund(
    client: httpx.AsyncClient,
    app: FastAPI,
    world: dict[str, Any],
    buyer: str,
    order: dict[str, Any],
    line_index: int,
    quantity: int,
    when: datetime,
) -> None:
    """`buyer` asks for `quantity` units of a line back; the admin approves, at `when`."""
    line = order["lines"][line_index] if "lines" in order else None
    if line is None:
        line = [ln for mo in order["merchant_orders"] for ln in mo["lines"]][line_index]
    with at(when):
        r = await client.post(
            f"{API}/orders/{order['id']}/refunds",
            json={"lines": [{"order_line_id": line["id"], "quantity": quantity}], "reason": "坏果"},
            headers={**auth(app, world[buyer]), **idem()},
        )
        assert r.status_code == 201, r.text
        r = await client.post(
            f"{API}/refunds/{r.json()['id']}/approve", json={}, headers=auth(app, world["admin"])
        )
        assert r.status_code == 200, r.text


async def stats(
    client: httpx.AsyncClient, app: FastAPI, user: Any, **params: str
) -> dict[str, Any]:
    r = await client.get(f"{API}/stats/assistance", params=params, headers=auth(app, user))
    assert r.status_code == 200, r.text
    return dict(r.json())


def by_key(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["key"]: row for row in report["rows"]}
