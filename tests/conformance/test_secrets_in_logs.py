"""No log line, of any logger (the access log and uvicorn's included), holds a password, a
password hash, an access token, a full bank account number or a phone number: not in the normal
course of sign-up, sign-in, onboarding, checkout and payment, and not when a statement fails in
the database (whose error would otherwise quote the statement's parameters)."""

from __future__ import annotations

import io
import logging
import uuid
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select, text

from app.core.logging import JsonFormatter
from app.models import Merchant, Role, User
from tests.conformance.helpers import API, problem
from tests.fixtures.factories import auth, make_product, make_user
from tests.fixtures.merchants import application
from tests.fixtures.orders import idem

PASSWORD = "Secret-Pass-4711"
WRONG_PASSWORD = "Wrong-Pass-0815"
PHONE = "13912345678"
CONTACT_PHONE = "13687654321"
SHIPPING_PHONE = "13511112222"
LATE_PHONE = "13733334444"
ACCOUNT_NO = "6228480000000004242"


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """Every record of every logger, at DEBUG, formatted as production formats it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


_SQLITE_FORCED = [
    "CREATE TABLE forced_gone (v TEXT)",
    "CREATE TRIGGER forced_gone_trg BEFORE INSERT ON users "
    "BEGIN INSERT INTO forced_gone VALUES (NEW.phone); END",
    "DROP TABLE forced_gone",
]
_PG_FORCED = [
    "CREATE TABLE forced_gone (v text)",
    "CREATE FUNCTION forced_gone_fn() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN INSERT INTO forced_gone VALUES (NEW.phone); RETURN NEW; END $$",
    "CREATE TRIGGER forced_gone_trg BEFORE INSERT ON users "
    "FOR EACH ROW EXECUTE FUNCTION forced_gone_fn()",
    "DROP TABLE forced_gone",
]


async def _run(session, statements):
    for statement in statements:
        await session.execute(text(statement))
    await session.commit()


async def test_a_whole_session_logs_no_secret(app, session, captured):
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    client = httpx.AsyncClient(transport=transport, base_url="http://testserver")
    sqlite = app.state.db.serialises_writes
    admin = await make_user(session, role=Role.admin)
    secrets = [PASSWORD, WRONG_PASSWORD, ACCOUNT_NO, auth(app, admin)["Authorization"][7:]]
    for phone in (PHONE, CONTACT_PHONE, SHIPPING_PHONE, LATE_PHONE):
        secrets += [phone, f"+86{phone}"]
    async with client:
        # Sign-up and sign-in, once with a wrong password.
        r = await client.post(
            f"{API}/auth/register",
            json={
                "email": "seller@example.cn",
                "password": PASSWORD,
                "display_name": "卓玛",
                "phone": PHONE,
                "region_code": "513335",
            },
        )
        assert r.status_code == 201, r.text
        form = {"username": "seller@example.cn", "password": WRONG_PASSWORD}
        assert (await client.post(f"{API}/auth/token", data=form)).status_code == 401
        form["password"] = PASSWORD
        r = await client.post(f"{API}/auth/token", data=form)
        assert r.status_code == 200, r.text
        token = r.json()["access_token"]
        secrets.append(token)
        seller = {"Authorization": f"Bearer {token}"}
        user = await session.scalar(select(User).where(User.email == "seller@example.cn"))
        await session.commit()
        assert user is not None
        secrets.append(user.password_hash)

        # Onboarding with a bank account and a contact phone; the admin approves.
        body = application(contact_phone=CONTACT_PHONE)
        body["bank_account"]["account_no"] = ACCOUNT_NO
        r = await client.post(f"{API}/merchants", json=body, headers=seller)
        assert r.status_code == 201, r.text
        merchant_id = r.json()["id"]
        r = await client.post(f"{API}/merchants/{merchant_id}/approve", headers=auth(app, admin))
        assert r.status_code == 200, r.text

        # A buyer checks out with a phone in the address and pays by bank transfer.
        merchant = await session.get(Merchant, uuid.UUID(merchant_id))
        product = await make_product(session, merchant, price_fen=3000)
        buyer = await make_user(session)
        buyer_auth = auth(app, buyer)
        secrets.append(buyer_auth["Authorization"][7:])
        address = {
            "recipient": "王芳",
            "phone": SHIPPING_PHONE,
            "region_code": "330127",
            "address": "千岛湖镇新安东路1号",
        }
        r = await client.post(
            f"{API}/orders",
            json={
                "lines": [{"product_id": str(product.id), "quantity": 2}],
                "shipping_address": address,
                "payment_method": "bank_transfer",
            },
            headers={**buyer_auth, **idem()},
        )
        assert r.status_code == 201, r.text
        order = r.json()
        r = await client.post(
            f"{API}/orders/{order['id']}/payments", headers={**buyer_auth, **idem()}
        )
        assert r.status_code == 201, r.text
        r = await client.post(
            f"{API}/payments/{r.json()['payment_id']}/confirm",
            json={"amount_fen": order["total_fen"], "bank_reference": "ABC20261204001"},
            headers=auth(app, admin),
        )
        assert r.status_code == 200, r.text

        # A real database error: the INSERT of a new user fires a trigger that writes to a
        # table dropped meanwhile. The statement's parameters hold a hash and a phone.
        await _run(session, _SQLITE_FORCED if sqlite else _PG_FORCED)
        try:
            r = await client.post(
                f"{API}/auth/register",
                json={
                    "email": "late@example.cn",
                    "password": PASSWORD,
                    "display_name": "晚到",
                    "phone": LATE_PHONE,
                    "region_code": "330127",
                },
            )
        finally:
            cleanup = (
                ["DROP TRIGGER forced_gone_trg"]
                if sqlite
                else ["DROP TRIGGER forced_gone_trg ON users", "DROP FUNCTION forced_gone_fn()"]
            )
            await _run(session, cleanup)
        problem(r, 500, "internal_error")

    logs = captured.getvalue()
    # The session was logged, the failure with its traceback...
    assert '"logger": "shanhai.access"' in logs
    assert "forced_gone" in logs and "Traceback" in logs
    # ...and not one secret.
    leaked = [s for s in secrets if s in logs]
    assert leaked == [], f"leaked into the logs: {leaked}"
