"""HTTP endpoints: refunds (asked by the buyer, decided by the merchant's members or an admin)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, status
from fastapi.responses import Response

from app.accounts.deps import CurrentUser
from app.core.db import Session
from app.core.idempotency import IdempotencyKeyHeader, run_idempotent
from app.core.pagination import Cursor, Limit, Page
from app.models import RefundStatus
from app.orders.service import read_order
from app.refunds import provider
from app.refunds import service as refunds
from app.refunds.queries import list_refunds
from app.refunds.schemas import RefundCreate, RefundMarkPaid, RefundRead, RefundReject
from app.routers.common import AUTH_RESPONSES, PROVIDER_RESPONSES, NoFields

router = APIRouter(tags=["refunds"])


@router.post(
    "/orders/{order_id}/refunds",
    response_model=RefundRead,
    status_code=status.HTTP_201_CREATED,
    responses={
        **AUTH_RESPONSES,
        400: {"description": "`idempotency_key_required`."},
        404: {"description": "`order_not_found`."},
        409: {"description": "`refund_exceeds_purchase`, `order_not_refundable`."},
        422: {"description": "`invalid_refund_line`, `refund_spans_merchants`."},
    },
)
async def request_refund(
    request: Request,
    order_id: Annotated[uuid.UUID, Path()],
    body: RefundCreate,
    session: Session,
    user: CurrentUser,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """The buyer asks for lines of a paid order back (lines of one merchant per request; never
    more than was bought less what is refunded or awaiting a decision). The merchant's members or
    an admin decide."""

    async def handler() -> tuple[int, RefundRead]:
        refund = await refunds.request_refund(session, user, order_id, body)
        return 201, await _refund_read(session, refund.order_id, refund.id)

    return await run_idempotent(
        request=request,
        session=session,
        user_id=user.id,
        key=idempotency_key,
        body=body,
        handler=handler,
    )


@router.post(
    "/refunds/{refund_id}/approve",
    response_model=RefundRead,
    responses={
        **AUTH_RESPONSES,
        **PROVIDER_RESPONSES,
        403: {"description": "`forbidden`: the order's buyer, an official."},
        404: {"description": "`refund_not_found` (also another buyer's or merchant's)."},
        409: {"description": "`invalid_transition`."},
    },
)
async def approve_refund(
    request: Request,
    refund_id: Annotated[uuid.UUID, Path()],
    session: Session,
    user: CurrentUser,
    _: NoFields = None,
) -> RefundRead:
    """The merchant's member or an admin approves: unshipped units return to stock, the money is
    owed to the buyer from now on (settlement and statistics count the refund from here), and it
    goes back through the original payment. Card: `succeeded` once Stripe accepted it, `approved`
    while Stripe has not confirmed (approving again, or the jobs, retry), `failed` if it refused
    (still owed: retried, or paid by bank). Bank transfer: `approved` until an admin records the
    outgoing transfer with `POST /refunds/{id}/mark-paid`."""
    refund = await refunds.approve_refund(session, user, refund_id)
    await provider.settle_with_provider(session, request.app.state.stripe, refund.id)
    return await _refund_read(session, refund.order_id, refund.id)


@router.post(
    "/refunds/{refund_id}/reject",
    response_model=RefundRead,
    responses={
        **AUTH_RESPONSES,
        403: {"description": "`forbidden`: the order's buyer, an official."},
        404: {"description": "`refund_not_found` (also another buyer's or merchant's)."},
        409: {"description": "`invalid_transition`."},
    },
)
async def reject_refund(
    refund_id: Annotated[uuid.UUID, Path()],
    body: RefundReject,
    session: Session,
    user: CurrentUser,
) -> RefundRead:
    """The merchant's member or an admin turns a request down, with a reason."""
    refund = await refunds.reject_refund(session, user, refund_id, body.reason)
    return await _refund_read(session, refund.order_id, refund.id)


@router.get(
    "/refunds",
    response_model=Page[RefundRead],
    responses={**AUTH_RESPONSES, 400: {"description": "`invalid_cursor`."}},
)
async def get_refunds(
    session: Session,
    user: CurrentUser,
    status: Annotated[RefundStatus | None, Query(description="Only this status.")] = None,
    order_id: Annotated[uuid.UUID | None, Query(description="Only this order's.")] = None,
    merchant_id: Annotated[
        uuid.UUID | None,
        Query(description="Only this merchant's (its members: their own, the default)."),
    ] = None,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Page[RefundRead]:
    """Refunds, newest first. Admins see every refund, e.g. `?status=failed` for the refunds
    the provider refused (still owed to the buyers) and `?status=approved` for those on their
    way or awaiting a bank transfer. A merchant's members see their own merchant's refunds
    (another `merchant_id` is 403); buyers see theirs on their orders; officials: 403."""
    return await list_refunds(
        session,
        user,
        status=status,
        order_id=order_id,
        merchant_id=merchant_id,
        limit=limit,
        cursor=cursor,
    )


_ADMIN_ACTION_RESPONSES: dict[int | str, dict[str, Any]] = {
    **AUTH_RESPONSES,
    403: {"description": "`forbidden`: not an admin (the order's buyer, the merchant's members)."},
    404: {"description": "`refund_not_found` (also another buyer's or merchant's)."},
}


@router.post(
    "/refunds/{refund_id}/retry",
    response_model=RefundRead,
    responses={
        **_ADMIN_ACTION_RESPONSES,
        **PROVIDER_RESPONSES,
        409: {"description": "`invalid_transition`: neither `failed` nor `succeeded`."},
    },
)
async def retry_refund(
    request: Request,
    refund_id: Annotated[uuid.UUID, Path()],
    session: Session,
    user: CurrentUser,
    _: NoFields = None,
) -> RefundRead:
    """Admin: ask Stripe again for a `failed` refund (a new request, since Stripe refused the
    last one). Returns it `succeeded`, `approved` (Stripe not reached: the jobs go on trying;
    503) or `failed` again. A `succeeded` refund is returned unchanged; other statuses are
    `409 invalid_transition`."""
    refund = await provider.retry_refund(session, request.app.state.stripe, user, refund_id)
    return await _refund_read(session, refund.order_id, refund.id)


@router.post(
    "/refunds/{refund_id}/mark-paid",
    response_model=RefundRead,
    responses={
        **_ADMIN_ACTION_RESPONSES,
        409: {
            "description": "`invalid_transition` (already paid, not approved nor failed, or a "
            "card refund Stripe may still pay), `bank_reference_used`."
        },
    },
)
async def mark_refund_paid(
    refund_id: Annotated[uuid.UUID, Path()],
    body: RefundMarkPaid,
    session: Session,
    user: CurrentUser,
) -> RefundRead:
    """Admin: record the bank transfer that paid the refund back to the buyer → `succeeded`.
    For a bank-transfer order's `approved` refund, or any `failed` one. Once; a bank reference
    pays one refund."""
    refund = await provider.mark_refund_paid(session, user, refund_id, body.bank_reference)
    return await _refund_read(session, refund.order_id, refund.id)


async def _refund_read(session: Session, order_id: uuid.UUID, refund_id: uuid.UUID) -> RefundRead:
    order = await read_order(session, order_id)
    return next(r for r in order.refunds if r.id == refund_id)
