"""HTTP endpoints: refunds (asked by the buyer, decided by the merchant's members or an admin)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Request, status
from fastapi.responses import Response

from app.accounts.deps import CurrentUser
from app.core.db import Session
from app.core.idempotency import IdempotencyKeyHeader, run_idempotent
from app.orders.service import read_order
from app.refunds import service as refunds
from app.refunds.schemas import RefundCreate, RefundRead, RefundReject
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
        404: {"description": "`refund_not_found` (also another merchant's)."},
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
    """The merchant's member or an admin approves: unshipped units return to stock and the money
    goes back through the original payment. `succeeded` once on its way back, `approved` while the
    provider has not confirmed (approving again retries), `failed` if it refused."""
    refund = await refunds.approve_refund(session, user, refund_id)
    await refunds.settle_with_provider(session, request.app.state.stripe, refund.id)
    return await _refund_read(session, refund.order_id, refund.id)


@router.post(
    "/refunds/{refund_id}/reject",
    response_model=RefundRead,
    responses={
        **AUTH_RESPONSES,
        404: {"description": "`refund_not_found`."},
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


async def _refund_read(session: Session, order_id: uuid.UUID, refund_id: uuid.UUID) -> RefundRead:
    order = await read_order(session, order_id)
    return next(r for r in order.refunds if r.id == refund_id)
