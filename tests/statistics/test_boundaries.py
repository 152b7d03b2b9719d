"""The counting rules at their edges: Shanghai day boundaries at month, quarter and year ends,
certificates expiring, refunds in a later month, and who counts under which indicator."""

from __future__ import annotations

from datetime import date
from typing import Any

import httpx
from fastapi import FastAPI

from tests.fixtures.factories import auth
from tests.fixtures.orders import API
from tests.statistics.conftest import buy, by_key, refund, shanghai, stats


async def test_payments_at_2359_and_0001_fall_in_their_own_month_quarter_and_year(
    client: httpx.AsyncClient, app: FastAPI, world: dict[str, Any]
) -> None:
    official = world["official"]
    await buy(client, app, world, "chunan", [("apples", 1)], shanghai(date(2025, 3, 31), 23, 59))
    await buy(client, app, world, "chunan", [("apples", 2)], shanghai(date(2025, 4, 1), 0, 1))
    await buy(client, app, world, "chunan", [("apples", 3)], shanghai(date(2025, 12, 31), 23, 59))
    await buy(client, app, world, "chunan", [("apples", 4)], shanghai(date(2026, 1, 1), 0, 1))

    months = by_key(
        await stats(
            client, app, official, **{"from": "2025-03-01", "to": "2025-04-30", "group_by": "month"}
        )
    )
    assert months["2025-03"]["amount_fen"] == 4500
    assert months["2025-04"]["amount_fen"] == 9000
    assert months["2025-03"]["label"] == "2025年3月"
    quarters = by_key(
        await stats(
            client,
            app,
            official,
            **{"from": "2025-01-01", "to": "2025-12-31", "group_by": "quarter"},
        )
    )
    assert quarters["2025-Q1"]["units"] == 1
    assert quarters["2025-Q2"]["units"] == 2
    assert quarters["2025-Q3"]["units"] == 0
    assert quarters["2025-Q4"]["units"] == 3
    years = by_key(
        await stats(
            client, app, official, **{"from": "2025-01-01", "to": "2026-12-31", "group_by": "year"}
        )
    )
    assert years["2025"]["units"] == 6
    assert years["2026"]["units"] == 4
    assert years["2025"]["order_count"] == 3
    assert years["2025"]["buyer_count"] == 1
    # A range cut at the day: 31 March alone holds only the 23:59 payment.
    day = await stats(
        client, app, official, **{"from": "2025-03-31", "to": "2025-03-31", "group_by": "merchant"}
    )
    assert day["totals"] == {"amount_fen": 4500, "order_count": 1, "units": 1, "buyer_count": 1}


async def test_a_certificate_must_cover_the_payment_day(
    client: httpx.AsyncClient, app: FastAPI, world: dict[str, Any]
) -> None:
    # The `expiring` product's certificate runs to 30 June 2025 inclusive.
    await buy(client, app, world, "chunan", [("expiring", 1)], shanghai(date(2025, 6, 30), 23, 59))
    await buy(client, app, world, "chunan", [("expiring", 2)], shanghai(date(2025, 7, 1), 0, 1))
    await buy(
        client, app, world, "chunan", [("uncertified", 5)], shanghai(date(2025, 6, 30), 12, 0)
    )
    report = await stats(
        client,
        app,
        world["official"],
        **{"from": "2025-06-01", "to": "2025-07-31", "group_by": "month"},
    )
    rows = by_key(report)
    assert rows["2025-06"]["units"] == 1
    assert rows["2025-07"]["units"] == 0
    assert report["totals"]["amount_fen"] == 3000


async def test_a_refund_in_a_later_month_reduces_the_month_of_the_payment(
    client: httpx.AsyncClient, app: FastAPI, world: dict[str, Any]
) -> None:
    order = await buy(
        client,
        app,
        world,
        "chunan",
        [("apples", 3), ("matsutake", 1)],
        shanghai(date(2025, 5, 20), 10, 0),
    )
    apples_line = next(i for i, ln in enumerate(_lines(order)) if ln["unit_price_fen"] == 4500)
    await refund(
        client, app, world, "chunan", order, apples_line, 2, shanghai(date(2025, 6, 3), 9, 0)
    )
    rows = by_key(
        await stats(
            client,
            app,
            world["official"],
            **{"from": "2025-05-01", "to": "2025-06-30", "group_by": "month"},
        )
    )
    assert rows["2025-05"]["amount_fen"] == 4500 + 21000
    assert rows["2025-05"]["units"] == 2
    assert rows["2025-06"]["amount_fen"] == 0
    merchants = by_key(
        await stats(
            client,
            app,
            world["official"],
            **{"from": "2025-05-01", "to": "2025-05-31", "group_by": "merchant"},
        )
    )
    assert merchants[str(world["m1"].id)]["amount_fen"] == 4500
    assert merchants[str(world["m1"].id)]["linked_households"] == 120
    # Refund the last apple: the apple merchant's row keeps no order and no buyer.
    await refund(
        client, app, world, "chunan", order, apples_line, 1, shanghai(date(2025, 7, 1), 9, 0)
    )
    merchants = by_key(
        await stats(
            client,
            app,
            world["official"],
            **{"from": "2025-05-01", "to": "2025-05-31", "group_by": "merchant"},
        )
    )
    assert str(world["m1"].id) not in merchants
    assert merchants[str(world["m2"].id)]["order_count"] == 1


async def test_indicators_by_the_buyers_region_and_types_by_the_buyer(
    client: httpx.AsyncClient, app: FastAPI, world: dict[str, Any]
) -> None:
    when = shanghai(date(2025, 9, 10), 15, 0)
    await buy(client, app, world, "chunan", [("apples", 1)], when)
    await buy(client, app, world, "hangzhou", [("matsutake", 1)], when)
    await buy(client, app, world, "union", [("apples", 10), ("matsutake", 2)], when)
    await buy(client, app, world, "chunan", [("eastern", 3)], when)  # an eastern merchant: never
    params = {"from": "2025-09-01", "to": "2025-09-30"}
    indicators = await stats(client, app, world["official"], group_by="indicator", **params)
    rows = by_key(indicators)
    assert rows["purchased"]["amount_fen"] == 4500 + 45000 + 42000
    assert rows["purchased"]["label"] == "采购"
    assert rows["purchased"]["buyer_count"] == 2
    assert rows["helped_sold"]["amount_fen"] == 21000
    assert indicators["totals"]["order_count"] == 3
    types = by_key(await stats(client, app, world["official"], group_by="buyer_type", **params))
    assert types["union"]["amount_fen"] == 87000
    assert types["union"]["label"] == "工会"
    regions = by_key(await stats(client, app, world["official"], group_by="buyer_region", **params))
    assert set(regions) == {"330127", "330106"}
    # A buyer in two merchants' rows counts once in the totals.
    merchants = await stats(client, app, world["official"], group_by="merchant", **params)
    assert sum(r["buyer_count"] for r in merchants["rows"]) == 4
    assert merchants["totals"]["buyer_count"] == 3
    townships = by_key(await stats(client, app, world["official"], group_by="township", **params))
    assert townships["竹巴龙乡"]["linked_households"] == 45


async def test_only_officials_and_admins_read_the_figures(
    client: httpx.AsyncClient, app: FastAPI, world: dict[str, Any]
) -> None:
    for who in ("chunan", "owner1"):
        r = await client.get(f"{API}/stats/assistance", headers=auth(app, world[who]))
        assert r.status_code == 403
        assert r.json()["code"] == "forbidden"
    assert (await client.get(f"{API}/stats/assistance")).status_code == 401
    r = await client.get(f"{API}/stats/assistance", headers=auth(app, world["admin"]))
    assert r.status_code == 200
    assert r.json()["from"] == f"{date.today().year}-01-01"


def _lines(order: dict[str, Any]) -> list[dict[str, Any]]:
    return [ln for mo in order["merchant_orders"] for ln in mo["lines"]]
