"""Sign-up, sign-in (with throttling on both backends) and /me, through HTTP."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator

import jwt
import pytest
from fastapi import FastAPI

from app.core.config import Settings
from app.core.db import Database
from app.core.ratelimit import RedisRateLimiter
from app.main import create_app
from app.models import MerchantRole, Role, User
from tests.fixtures.accounts import (
    REDIS_URL,
    ThrottleBackend,
    client_at,
    count_users,
    sign_in,
)
from tests.fixtures.factories import PASSWORD, auth, make_merchant, make_user

REGISTER = "/api/v1/auth/register"
ME = "/api/v1/me"


def _signup(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "email": "Li.Wei@Example.CN",
        "password": "a long enough password",
        "display_name": "李伟",
        "phone": "138 0013 8000",
        "region_code": "330127",
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not ...}


# --- register ------------------------------------------------------------------------------------


async def test_register_creates_an_individual_buyer(client, session):
    r = await client.post(REGISTER, json=_signup())
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["email"] == "li.wei@example.cn"
    assert body["display_name"] == "李伟"
    assert body["phone"] == "+8613800138000"
    assert body["role"] == "buyer"
    assert body["buyer_type"] == "individual"
    assert body["region_code"] == "330127"
    assert body["merchant_id"] is None and body["merchant_role"] is None
    assert body["disabled"] is False
    assert body["created_at"].endswith(("Z", "+00:00"))
    assert "password" not in r.text and "password_hash" not in body

    user = await session.get(User, uuid.UUID(body["id"]))
    assert user is not None
    assert user.password_hash.startswith("$argon2id$")
    assert "a long enough password" not in user.password_hash
    await session.commit()

    # The new account signs in, in any case of its e-mail.
    r = await sign_in(client, "LI.WEI@example.cn", "a long enough password")
    assert r.status_code == 200, r.text


async def test_register_without_phone(client):
    r = await client.post(REGISTER, json=_signup(phone=...))
    assert r.status_code == 201
    assert r.json()["phone"] is None


@pytest.mark.parametrize(
    "email",
    [
        "a@b.cn",
        "first.last+tag@sub.example.com.cn",
        "o'brien_x-y@mail-server.example.org",
        "user@xn--fiqs8s.xn--fiqs8s",
    ],
)
async def test_register_accepts_plausible_addresses(client, email):
    r = await client.post(REGISTER, json=_signup(email=email))
    assert r.status_code == 201, r.text
    assert r.json()["email"] == email.lower()


async def test_register_email_taken_in_any_case(client, session):
    await make_user(session, email="taken@example.cn")
    r = await client.post(REGISTER, json=_signup(email="  TAKEN@Example.cn "))
    assert r.status_code == 409
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "email_taken"
    assert await count_users(session) == 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"email": ...}, "email"),
        ({"password": ...}, "password"),
        ({"display_name": ...}, "display_name"),
        ({"region_code": ...}, "region_code"),
        ({"role": "admin"}, "role"),
        ({"buyer_type": "union"}, "buyer_type"),
        ({"password": 1234567890123}, "password"),
        ({"email": ["a@b.cn"]}, "email"),
        ({"region_code": 330127}, "region_code"),
        ({"password": "short-pw9"}, "password"),
        ({"password": "x" * 129}, "password"),
        ({"display_name": ""}, "display_name"),
        ({"display_name": "   "}, "display_name"),
        ({"display_name": "名" * 101}, "display_name"),
        ({"email": "a" * 64 + "@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 63 + ".cn"}, "email"),
        ({"email": "x" * 10_000 + "@example.cn"}, "email"),
        ({"email": "not-an-address"}, "email"),
        ({"email": "a@b"}, "email"),
        ({"email": "a@@b.cn"}, "email"),
        ({"email": ".a@b.cn"}, "email"),
        ({"email": "a..b@b.cn"}, "email"),
        ({"email": "a b@b.cn"}, "email"),
        ({"email": "a@-b.cn"}, "email"),
        ({"email": "a@b.c"}, "email"),
        ({"email": "a@b.123"}, "email"),
        ({"email": "a" * 65 + "@b.cn"}, "email"),
        ({"email": "a@b.cn\n"}, None),  # stripped: accepted, see below
        ({"region_code": "33012"}, "region_code"),
        ({"region_code": "030127"}, "region_code"),
        ({"region_code": "abcdef"}, "region_code"),
        ({"phone": "12345"}, "phone"),
        ({"phone": "+1 415 555 0100"}, "phone"),
        ({"phone": "1" * 200}, "phone"),
        ({"phone": 13800138000}, "phone"),
    ],
)
async def test_register_refuses_bad_input(client, session, change, field):
    r = await client.post(REGISTER, json=_signup(**change))
    if field is None:
        assert r.status_code == 201
        return
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["code"] == "validation_error"
    assert any(field in err["loc"] for err in body["errors"]), body["errors"]
    assert "Traceback" not in r.text
    assert await count_users(session) == 0


async def test_register_refuses_malformed_json(client, session):
    r = await client.post(
        REGISTER, content=b'{"email": "a@b.cn",', headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 400
    assert r.json()["code"] == "malformed_json"
    assert await count_users(session) == 0


async def test_register_refuses_a_non_object_body(client, session):
    for body in ([], "text", None):
        r = await client.post(REGISTER, json=body)
        assert r.status_code == 422, body
        assert r.json()["code"] == "validation_error"
    assert await count_users(session) == 0


# --- token ---------------------------------------------------------------------------------------


async def test_token_for_the_right_password(client, session, app):
    user = await make_user(session, email="buyer@example.cn")
    r = await sign_in(client, "Buyer@Example.cn ", PASSWORD)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 3600
    assert r.headers["cache-control"] == "no-store"
    claims = jwt.decode(body["access_token"], app.state.settings.secret_key, algorithms=["HS256"])
    assert claims["sub"] == str(user.id)
    assert claims["exp"] - claims["iat"] == 3600

    me = await client.get(ME, headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200
    assert me.json()["id"] == str(user.id)


async def test_wrong_password_and_unknown_email_answer_alike(client, session):
    await make_user(session, email="buyer@example.cn")
    wrong = await sign_in(client, "buyer@example.cn", "not the password")
    unknown = await sign_in(client, "nobody@example.cn", PASSWORD)
    for r in (wrong, unknown):
        assert r.status_code == 401
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.headers["www-authenticate"] == "Bearer"
        assert r.json()["code"] == "invalid_credentials"
    assert wrong.json() == unknown.json()


async def test_unknown_email_costs_a_password_check(client, session):
    """An unknown e-mail takes about as long as a wrong password: no account probing by time."""
    await make_user(session, email="buyer@example.cn")

    async def timed(email: str) -> float:
        started = time.perf_counter()
        r = await sign_in(client, email, "not the password")
        assert r.status_code == 401
        return time.perf_counter() - started

    await timed("warm-up@example.cn")
    known = min([await timed("buyer@example.cn") for _ in range(3)])
    unknown = min([await timed(f"nobody{i}@example.cn") for i in range(3)])
    assert unknown > known / 3


async def test_disabled_account(client, session):
    await make_user(session, email="off@example.cn", disabled=True)
    r = await sign_in(client, "off@example.cn", PASSWORD)
    assert r.status_code == 401
    assert r.json()["code"] == "account_disabled"
    # A wrong password does not reveal that the account exists and is disabled.
    r = await sign_in(client, "off@example.cn", "not the password")
    assert r.status_code == 401
    assert r.json()["code"] == "invalid_credentials"


@pytest.mark.parametrize(
    "data",
    [
        {"password": PASSWORD},
        {"username": "buyer@example.cn"},
        {"username": "buyer@example.cn", "password": PASSWORD, "grant_type": "client_credentials"},
        {"username": "b" * 300 + "@example.cn", "password": PASSWORD},
        {"username": "buyer@example.cn", "password": "p" * 129},
    ],
)
async def test_token_refuses_bad_forms(client, session, data):
    await make_user(session, email="buyer@example.cn")
    r = await client.post("/api/v1/auth/token", data=data)
    assert r.status_code == 422
    assert r.json()["code"] == "validation_error"


async def test_token_wants_a_form_not_json(client, session):
    await make_user(session, email="buyer@example.cn")
    r = await client.post(
        "/api/v1/auth/token", json={"username": "buyer@example.cn", "password": PASSWORD}
    )
    assert r.status_code == 422
    assert r.json()["code"] == "validation_error"


# --- throttling (both backends) ------------------------------------------------------------------


@pytest.fixture(params=["database", "redis"])
async def backend(request, app: FastAPI) -> AsyncIterator[ThrottleBackend]:
    chosen = ThrottleBackend(request.param)
    chosen.install(app)
    try:
        yield chosen
    finally:
        await chosen.close()


async def _fail(client, email: str, times: int) -> None:
    for _ in range(times):
        r = await sign_in(client, email, "not the password")
        assert r.status_code == 401, r.text


async def test_account_is_throttled_after_five_failures(client, session, app, backend):
    await make_user(session, email="target@example.cn")
    await _fail(client, "target@example.cn", 5)

    # Checked before the password: even the right one is refused now.
    r = await sign_in(client, "TARGET@example.cn", PASSWORD)
    assert r.status_code == 429
    body = r.json()
    assert body["code"] == "too_many_attempts"
    window = app.state.settings.login_window_seconds
    retry_after = int(r.headers["retry-after"])
    assert window - 10 <= retry_after <= window
    assert body["retry_after"] == retry_after
    # Refused attempts are not counted: the lock does not grow.
    again = await sign_in(client, "target@example.cn", PASSWORD)
    assert int(again.headers["retry-after"]) <= retry_after

    # Another account from the same address is not affected.
    await make_user(session, email="other@example.cn")
    assert (await sign_in(client, "other@example.cn", PASSWORD)).status_code == 200


async def test_unknown_accounts_are_throttled_too(client, backend):
    await _fail(client, "ghost@example.cn", 5)
    r = await sign_in(client, "ghost@example.cn", "anything at all")
    assert r.status_code == 429
    assert r.json()["code"] == "too_many_attempts"


async def test_success_clears_the_account_failures(client, session, app, backend):
    await make_user(session, email="forgetful@example.cn")
    await _fail(client, "forgetful@example.cn", 4)
    assert (await sign_in(client, "forgetful@example.cn", PASSWORD)).status_code == 200
    await _fail(client, "forgetful@example.cn", 4)
    assert (await sign_in(client, "forgetful@example.cn", PASSWORD)).status_code == 200


async def test_address_is_throttled_across_accounts(client, session, app, backend):
    app.state.settings.login_max_failures_per_address = 3
    await make_user(session, email="victim@example.cn")
    for i in range(3):
        await _fail(client, f"stuffed{i}@example.cn", 1)

    r = await sign_in(client, "victim@example.cn", PASSWORD)
    assert r.status_code == 429
    assert r.json()["code"] == "too_many_attempts"
    assert int(r.headers["retry-after"]) > 0

    # The same account from another address is fine: only the address was over its limit.
    async with client_at(app, "198.51.100.20") as elsewhere:
        assert (await sign_in(elsewhere, "victim@example.cn", PASSWORD)).status_code == 200


async def test_throttling_is_shared_between_processes(client, session, app, settings, backend):
    """Two app instances (as two API processes) on the same database and Redis count together."""
    await make_user(session, email="shared@example.cn")
    other_app = create_app(settings)
    backend.install(other_app)
    try:
        async with client_at(other_app, "203.0.113.7") as other:
            await _fail(client, "shared@example.cn", 3)
            await _fail(other, "shared@example.cn", 2)
            for c in (client, other):
                r = await sign_in(c, "shared@example.cn", PASSWORD)
                assert r.status_code == 429
                assert r.json()["code"] == "too_many_attempts"
    finally:
        db: Database = other_app.state.db
        await db.dispose()


async def test_forwarded_for_is_used_only_behind_trusted_proxies(client, session, app, backend):
    app.state.settings.login_max_failures_per_address = 2
    await make_user(session, email="proxied@example.cn")

    # No trusted proxy: X-Forwarded-For is ignored, the peer address is what counts.
    for i in range(2):
        r = await client.post(
            "/api/v1/auth/token",
            data={"username": f"x{i}@example.cn", "password": "wrong password"},
            headers={"X-Forwarded-For": f"192.0.2.{i + 1}"},
        )
        assert r.status_code == 401
    r = await sign_in(client, "proxied@example.cn", PASSWORD)
    assert r.status_code == 429

    # One trusted proxy in front of a fresh peer: its rightmost entry is the client.
    app.state.settings.trusted_proxy_hops = 1
    async with client_at(app, "10.0.0.2") as proxy:
        for i in range(2):
            r = await proxy.post(
                "/api/v1/auth/token",
                data={"username": f"y{i}@example.cn", "password": "wrong password"},
                headers={"X-Forwarded-For": f"spoofed-{i}, 198.51.100.7"},
            )
            assert r.status_code == 401
        blocked = await proxy.post(
            "/api/v1/auth/token",
            data={"username": "proxied@example.cn", "password": PASSWORD},
            headers={"X-Forwarded-For": "198.51.100.7"},
        )
        assert blocked.status_code == 429
        fine = await proxy.post(
            "/api/v1/auth/token",
            data={"username": "proxied@example.cn", "password": PASSWORD},
            headers={"X-Forwarded-For": "198.51.100.8"},
        )
        assert fine.status_code == 200


async def test_redis_is_used_when_configured(settings: Settings, session):
    await make_user(session, email="redis-user@example.cn")
    configured = settings.model_copy(update={"redis_url": REDIS_URL})
    redis_app = create_app(configured)
    try:
        async with client_at(redis_app, "203.0.113.99") as c:
            assert (await sign_in(c, "redis-user@example.cn", PASSWORD)).status_code == 200
        assert isinstance(redis_app.state.rate_limiter, RedisRateLimiter)
    finally:
        await redis_app.state.rate_limiter.aclose()
        await redis_app.state.db.dispose()


async def test_unreachable_redis_refuses_sign_in(client, session, app):
    """Without its counter, sign-in fails closed (503) instead of letting attempts through."""
    import redis.asyncio as aioredis

    await make_user(session, email="buyer@example.cn")
    dead = aioredis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)
    app.state.rate_limiter = RedisRateLimiter(dead, prefix="test:dead:")
    try:
        r = await sign_in(client, "buyer@example.cn", PASSWORD)
        assert r.status_code == 503
        assert r.json()["code"] == "sign_in_unavailable"
        assert "retry-after" in r.headers
    finally:
        await dead.aclose()


# --- /me -----------------------------------------------------------------------------------------


async def test_me_shows_the_caller(client, session, app):
    merchant, owner = await make_merchant(session)
    r = await client.get(ME, headers=auth(app, owner))
    assert r.status_code == 200
    body = r.json()
    assert body["id"] == str(owner.id)
    assert body["email"] == owner.email
    assert body["display_name"] == owner.display_name
    assert body["role"] == Role.merchant
    assert body["merchant_id"] == str(merchant.id)
    assert body["merchant_role"] == MerchantRole.owner
    assert body["region_code"] == owner.region_code
    assert "buyer_type" in body and "phone" in body
    assert "password_hash" not in body


async def test_me_after_register_and_sign_in(client):
    assert (await client.post(REGISTER, json=_signup())).status_code == 201
    token = (await sign_in(client, "li.wei@example.cn", "a long enough password")).json()
    r = await client.get(ME, headers={"Authorization": f"Bearer {token['access_token']}"})
    assert r.status_code == 200
    assert r.json()["buyer_type"] == "individual"
    assert r.json()["phone"] == "+8613800138000"


def _token(secret: str, **claims: object) -> str:
    return jwt.encode(claims, secret, algorithm="HS256")


async def test_me_refuses_anonymous_and_bad_tokens(client, session, app):
    user = await make_user(session)
    secret = app.state.settings.secret_key
    now = int(time.time())
    r = await client.get(ME)
    assert r.status_code == 401
    assert r.json()["code"] == "not_authenticated"
    assert r.headers["www-authenticate"] == "Bearer"

    bad = {
        "garbage": "not-a-jwt",
        "expired": _token(secret, sub=str(user.id), iat=now - 7200, exp=now - 60),
        "other key": _token("another-secret-key-0123456789-abcdef", sub=str(user.id), exp=now + 60),
        "no exp": _token(secret, sub=str(user.id)),
        "not a uuid": _token(secret, sub="admin", exp=now + 60),
        "unknown user": _token(secret, sub=str(uuid.uuid4()), exp=now + 60),
        "alg none": jwt.encode({"sub": str(user.id), "exp": now + 60}, None, algorithm="none"),
    }
    for name, token in bad.items():
        r = await client.get(ME, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401, name
        assert r.json()["code"] == "invalid_token", name
    r = await client.get(ME, headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert r.status_code == 401


async def test_disabling_stops_a_token_at_once(client, session, app):
    admin = await make_user(session, role=Role.admin)
    user = await make_user(session)
    headers = auth(app, user)
    assert (await client.get(ME, headers=headers)).status_code == 200
    r = await client.patch(
        f"/api/v1/users/{user.id}", json={"disabled": True}, headers=auth(app, admin)
    )
    assert r.status_code == 200
    r = await client.get(ME, headers=headers)
    assert r.status_code == 401
    assert r.json()["code"] == "invalid_token"
