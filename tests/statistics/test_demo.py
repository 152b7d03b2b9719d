"""The demo year gives officials a believable picture, and its aggregates verify clean."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.time import shanghai_today
from app.models import Role, User
from app.seed.demo import seed_demo
from app.statistics.recount import verify
from tests.fixtures.factories import auth
from tests.fixtures.orders import API


async def test_demo_statistics_verify_clean_with_targets_and_seasons(
    client: httpx.AsyncClient, app: FastAPI, session: AsyncSession, settings: Settings
) -> None:
    await seed_demo(session, settings)
    await session.commit()
    assert await verify(session, settings.east_region_codes, settings.west_region_codes) == []
    official = await session.scalar(select(User).where(User.role == Role.admin))
    assert official is not None
    headers = auth(app, official)
    today = shanghai_today()
    r = await client.get(f"{API}/stats/assistance/progress", headers=headers)
    assert all(i["target_fen"] and i["ratio"] is not None for i in r.json()["indicators"])
    start = today.replace(year=today.year - 1).isoformat()
    r = await client.get(
        f"{API}/stats/assistance",
        params={"from": start, "to": today.isoformat(), "group_by": "category"},
        headers=headers,
    )
    assert r.status_code == 200
    assert r.json()["totals"]["amount_fen"] > 0
    # Matsutake sell in summer: July–September outsell the rest of the year's months.
    months = {}
    for year in (today.year - 1, today.year):
        r = await client.get(
            f"{API}/stats/assistance",
            params={"from": f"{year}-01-01", "to": f"{year}-12-31", "group_by": "month"},
            headers=headers,
        )
        months.update({row["key"]: row["amount_fen"] for row in r.json()["rows"]})
    summer = [v for k, v in months.items() if k[5:] in ("07", "08", "09") and v]
    assert summer, months
