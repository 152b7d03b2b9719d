"""Property: after any sequence of orders, payments, partial refunds, cancellations, certificate
expiries and buyer-type changes, every grouping equals a brute-force recount of the order lines,
and the total equals what the ledger says the western merchants sold, less refunds, less the
lines that do not count (uncertified on the payment day)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import date, timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.time import SHANGHAI
from app.models import (
    BuyerType,
    LedgerAccount,
    LedgerEntry,
    LedgerKind,
    Merchant,
    MerchantOrder,
    Order,
    OrderLine,
    Product,
    User,
)
from tests.fixtures.factories import auth
from tests.fixtures.orders import API, place
from tests.statistics.conftest import at, buy, refund, shanghai, stats

BUYERS = ("chunan", "hangzhou", "union")
PRODUCTS = ("apples", "matsutake", "expiring", "uncertified", "eastern")
GROUPS = (
    "month",
    "quarter",
    "year",
    "indicator",
    "buyer_type",
    "buyer_region",
    "product_class",
    "category",
    "merchant",
    "township",
)
WEST = ("513335",)
EAST = ("330127",)

op = st.one_of(
    st.tuples(
        st.just("buy"),
        st.sampled_from(BUYERS),
        st.lists(st.tuples(st.sampled_from(PRODUCTS), st.integers(1, 4)), min_size=1, max_size=3),
    ),
    st.tuples(st.just("unpaid"), st.sampled_from(BUYERS), st.sampled_from(PRODUCTS)),
    st.tuples(st.just("refund"), st.integers(0, 50), st.integers(0, 2), st.integers(1, 3)),
    st.tuples(st.just("cancel"), st.integers(0, 50)),
    st.tuples(st.just("retype"), st.sampled_from(BUYERS), st.sampled_from(list(BuyerType))),
    st.tuples(st.just("expire"), st.integers(-20, 60)),
)
step = st.tuples(op, st.integers(0, 20), st.integers(0, 23), st.integers(0, 59))


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(step, min_size=1, max_size=8))
async def test_figures_equal_a_recount_and_the_ledger(
    client: httpx.AsyncClient,
    app: FastAPI,
    session: AsyncSession,
    world: dict[str, Any],
    steps: list[tuple[Any, int, int, int]],
) -> None:
    # Examples accumulate on one database: the property must hold after every sequence.
    state = world.setdefault("_state", {"day": date(2025, 1, 1), "orders": []})
    for action, days, hh, mm in steps:
        state["day"] += timedelta(days=days)
        when = shanghai(state["day"], hh, mm)
        await _run(client, app, session, world, state, action, when)
    end = state["day"] + timedelta(days=1)
    for start in (date(2025, 1, 1), min(date(2025, 2, 10), end)):
        for group in GROUPS:
            params = {"from": start.isoformat(), "to": end.isoformat(), "group_by": group}
            got = await stats(client, app, world["official"], **params)
            want_rows, want_totals = await _recount(session, group, start, end)
            assert got["totals"] == want_totals, params
            rows = {r["key"]: _figures(r) for r in got["rows"]}
            if group in ("month", "quarter", "year"):
                rows = {k: v for k, v in rows.items() if any(v.values())}
            assert rows == want_rows, params
    assert await _ledger_sales(session) == (await _recount(session, "year", date(2000, 1, 1), end))[
        1
    ]["amount_fen"] + await _not_counted(session)


async def _run(
    client: httpx.AsyncClient,
    app: FastAPI,
    session: AsyncSession,
    world: dict[str, Any],
    state: dict[str, Any],
    action: tuple[Any, ...],
    when: Any,
) -> None:
    kind = action[0]
    if kind == "buy":
        state["orders"].append(
            (action[1], await buy(client, app, world, action[1], action[2], when))
        )
    elif kind == "unpaid":
        with at(when):
            await place(client, app, world[action[1]], [(world[action[2]], 1)])
    elif kind == "refund" and state["orders"]:
        buyer, order = state["orders"][action[1] % len(state["orders"])]
        lines = [ln for mo in order["merchant_orders"] for ln in mo["lines"]]
        index = action[2] % len(lines)
        left = lines[index]["quantity"] - await session.scalar(
            select(OrderLine.refunded_quantity).where(OrderLine.id == uuid.UUID(lines[index]["id"]))
        )
        if left > 0:
            await refund(client, app, world, buyer, order, index, min(action[3], left), when)
    elif kind == "cancel" and state["orders"]:
        buyer, order = state["orders"][action[1] % len(state["orders"])]
        with at(when):
            await client.post(
                f"{API}/orders/{order['id']}/cancel", json={}, headers=auth(app, world[buyer])
            )
    elif kind == "retype":
        await session.execute(
            update(User).where(User.id == world[action[1]].id).values(buyer_type=action[2])
        )
        await session.commit()
    elif kind == "expire":
        # The certificate of `expiring` now ends some days around the current day.
        await session.execute(
            update(Product)
            .where(Product.id == world["expiring"].id)
            .values(cert_valid_to=state["day"] + timedelta(days=action[1]))
        )
        await session.commit()


async def _lines(session: AsyncSession) -> list[dict[str, Any]]:
    """Every line of a paid order with what the rules look at, read plainly."""
    rows = await session.execute(
        select(OrderLine, Order, Merchant)
        .join(Order, Order.id == OrderLine.order_id)
        .join(MerchantOrder, MerchantOrder.id == OrderLine.merchant_order_id)
        .join(Merchant, Merchant.id == MerchantOrder.merchant_id)
        .where(Order.paid_at.is_not(None))
        .execution_options(populate_existing=True)
    )
    out = []
    for line, order, merchant in rows:
        day = order.paid_at.astimezone(SHANGHAI).date()
        certified = line.cert_no is not None and (
            (line.cert_valid_from is None or line.cert_valid_from <= day)
            and (line.cert_valid_to is None or day <= line.cert_valid_to)
        )
        out.append(
            {
                "day": day,
                "west": merchant.region_code in WEST,
                "certified": certified,
                "net": line.quantity - line.refunded_quantity,
                "amount": (line.quantity - line.refunded_quantity) * line.unit_price_fen,
                "order": order.id,
                "buyer": order.buyer_id,
                "keys": {
                    "month": f"{day.year}-{day.month:02d}",
                    "quarter": f"{day.year}-Q{(day.month - 1) // 3 + 1}",
                    "year": str(day.year),
                    "indicator": "purchased" if order.buyer_region_code in EAST else "helped_sold",
                    "buyer_type": str(order.buyer_type),
                    "buyer_region": order.buyer_region_code,
                    "product_class": str(line.assistance_class),
                    "category": line.category_slug,
                    "merchant": str(merchant.id),
                    "township": line.origin_township,
                },
            }
        )
    return out


async def _recount(
    session: AsyncSession, group: str, start: date, end: date
) -> tuple[dict[str, dict[str, int]], dict[str, int]]:
    rows: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"amount_fen": 0, "units": 0, "orders": set(), "buyers": set()}
    )
    total: dict[str, Any] = {"amount_fen": 0, "units": 0, "orders": set(), "buyers": set()}
    for line in await _lines(session):
        if not (line["west"] and line["certified"] and start <= line["day"] <= end):
            continue
        for acc in (rows[line["keys"][group]], total):
            acc["amount_fen"] += line["amount"]
            acc["units"] += line["net"]
            if line["net"] > 0:
                acc["orders"].add(line["order"])
                acc["buyers"].add(line["buyer"])
    flat = {k: _flat(v) for k, v in rows.items() if v["amount_fen"] or v["units"] or v["orders"]}
    return flat, _flat(total)


def _flat(acc: dict[str, Any]) -> dict[str, int]:
    return {
        "amount_fen": acc["amount_fen"],
        "order_count": len(acc["orders"]),
        "units": acc["units"],
        "buyer_count": len(acc["buyers"]),
    }


def _figures(row: dict[str, Any]) -> dict[str, int]:
    return {k: row[k] for k in ("amount_fen", "order_count", "units", "buyer_count")}


async def _not_counted(session: AsyncSession) -> int:
    return sum(ln["amount"] for ln in await _lines(session) if ln["west"] and not ln["certified"])


async def _ledger_sales(session: AsyncSession) -> int:
    """What the ledger says the western merchants sold, less refunds."""
    return -int(
        await session.scalar(
            select(func.coalesce(func.sum(LedgerEntry.amount_fen), 0))
            .join(Merchant, Merchant.id == LedgerEntry.merchant_id)
            .where(
                LedgerEntry.account == LedgerAccount.merchant_payable,
                LedgerEntry.kind.in_([LedgerKind.payment_captured, LedgerKind.refund_approved]),
                Merchant.region_code.in_(WEST),
            )
        )
        or 0
    )
