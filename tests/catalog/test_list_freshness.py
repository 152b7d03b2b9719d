"""The public list is served from rendered pages kept per API process, and is never stale: every
change to what a page shows (stock, price, status, a merchant leaving the storefront) is in the
next list answered by any process sharing the database. And with `DATABASE_REPLICA_URL`, the
list comes from the replica."""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.db import create_engine
from app.core.migrations import upgrade
from app.core.time import utcnow
from app.main import create_app
from app.models import Product, Role, StatsTarget
from tests.conftest import _pg, _pg_admin_dsn, clean_and_dispose
from tests.fixtures.catalog import product_body
from tests.fixtures.factories import auth, make_merchant, make_product, make_user
from tests.fixtures.orders import idem, place, run_jobs, set_order_times
from tests.fixtures.servers import serving

LIST = "/api/v1/products?limit=100&category=fruit"


async def _listed(client: httpx.AsyncClient) -> dict[str, tuple[int, int]]:
    """{product id: (stock, price_fen)} of the fruit list."""
    r = await client.get(LIST)
    assert r.status_code == 200, r.text
    return {i["id"]: (i["stock"], i["price_fen"]) for i in r.json()["items"]}


@pytest.fixture
async def second(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """Another API instance on the same database, with its own page cache (as another process
    would have)."""
    other = create_app(settings)
    transport = httpx.ASGITransport(app=other, client=("203.0.113.8", 50000))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield other, c
    finally:
        await other.state.db.dispose()


async def test_every_change_is_listed_at_once_by_every_instance(app, client, session, second):
    other, other_client = second
    merchant, owner = await make_merchant(session)
    admin = await make_user(session, role=Role.admin)
    buyer = await make_user(session)
    product = await make_product(session, merchant, stock=10, price_fen=1000)
    pid = str(product.id)
    clients = (client, other_client)

    async def both_list(expected: dict[str, tuple[int, int]]) -> None:
        for c in clients:
            assert await _listed(c) == expected
            assert await _listed(c) == expected  # the second answer comes from the kept page

    await both_list({pid: (10, 1000)})
    hits = app.state.catalog_pages.cache.hits, other.state.catalog_pages.cache.hits
    assert hits[0] >= 1 and hits[1] >= 1  # the pages are being kept and served

    # Each change goes through the first instance; both must list it at once.
    r = await client.post(
        f"/api/v1/products/{pid}/stock-adjustments",
        json={"delta": 5, "reason": "到货"},
        headers=auth(app, owner),
    )
    assert r.status_code == 201, r.text
    await both_list({pid: (15, 1000)})

    r = await client.patch(
        f"/api/v1/products/{pid}", json={"price_fen": 1200}, headers=auth(app, owner)
    )
    assert r.status_code == 200, r.text
    await both_list({pid: (15, 1200)})

    order = await place(client, app, buyer, [(product, 3)])  # checkout reserves stock
    await both_list({pid: (12, 1200)})
    r = await client.post(
        f"/api/v1/orders/{order['id']}/cancel", headers={**auth(app, buyer), **idem()}
    )
    assert r.status_code == 200, r.text
    await both_list({pid: (15, 1200)})

    order = await place(client, app, buyer, [(product, 2)])
    await both_list({pid: (13, 1200)})
    await set_order_times(session, order["id"], expires_at=utcnow() - timedelta(minutes=1))
    await run_jobs(app)  # the unpaid order expires and its stock returns
    await both_list({pid: (15, 1200)})

    for action, expected in (("deactivate", {}), ("activate", {pid: (15, 1200)})):
        r = await client.post(f"/api/v1/products/{pid}/{action}", headers=auth(app, owner))
        assert r.status_code == 200, r.text
        await both_list(expected)

    r = await client.post(
        f"/api/v1/merchants/{merchant.id}/suspend",
        json={"reason": "资质复核"},
        headers=auth(app, admin),
    )
    assert r.status_code == 200, r.text
    await both_list({})
    r = await client.post(f"/api/v1/merchants/{merchant.id}/reinstate", headers=auth(app, admin))
    assert r.status_code == 200, r.text
    await both_list({pid: (15, 1200)})

    r = await client.post(
        "/api/v1/products",
        json=product_body(category="fruit", price_fen=800, stock=7),
        headers=auth(app, owner),
    )
    assert r.status_code == 201, r.text
    new = r.json()["id"]
    await both_list({pid: (15, 1200)})  # pending review: not on sale yet
    r = await client.post(f"/api/v1/products/{new}/approve", headers=auth(app, admin))
    assert r.status_code == 200, r.text
    await both_list({pid: (15, 1200), new: (7, 800)})


def _get(url: str) -> httpx.Response:
    return httpx.get(url, timeout=10)


async def test_another_process_lists_a_change_at_once(app, client, session, database_url):
    merchant, owner = await make_merchant(session)
    product = await make_product(session, merchant, stock=10, price_fen=1000)
    pid = str(product.id)
    with serving(database_url) as server:
        url = server.base + LIST
        for _ in range(2):  # the second answer is the process's kept page
            r = await asyncio.to_thread(_get, url)
            assert r.status_code == 200, r.text
            assert [(i["id"], i["stock"]) for i in r.json()["items"]] == [(pid, 10)]
        r = await client.post(
            f"/api/v1/products/{pid}/stock-adjustments",
            json={"delta": -4, "reason": "损耗"},
            headers=auth(app, owner),
        )
        assert r.status_code == 201, r.text
        r = await asyncio.to_thread(_get, url)
        assert [(i["id"], i["stock"]) for i in r.json()["items"]] == [(pid, 6)]
        r = await client.patch(
            f"/api/v1/products/{pid}", json={"price_fen": 990}, headers=auth(app, owner)
        )
        assert r.status_code == 200, r.text
        r = await asyncio.to_thread(_get, url)
        assert [(i["id"], i["price_fen"]) for i in r.json()["items"]] == [(pid, 990)]


@pytest.fixture
def replica_url(database_url: str) -> Iterator[str]:
    """A second migrated database on the same server (or SQLite file), standing in for a read
    replica whose content differs from the primary's."""
    if database_url.startswith("postgresql"):
        name = f"shanhai_replica_{uuid.uuid4().hex[:12]}"
        admin = _pg_admin_dsn(database_url)
        asyncio.run(_pg(admin, f'CREATE DATABASE "{name}"'))
        url = make_url(database_url).set(database=name).render_as_string(hide_password=False)
        try:
            upgrade(url)
            yield url
        finally:
            asyncio.run(_pg(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite+aiosqlite:///{Path(tmp) / 'replica.db'}"
            upgrade(url)
            yield url


async def test_the_list_reads_the_replica_and_writes_stay_on_the_primary(
    settings, session, replica_url
):
    app = create_app(settings.model_copy(update={"database_replica_url": replica_url}))
    engine = create_engine(replica_url, for_writes=False)
    try:
        async with AsyncSession(engine, expire_on_commit=False) as replica:
            merchant, _ = await make_merchant(replica)
            on_replica = await make_product(replica, merchant, name="副本上的苹果")
            replica.add(StatsTarget(year=2026, purchased_fen=123_456, helped_sold_fen=654_321))
            await replica.commit()
        merchant, owner = await make_merchant(session)
        on_primary = await make_product(session, merchant, name="主库上的苹果", stock=5)
        official = await make_user(session, role=Role.official)  # signed in on the primary

        transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            r = await c.get(LIST)
            assert r.status_code == 200, r.text
            assert [i["name"] for i in r.json()["items"]] == ["副本上的苹果"]
            assert [i["id"] for i in r.json()["items"]] == [str(on_replica.id)]
            r = await c.get("/api/v1/categories")
            assert r.status_code == 200 and len(r.json()) == 7
            r = await c.get(
                "/api/v1/stats/assistance/progress?year=2026", headers=auth(app, official)
            )
            assert r.status_code == 200, r.text
            targets = {i["indicator"]: i["target_fen"] for i in r.json()["indicators"]}
            assert sorted(targets.values()) == [123_456, 654_321]  # the replica's targets

            # Reads that must see the caller's own writes, and the writes, use the primary.
            r = await c.get(f"/api/v1/products/{on_primary.id}")
            assert r.status_code == 200 and r.json()["name"] == "主库上的苹果"
            r = await c.post(
                f"/api/v1/products/{on_primary.id}/stock-adjustments",
                json={"delta": 1, "reason": "到货"},
                headers=auth(app, owner),
            )
            assert r.status_code == 201 and r.json()["stock"] == 6
            stock = await session.scalar(
                Product.__table__.select()
                .with_only_columns(Product.stock)
                .where(Product.id == on_primary.id)
            )
            assert stock == 6
            r = await c.get(LIST)
            assert [i["id"] for i in r.json()["items"]] == [str(on_replica.id)]
    finally:
        await engine.dispose()
        await clean_and_dispose(app)


async def test_concurrent_requests_share_version_reads_but_never_an_older_one(app, client, session):
    merchant, owner = await make_merchant(session)
    product = await make_product(session, merchant, stock=10, price_fen=1000)
    pid = str(product.id)
    versions = app.state.catalog_pages.versions

    before = versions.reads
    answers = await asyncio.gather(*(_listed(client) for _ in range(30)))
    assert answers == [{pid: (10, 1000)}] * 30
    assert versions.reads - before < 30  # requests waiting together shared a read

    # Requests on their way while the stock changes may see either stock; every request sent
    # after the change was answered must see it.
    async def change() -> None:
        r = await client.post(
            f"/api/v1/products/{pid}/stock-adjustments",
            json={"delta": 5, "reason": "到货"},
            headers=auth(app, owner),
        )
        assert r.status_code == 201, r.text

    during = await asyncio.gather(change(), *(_listed(client) for _ in range(20)))
    assert {tuple(page[pid]) for page in during[1:]} <= {(10, 1000), (15, 1000)}
    after = await asyncio.gather(*(_listed(client) for _ in range(30)))
    assert after == [{pid: (15, 1000)}] * 30
