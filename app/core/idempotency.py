"""`Idempotency-Key` for the endpoints that move money or stock (API.md "idempotency").

A key belongs to its caller. The first request with a key claims it; the same key with the same
request then replays the first response (`Idempotent-Replayed: true`), with another request is
`409 idempotency_key_reused`, and while the first is still running `409
idempotency_request_in_progress`.

How it stays correct across API processes: on PostgreSQL the claim is committed in a short
transaction of its own before the work starts, so a concurrent duplicate sees it at once; the
stored response is written in the request's own transaction, so the answer and its effects land
together or not at all. A request that fails releases its claim, so a retry with the same key
runs again (e.g. after Stripe was down); use cases that commit in phases around a provider call
are written to resume where a failed attempt stopped. On SQLite every write transaction holds
the database's single write lock from its start, so requests with one key run one after the
other: the claim lives in the request's transaction and a duplicate sees either nothing or the
completed answer.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Header, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import Database
from app.core.errors import BadRequest, Conflict
from app.core.time import utcnow
from app.models import IdempotencyKey, IdempotencyStatus

KEY_TTL = timedelta(hours=24)
# A claim older than this whose request never finished (its process died) may be taken over.
STALE_CLAIM = timedelta(minutes=2)

IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=255,
        description="Required. A unique key per operation (e.g. a UUID), kept for 24 hours.",
    ),
]


class IdempotencyKeyRequired(BadRequest):
    code = "idempotency_key_required"


class IdempotencyKeyReused(Conflict):
    code = "idempotency_key_reused"


class IdempotencyRequestInProgress(Conflict):
    code = "idempotency_request_in_progress"


def require_key(key: str | None) -> str:
    if key is None or not key.strip():
        raise IdempotencyKeyRequired("This endpoint needs an `Idempotency-Key` header.")
    return key.strip()


def request_fingerprint(request: Request, body: BaseModel | None) -> str:
    """sha256 over the method, the path and the parsed body (so key order doesn't matter)."""
    payload = body.model_dump(mode="json") if body is not None else None
    raw = json.dumps(
        [request.method, request.url.path, payload], sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(raw.encode()).hexdigest()


def _replay(row: IdempotencyKey) -> JSONResponse:
    body = json.loads(row.response_body) if row.response_body else None
    return JSONResponse(
        body, status_code=row.response_status or 200, headers={"Idempotent-Replayed": "true"}
    )


async def _claim(
    session: AsyncSession, user_id: uuid.UUID, key: str, fingerprint: str
) -> tuple[uuid.UUID | None, IdempotencyKey | None]:
    """Insert the claim, or return the row that holds the key. Flushes, doesn't commit."""
    now = utcnow()
    claim_id = uuid.uuid4()
    values: dict[str, Any] = {
        "id": claim_id,
        "user_id": user_id,
        "key": key,
        "request_hash": fingerprint,
        "status": IdempotencyStatus.in_progress,
        "created_at": now,
        "expires_at": now + KEY_TTL,
    }
    try:
        async with session.begin_nested():
            await session.execute(insert(IdempotencyKey).values(**values))
        return claim_id, None
    except IntegrityError:
        pass
    existing = await session.scalar(
        select(IdempotencyKey).where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
    )
    if existing is None:  # released between our insert and our read: try once more
        async with session.begin_nested():
            await session.execute(insert(IdempotencyKey).values(**values))
        return claim_id, None
    expired = existing.expires_at <= now
    stale = (
        existing.status == IdempotencyStatus.in_progress
        and existing.created_at <= now - STALE_CLAIM
    )
    if expired or stale:
        await session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.id == existing.id)
            .values(
                request_hash=fingerprint,
                status=IdempotencyStatus.in_progress,
                response_status=None,
                response_body=None,
                created_at=now,
                expires_at=now + KEY_TTL,
            )
        )
        return existing.id, None
    return None, existing


async def run_idempotent(
    *,
    request: Request,
    session: AsyncSession,
    user_id: uuid.UUID,
    key: str | None,
    body: BaseModel | None,
    handler: Callable[[], Awaitable[tuple[int, Any]]],
) -> JSONResponse:
    """Run `handler` once per (caller, key); it returns (status, body). See the module doc.

    On PostgreSQL this commits `session` before claiming the key: call it before the request
    has written anything."""
    key = require_key(key)
    fingerprint = request_fingerprint(request, body)
    db: Database = request.app.state.db

    if db.is_sqlite:
        claim_id, existing = await _claim(session, user_id, key, fingerprint)
    else:
        # The claim is committed on its own, but on the request's session: end the request's
        # transaction first (so far it only read the caller) rather than take a second pooled
        # connection while holding one, which under a burst starves the pool.
        await session.commit()
        claim_id, existing = await _claim(session, user_id, key, fingerprint)
        await session.commit()

    if existing is not None:
        if existing.request_hash != fingerprint:
            raise IdempotencyKeyReused(
                "This Idempotency-Key was used for another request; use a new key."
            )
        if existing.status == IdempotencyStatus.completed:
            return _replay(existing)
        raise IdempotencyRequestInProgress(
            "A request with this Idempotency-Key is still running; retry shortly.",
            headers={"Retry-After": "1"},
        )
    assert claim_id is not None

    try:
        status, result = await handler()
    except BaseException:
        # Undo what the request had not committed, then free the key so that a retry runs
        # again (a use case that calls a provider may have committed its claim already).
        await session.rollback()
        async with db.sessionmaker() as release:
            await release.execute(delete(IdempotencyKey).where(IdempotencyKey.id == claim_id))
            await release.commit()
        raise
    content = jsonable_encoder(result)
    await session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.id == claim_id)
        .values(
            status=IdempotencyStatus.completed,
            response_status=status,
            response_body=json.dumps(content, ensure_ascii=False, separators=(",", ":")),
        )
    )
    return JSONResponse(content, status_code=status)


async def purge_expired(session: AsyncSession) -> int:
    """Delete keys past their lifetime (a job). Returns how many."""
    result = await session.execute(
        delete(IdempotencyKey).where(IdempotencyKey.expires_at <= utcnow())
    )
    return int(getattr(result, "rowcount", 0) or 0)
