"""The scheduled jobs: unpaid orders past their deadline are cancelled, shipped parts complete
after AUTO_COMPLETE_DAYS; running them again changes nothing more."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select, text, update

from app.cli import main
from app.core.config import get_settings
from app.core.db import create_engine
from app.core.time import utcnow
from app.models import MerchantOrder, Order, Role
from tests.fixtures.factories import auth, make_merchant, make_product, make_user
from tests.fixtures.live import postgresql_only
from tests.fixtures.orders import (
    API,
    audit_actions,
    counts,
    get_order,
    open_payment,
    part_of,
    pay_by_bank,
    place,
    run_jobs,
    set_order_times,
    set_shipped_at,
    ship,
    stock_of,
)


@pytest.fixture
async def cast(session):
    merchant, owner = await make_merchant(session)
    product = await make_product(session, merchant, price_fen=4500, stock=10)
    buyer = await make_user(session)
    admin = await make_user(session, role=Role.admin)
    return {
        "merchant": merchant,
        "owner": owner,
        "product": product,
        "buyer": buyer,
        "admin": admin,
    }


async def _expire(session, order):
    await set_order_times(session, order["id"], expires_at=utcnow() - timedelta(minutes=1))


async def test_an_unpaid_order_past_its_deadline_is_cancelled(client, app, session, cast):
    expired = await place(client, app, cast["buyer"], [(cast["product"], 3)])
    payment = await open_payment(client, app, cast["buyer"], expired)
    fresh = await place(client, app, cast["buyer"], [(cast["product"], 2)])
    await _expire(session, expired)
    assert await stock_of(session, cast["product"]) == 5

    done = await run_jobs(app)
    assert done["payment_timeouts"] == 1
    order = await get_order(client, app, cast["buyer"], expired["id"])
    assert order["status"] == "cancelled"
    assert order["cancel_reason"] == "payment_timeout"
    assert order["cancelled_at"] is not None
    assert [(p["id"], p["status"]) for p in order["payments"]] == [
        (payment["payment_id"], "cancelled")
    ]
    assert {mo["status"] for mo in order["merchant_orders"]} == {"cancelled"}
    assert order["refunds"] == []
    assert await stock_of(session, cast["product"]) == 8
    events = await audit_actions(client, app, cast["admin"], "order.cancelled", expired["id"])
    assert [(e["actor_id"], e["detail"]["reason"]) for e in events] == [(None, "payment_timeout")]

    # The order still inside its deadline is untouched.
    untouched = await get_order(client, app, cast["buyer"], fresh["id"])
    assert untouched["status"] == "pending_payment"

    # Running again changes nothing more.
    before = await counts(session)
    done = await run_jobs(app)
    assert done["payment_timeouts"] == 0
    assert await stock_of(session, cast["product"]) == 8
    assert await counts(session) == before
    assert await get_order(client, app, cast["buyer"], expired["id"]) == order
    assert (
        len(await audit_actions(client, app, cast["admin"], "order.cancelled", expired["id"])) == 1
    )


async def test_a_paid_order_past_its_deadline_is_left_alone(client, app, session, cast):
    order = await place(client, app, cast["buyer"], [(cast["product"], 1)])
    await pay_by_bank(client, app, cast["buyer"], cast["admin"], order)
    await _expire(session, order)
    done = await run_jobs(app)
    assert done["payment_timeouts"] == 0
    assert (await get_order(client, app, cast["buyer"], order["id"]))["status"] == "paid"
    assert await stock_of(session, cast["product"]) == 9


async def test_two_job_runs_at_once_cancel_an_order_once(client, app, session, cast):
    order = await place(client, app, cast["buyer"], [(cast["product"], 4)])
    await _expire(session, order)
    first, second = await asyncio.gather(run_jobs(app), run_jobs(app))
    assert first["payment_timeouts"] + second["payment_timeouts"] == 1
    assert await stock_of(session, cast["product"]) == 10
    stored = await get_order(client, app, cast["buyer"], order["id"])
    assert stored["status"] == "cancelled"


async def test_a_shipped_part_completes_after_auto_complete_days(
    client, app, session, settings, cast
):
    order = await place(client, app, cast["buyer"], [(cast["product"], 1)])
    await pay_by_bank(client, app, cast["buyer"], cast["admin"], order)
    mo_id = order["merchant_orders"][0]["id"]
    await ship(client, app, cast["owner"], mo_id)

    # With the default 10 days, a part shipped just now is left alone.
    done = await run_jobs(app)
    assert done["auto_complete"] == 0
    assert (await get_order(client, app, cast["buyer"], order["id"]))["status"] == "paid"

    # The setting in force when the job runs decides: 0 means at once.
    done = await run_jobs(app, settings.model_copy(update={"auto_complete_days": 0}))
    assert done["auto_complete"] == 1
    stored = await get_order(client, app, cast["buyer"], order["id"])
    assert stored["merchant_orders"][0]["status"] == "completed"
    assert stored["merchant_orders"][0]["completed_at"] is not None
    assert stored["status"] == "completed"
    assert stored["completed_at"] is not None

    done = await run_jobs(app, settings.model_copy(update={"auto_complete_days": 0}))
    assert done["auto_complete"] == 0
    r = await client.post(
        f"{API}/merchant-orders/{mo_id}/confirm-receipt", headers=auth(app, cast["buyer"])
    )
    assert r.status_code == 409


async def test_a_part_shipped_long_enough_ago_completes_with_the_default(
    client, app, session, cast
):
    m2, owner2 = await make_merchant(session)
    other = await make_product(session, m2, price_fen=1000, stock=10)
    order = await place(client, app, cast["buyer"], [(cast["product"], 1), (other, 1)])
    await pay_by_bank(client, app, cast["buyer"], cast["admin"], order)
    old, recent = part_of(order, cast["merchant"])["id"], part_of(order, m2)["id"]
    await ship(client, app, cast["owner"], old)
    await ship(client, app, owner2, recent)
    await set_shipped_at(session, old, utcnow() - timedelta(days=10, minutes=1))
    await set_shipped_at(session, recent, utcnow() - timedelta(days=9, hours=23))

    done = await run_jobs(app)
    assert done["auto_complete"] == 1
    stored = await get_order(client, app, cast["buyer"], order["id"])
    statuses = {mo["id"]: mo["status"] for mo in stored["merchant_orders"]}
    assert statuses == {old: "completed", recent: "shipped"}
    assert stored["status"] == "paid"  # not every part is done yet


async def test_the_command_line_runs_the_jobs_once(
    client, app, session, database_url, tmp_path, monkeypatch, capsys, cast
):
    order = await place(client, app, cast["buyer"], [(cast["product"], 2)])
    await _expire(session, order)
    monkeypatch.chdir(tmp_path)  # no stray .env from the working tree
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("SECRET_KEY", "cli-test-secret-key-0123456789abcdef")
    get_settings.cache_clear()
    try:
        assert await asyncio.to_thread(main, ["jobs", "run-once"]) == 0
    finally:
        get_settings.cache_clear()
    assert "payment_timeouts=1" in capsys.readouterr().out
    stored = await get_order(client, app, cast["buyer"], order["id"])
    assert (stored["status"], stored["cancel_reason"]) == ("cancelled", "payment_timeout")
    assert await stock_of(session, cast["product"]) == 10


@postgresql_only("row locks between connections (SQLite serialises writers)")
async def test_the_completion_job_never_deadlocks_with_a_request_on_the_same_order(
    client, app, session, settings, database_url, cast
):
    """A request locks the order, then writes its merchant order (as confirm-receipt does). The
    job, meanwhile, must not hold the merchant order's row while it waits for the order: it
    skips the order that is busy and takes it on its next run."""
    order = await place(client, app, cast["buyer"], [(cast["product"], 1)])
    await pay_by_bank(client, app, cast["buyer"], cast["admin"], order)
    mo_id = uuid.UUID(order["merchant_orders"][0]["id"])
    await ship(client, app, cast["owner"], str(mo_id))
    now_settings = settings.model_copy(update={"auto_complete_days": 0})

    engine = create_engine(database_url)
    try:
        async with engine.connect() as request:
            await request.execute(text("SET LOCAL lock_timeout = '5s'"))
            await request.execute(
                select(Order.id).where(Order.id == uuid.UUID(order["id"])).with_for_update()
            )
            # The job does not wait for the busy order (holding its merchant order's row,
            # which the request is about to write: a deadlock); it skips it.
            done = await asyncio.wait_for(run_jobs(app, now_settings), 3)
            await request.execute(
                update(MerchantOrder).where(MerchantOrder.id == mo_id).values(carrier="顺丰速运")
            )
            await request.commit()
    finally:
        await engine.dispose()
    assert done["auto_complete"] == 0  # left for the next run

    assert (await run_jobs(app, now_settings))["auto_complete"] == 1
    stored = await get_order(client, app, cast["buyer"], order["id"])
    assert stored["status"] == "completed"
