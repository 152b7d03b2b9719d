"""`Idempotency-Key` for the endpoints that move money or stock (docs/guide.md, "Retrying safely").

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
import math
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, cast

from fastapi import Header, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy import Table, bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import Database
from app.core.errors import BadRequest, Conflict
from app.core.liveness import Liveness
from app.core.sql import upsert
from app.core.statements import Statements
from app.core.time import utcnow
from app.models import IdempotencyKey, IdempotencyStatus

KEY_TTL = timedelta(hours=24)
# A claim of unknown claimant (made before claimants were recorded) older than this may be taken
# over. A claim whose claimant process is gone is taken over at once (`app.core.liveness`).
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


def _replay(row: IdempotencyKey) -> Response:
    return Response(
        (row.response_body or "null").encode(),
        status_code=row.response_status or 200,
        media_type="application/json",
        headers={"Idempotent-Replayed": "true"},
    )


_keys = cast(Table, IdempotencyKey.__table__)

_CLAIM = upsert(_keys, conflict=[_keys.c.user_id, _keys.c.key]).returning(_keys.c.id)
_COMPLETE = (
    update(_keys)
    .where(_keys.c.id == bindparam("claim_id"))
    .values(
        status=IdempotencyStatus.completed,
        response_status=bindparam("response_status"),
        response_body=bindparam("response_body"),
    )
)


@dataclass(frozen=True, slots=True)
class Stored:
    """What a `claimed` handler returns once it has itself written the response `text` to the
    claim `COMPLETE_SQL` describes, in the request's transaction."""

    text: str


# For a handler that completes the claim in a statement of its own (PostgreSQL): the columns
# `_COMPLETE` sets, by the claim's id (asyncpg placeholders given by the caller).
COMPLETE_SQL = (
    "UPDATE idempotency_keys SET status = 'completed', response_status = {status}, "
    "response_body = {body} WHERE id = {claim_id}"
)


def _in_progress(retry_after: int) -> IdempotencyRequestInProgress:
    return IdempotencyRequestInProgress(
        "A request with this Idempotency-Key is still running; retry shortly.",
        headers={"Retry-After": str(retry_after)},
        extra={"retry_after": retry_after},
    )


async def _claim(
    session: AsyncSession, liveness: Liveness, user_id: uuid.UUID, key: str, fingerprint: str
) -> tuple[uuid.UUID | None, IdempotencyKey | None, int]:
    """Insert the claim (one statement), or return the row that holds the key. Doesn't commit.

    A claim that expired, or whose claimant process is gone (`Liveness`), or — when that cannot
    be told — that has been in progress for STALE_CLAIM, is taken over with a compare-and-set,
    so two takers never both win. Returns (claim id, holding row, seconds a caller must wait
    before the holding row could be taken over)."""
    db = await Statements.of(session)
    conn = db.conn
    claimant = await liveness.claimant()
    for _ in range(3):
        now = utcnow()
        claim_id = uuid.uuid4()
        values: dict[str, Any] = {
            "id": claim_id,
            "user_id": user_id,
            "key": key,
            "request_hash": fingerprint,
            "status": IdempotencyStatus.in_progress,
            "response_status": None,
            "response_body": None,
            "created_at": now,
            "expires_at": now + KEY_TTL,
            "claimant": claimant,
        }
        # On PostgreSQL, before the request's transaction begins: committed as it runs.
        if await db.first_alone(_CLAIM, values) is not None:
            return claim_id, None, 0
        existing = await session.scalar(
            select(IdempotencyKey)
            .where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
            .execution_options(populate_existing=True)
        )
        if existing is None:
            continue  # released between our insert and our read: claim again
        if existing.expires_at > now:
            if existing.status == IdempotencyStatus.completed:
                return None, existing, 0
            wait = _stale_in(existing, now)
            if wait > 0 and not await liveness.is_dead(
                conn, existing.claimant, existing.created_at, existing.id
            ):
                # A live claimant is running and may finish any moment: ask again in a second.
                # One we cannot check can only be taken over once stale: say exactly when.
                return None, existing, 1 if existing.claimant is not None else wait
        taken = await conn.execute(
            update(_keys)
            .where(_keys.c.id == existing.id, _keys.c.created_at == existing.created_at)
            .values(
                request_hash=fingerprint,
                status=IdempotencyStatus.in_progress,
                response_status=None,
                response_body=None,
                created_at=now,
                expires_at=now + KEY_TTL,
                claimant=claimant,
            )
        )
        if taken.rowcount == 1:
            return existing.id, None, 0
    raise _in_progress(1)


def _stale_in(row: IdempotencyKey, now: datetime) -> int:
    """Whole seconds until an in-progress claim counts as stale (0 once it does)."""
    return max(0, math.ceil((row.created_at + STALE_CLAIM - now).total_seconds()))


async def run_idempotent(
    *,
    request: Request,
    session: AsyncSession,
    user_id: uuid.UUID,
    key: str | None,
    body: BaseModel | None,
    handler: Callable[[], Awaitable[tuple[int, Any]]] | None = None,
    claimed: Callable[[uuid.UUID], Awaitable[tuple[int, Any]]] | None = None,
) -> Response:
    """Run `handler` once per (caller, key); it returns (status, body). See the module doc.

    On PostgreSQL this commits `session` with the claim, and again with the answer and its
    effects: call it before the request has written anything, and write nothing after it. The
    response is serialised once, stored, and sent as it was stored. Instead of `handler`,
    `claimed` is given the claim's id and may store the response itself (saving a round trip):
    it then returns (status, `Stored(text)`)."""
    key = require_key(key)
    fingerprint = request_fingerprint(request, body)
    db: Database = request.app.state.db

    claim_id, existing, wait = await _claim(session, db.liveness, user_id, key, fingerprint)
    # The claim counts as running until the request's transaction has ended: one left behind by
    # a request that failed with the database away is then taken over at once by a retry.
    with db.liveness.running(claim_id):
        if not db.serialises_writes and (await Statements.of(session)).began:
            # The claim is committed before the work starts, on the request's own session (its
            # transaction has only read the caller so far): never a second pooled connection
            # while holding one, which under a burst would starve the pool. (A claim that ran on
            # its own, `Statements.first_alone`, is committed already: nothing to commit.)
            await session.commit()

        if existing is not None:
            if existing.request_hash != fingerprint:
                raise IdempotencyKeyReused(
                    "This Idempotency-Key was used for another request; use a new key."
                )
            if existing.status == IdempotencyStatus.completed:
                return _replay(existing)
            raise _in_progress(wait)
        assert claim_id is not None

        try:
            if claimed is not None:
                status, result = await claimed(claim_id)
            else:
                assert handler is not None
                status, result = await handler()
        except BaseException:
            # Undo what the request had not committed, then free the key so that a retry runs
            # again (a use case that calls a provider may have committed its claim already).
            await session.rollback()
            async with db.sessionmaker() as release:
                await release.execute(delete(IdempotencyKey).where(IdempotencyKey.id == claim_id))
                await release.commit()
            raise
        if isinstance(result, Stored):
            text = result.text
        else:
            if isinstance(result, BaseModel):
                text = result.model_dump_json()
            else:
                text = json.dumps(
                    jsonable_encoder(result), ensure_ascii=False, separators=(",", ":")
                )
            await (await Statements.of(session)).execute(
                _COMPLETE,
                {"claim_id": claim_id, "response_status": status, "response_body": text},
            )
        if not db.serialises_writes:
            # The answer and its effects land together, here, while the claim still counts as
            # running. A commit that fails leaves the claim in progress (or completed, if the
            # commit landed after all): never released, so a retry replays or takes it over.
            await session.commit()
    return Response(text.encode(), status_code=status, media_type="application/json")


async def purge_expired(session: AsyncSession) -> int:
    """Delete keys past their lifetime (a job). Returns how many."""
    result = await session.execute(
        delete(IdempotencyKey).where(IdempotencyKey.expires_at <= utcnow())
    )
    return int(getattr(result, "rowcount", 0) or 0)
