"""Exports (CSV, XLSX read back), targets and progress, bad input, and `shanhai stats`."""

from __future__ import annotations

import io
from datetime import date
from typing import Any

import httpx
import openpyxl
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import AuditEvent, StatsPeriod
from app.statistics.recount import rebuild, verify
from tests.fixtures.factories import auth
from tests.fixtures.orders import API
from tests.statistics.conftest import buy, refund, shanghai, stats

WEST, EAST = ["513335"], ["330127"]


async def _some_sales(client: httpx.AsyncClient, app: FastAPI, world: dict[str, Any]) -> None:
    order = await buy(
        client,
        app,
        world,
        "union",
        [("apples", 7), ("matsutake", 3)],
        shanghai(date(2025, 9, 1), 9, 0),
    )
    await buy(client, app, world, "hangzhou", [("matsutake", 1)], shanghai(date(2025, 8, 2), 20, 0))
    await buy(client, app, world, "chunan", [("apples", 2)], shanghai(date(2025, 2, 3), 8, 0))
    await refund(client, app, world, "union", order, 0, 1, shanghai(date(2025, 10, 1), 9, 0))


async def test_the_xlsx_sums_to_the_api_totals_and_is_an_audit_event(
    client: httpx.AsyncClient, app: FastAPI, world: dict[str, Any], session: AsyncSession
) -> None:
    await _some_sales(client, app, world)
    params = {"from": "2025-01-01", "to": "2025-12-31", "group_by": "merchant"}
    report = await stats(client, app, world["official"], **params)
    r = await client.get(
        f"{API}/stats/assistance/export",
        params={**params, "format": "xlsx"},
        headers=auth(app, world["official"]),
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-disposition"].startswith("attachment;")
    sheet = openpyxl.load_workbook(io.BytesIO(r.content)).active
    assert sheet is not None
    values = [list(row) for row in sheet.iter_rows(values_only=True)]
    header_at = next(i for i, row in enumerate(values) if row[0] == "代码")
    assert values[header_at][2:4] == ["金额（元）", "金额（万元）"]
    body = values[header_at + 1 : -1]
    totals = values[-1]
    assert totals[0] == "合计"
    assert round(sum(row[2] for row in body) * 100) == report["totals"]["amount_fen"]
    assert round(totals[2] * 100) == report["totals"]["amount_fen"]
    assert totals[4] == report["totals"]["order_count"]
    assert totals[6] == report["totals"]["buyer_count"]
    assert sum(row[7] for row in body) == 120 + 45  # linked households of both merchants
    notes = " ".join(str(row[0]) for row in values[:header_at])
    assert "2025-01-01" in notes and "统计口径" in notes and "生成时间" in notes
    actions = list(await session.scalars(select(AuditEvent.action)))
    assert "stats.exported" in actions


async def test_the_csv_has_a_bom_chinese_headers_and_a_totals_row(
    client: httpx.AsyncClient, app: FastAPI, world: dict[str, Any]
) -> None:
    await _some_sales(client, app, world)
    r = await client.get(
        f"{API}/stats/assistance/export",
        params={"from": "2025-01-01", "to": "2025-12-31", "group_by": "month", "format": "csv"},
        headers=auth(app, world["admin"]),
    )
    assert r.status_code == 200
    assert r.content.startswith(b"\xef\xbb\xbf")
    lines = r.content.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("代码,月份,金额（元）,金额（万元）")
    assert len(lines) == 1 + 12 + 1
    assert lines[-1].startswith("合计,")


@pytest.mark.parametrize("who", ["chunan", "owner1"])
async def test_buyers_and_merchants_may_not_export_or_set_targets(
    client: httpx.AsyncClient, app: FastAPI, world: dict[str, Any], who: str
) -> None:
    headers = auth(app, world[who])
    r = await client.get(f"{API}/stats/assistance/export", headers=headers)
    assert r.status_code == 403
    r = await client.put(
        f"{API}/stats/targets/2025",
        json={"purchased_fen": 1, "helped_sold_fen": 1},
        headers=headers,
    )
    assert r.status_code == 403
    assert (
        await client.get(f"{API}/stats/assistance/progress", headers=headers)
    ).status_code == 403


async def test_targets_and_progress(
    client: httpx.AsyncClient, app: FastAPI, world: dict[str, Any]
) -> None:
    await _some_sales(client, app, world)
    headers = auth(app, world["official"])
    r = await client.get(f"{API}/stats/assistance/progress", params={"year": 2025}, headers=headers)
    assert r.status_code == 200
    assert all(i["target_fen"] is None and i["ratio"] is None for i in r.json()["indicators"])
    r = await client.put(
        f"{API}/stats/targets/2025",
        json={"purchased_fen": 1_000_000, "helped_sold_fen": 84_000},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    r = await client.put(
        f"{API}/stats/targets/2025",
        json={"purchased_fen": 200_000, "helped_sold_fen": 84_000},
        headers=headers,
    )
    assert r.json()["purchased_fen"] == 200_000
    r = await client.get(f"{API}/stats/assistance/progress", params={"year": 2025}, headers=headers)
    got = {i["indicator"]: i for i in r.json()["indicators"]}
    # purchased: union 6 apples + 3 matsutake, Chun'an 2 apples; helped_sold: 1 matsutake.
    assert got["purchased"]["actual_fen"] == 8 * 4500 + 3 * 21000
    assert got["purchased"]["ratio"] == round(99_000 / 200_000, 4)
    assert got["helped_sold"]["actual_fen"] == 21000
    assert got["helped_sold"]["ratio"] == 0.25


@pytest.mark.parametrize(
    ("path", "params", "code"),
    [
        ("", {"from": "2025-03-01", "to": "2025-02-01"}, "invalid_date_range"),
        ("", {"from": "2025-3-1"}, "invalid_date"),
        ("", {"to": "2025-02-30"}, "invalid_date"),
        ("", {"from": "2010-01-01", "to": "2025-01-01"}, "date_range_too_long"),
        ("", {"group_by": "county"}, "invalid_group_by"),
        ("/export", {"format": "pdf"}, "invalid_export_format"),
        ("/progress", {"year": "1999"}, "invalid_year"),
        ("/progress", {"year": "abc"}, "validation_error"),
    ],
)
async def test_bad_queries_are_problems(
    client: httpx.AsyncClient,
    app: FastAPI,
    world: dict[str, Any],
    path: str,
    params: dict[str, str],
    code: str,
) -> None:
    r = await client.get(
        f"{API}/stats/assistance{path}", params=params, headers=auth(app, world["official"])
    )
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == code


@pytest.mark.parametrize(
    ("year", "body", "code"),
    [
        (2025, {"purchased_fen": -1, "helped_sold_fen": 0}, "validation_error"),
        (2025, {"purchased_fen": 1.5, "helped_sold_fen": 0}, "validation_error"),
        (1900, {"purchased_fen": 1, "helped_sold_fen": 0}, "invalid_year"),
    ],
)
async def test_bad_targets_are_refused(
    client: httpx.AsyncClient,
    app: FastAPI,
    world: dict[str, Any],
    year: int,
    body: dict[str, Any],
    code: str,
) -> None:
    r = await client.put(
        f"{API}/stats/targets/{year}", json=body, headers=auth(app, world["admin"])
    )
    assert r.status_code == 422
    assert r.json()["code"] == code


async def test_verify_finds_a_tampered_aggregate_and_rebuild_repairs_it(
    client: httpx.AsyncClient, app: FastAPI, world: dict[str, Any], session: AsyncSession
) -> None:
    await _some_sales(client, app, world)
    before = await stats(
        client,
        app,
        world["official"],
        **{"from": "2025-01-01", "to": "2025-12-31", "group_by": "township"},
    )
    assert await verify(session, EAST, WEST) == []
    await session.execute(
        update(StatsPeriod)
        .where(StatsPeriod.dimension == "merchant", StatsPeriod.grain == "year")
        .values(amount_fen=StatsPeriod.amount_fen + 1, buyer_count=StatsPeriod.buyer_count + 1)
    )
    await session.commit()
    assert len(await verify(session, EAST, WEST)) >= 2
    await rebuild(session, EAST, WEST)
    await session.commit()
    assert await verify(session, EAST, WEST) == []
    after = await stats(
        client,
        app,
        world["official"],
        **{"from": "2025-01-01", "to": "2025-12-31", "group_by": "township"},
    )
    assert after == before
