"""HTTP endpoints: checkout, orders, merchant orders (shipping and receipt)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, status
from fastapi.responses import Response

from app.accounts.deps import CurrentUser
from app.core.db import Session
from app.core.idempotency import IdempotencyKeyHeader, Stored, run_idempotent
from app.core.pagination import Cursor, Limit, Page
from app.models import MerchantOrderStatus, OrderStatus
from app.orders import lifecycle, queries, service
from app.orders.schemas import (
    MerchantOrderListItem,
    MerchantOrderRead,
    OrderCreate,
    OrderRead,
    ShipRequest,
)
from app.payments import service as payments
from app.routers.common import AUTH_RESPONSES, NoFields

router = APIRouter(tags=["orders"])

OrderId = Annotated[uuid.UUID, Path(description="The order's id.")]
MerchantOrderId = Annotated[uuid.UUID, Path(description="The merchant order's id.")]


@router.post(
    "/orders",
    status_code=status.HTTP_201_CREATED,
    response_model=OrderRead,
    responses={
        **AUTH_RESPONSES,
        400: {"description": "`idempotency_key_required`."},
        409: {
            "description": "`insufficient_stock` or `product_unavailable` (naming `product_id`), "
            "`too_many_unpaid_orders`, `idempotency_key_reused`, "
            "`idempotency_request_in_progress`."
        },
        429: {"description": "`rate_limited`: over `CHECKOUTS_PER_HOUR_PER_BUYER`."},
        422: {
            "description": "`validation_error`, or `invalid_order_line` (one product over 9999 "
            "units once its lines are added up)."
        },
    },
)
async def place_order(
    request: Request,
    session: Session,
    user: CurrentUser,
    body: OrderCreate,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Check out (buyers only). Prices come from the catalogue; stock for every line is reserved
    at once, all or nothing. The same product listed twice is one line. The order awaits payment
    until `expires_at` (`PAYMENT_TIMEOUT_MINUTES`), then the jobs cancel it and return its stock.
    Requires `Idempotency-Key`.

    Against hoarding: a buyer holding `UNPAID_ORDERS_PER_BUYER` (5) open unpaid orders is refused
    with `409 too_many_unpaid_orders` until it pays or cancels one; more than
    `CHECKOUTS_PER_HOUR_PER_BUYER` (60) orders placed in an hour is `429 rate_limited` with
    `Retry-After`. Both hold across processes and under concurrent checkouts."""
    settings = request.app.state.settings

    async def claimed(claim_id: uuid.UUID) -> tuple[int, OrderRead | Stored]:
        return 201, await service.place_order_claimed(session, user, body, settings, claim_id)

    return await run_idempotent(
        request=request,
        session=session,
        user_id=user.id,
        key=idempotency_key,
        body=body,
        claimed=claimed,
    )


@router.get("/orders", response_model=Page[OrderRead], responses=AUTH_RESPONSES)
async def list_orders(
    session: Session,
    user: CurrentUser,
    limit: Limit = 20,
    cursor: Cursor = None,
    status: Annotated[OrderStatus | None, Query(description="Admins: only this status.")] = None,
) -> Page[OrderRead]:
    """A buyer's own orders; an admin's view of all (`?status=`). Merchants and officials: 403
    (merchants use `GET /merchants/{id}/orders`). Newest first."""
    return await queries.list_orders(session, user, status, limit, cursor)


@router.get(
    "/orders/{order_id}",
    response_model=OrderRead,
    responses={**AUTH_RESPONSES, 404: {"description": "`order_not_found` (also another buyer's)."}},
)
async def get_order(order_id: OrderId, session: Session, user: CurrentUser) -> OrderRead:
    """An order with its merchant orders, lines, payments and refunds. Another buyer's order is
    404."""
    order = await service.get_visible_order(session, user, order_id)
    return await service.read_order(session, order.id)


@router.post(
    "/orders/{order_id}/cancel",
    response_model=OrderRead,
    responses={
        **AUTH_RESPONSES,
        403: {
            "description": "`forbidden`: the caller sees the order (an admin; a member of one of "
            "its merchants) but only its buyer cancels."
        },
        404: {"description": "`order_not_found`: none, or not one the caller may see."},
        409: {"description": "`invalid_transition`: shipped in part, or already closed."},
    },
)
async def cancel_order(
    request: Request, order_id: OrderId, session: Session, user: CurrentUser, _: NoFields = None
) -> OrderRead:
    """The buyer cancels an order before anything shipped: it becomes `cancelled`, its stock
    returns, an open payment is cancelled, and a paid order is refunded in full (see
    `refunds`)."""
    await payments.buyer_cancel(session, request.app.state.stripe, user, order_id)
    return await service.read_order(session, order_id)


@router.get(
    "/merchants/{merchant_id}/orders",
    response_model=Page[MerchantOrderListItem],
    responses={
        **AUTH_RESPONSES,
        403: {
            "description": "`forbidden`: not a member or an admin, on an approved (public) "
            "merchant."
        },
        404: {"description": "`merchant_not_found`: none, or not approved (to non-members)."},
    },
)
async def list_merchant_orders(
    merchant_id: Annotated[uuid.UUID, Path()],
    session: Session,
    user: CurrentUser,
    limit: Limit = 20,
    cursor: Cursor = None,
    status: Annotated[MerchantOrderStatus | None, Query()] = None,
) -> Page[MerchantOrderListItem]:
    """That merchant's parts of orders, with the order number and the shipping address: for its
    members and admins. Newest first; `?status=paid` is what is waiting to ship."""
    return await queries.list_merchant_orders(session, user, merchant_id, status, limit, cursor)


@router.post(
    "/merchant-orders/{merchant_order_id}/ship",
    response_model=MerchantOrderRead,
    responses={
        **AUTH_RESPONSES,
        403: {
            "description": "`forbidden`: the caller sees the merchant order (its buyer, an "
            "admin) but is not a member of its merchant."
        },
        404: {
            "description": "`merchant_order_not_found`: none, or not one the caller may see "
            "(another merchant's, another buyer's)."
        },
        409: {"description": "`invalid_transition`: only a paid merchant order ships."},
    },
)
async def ship(
    merchant_order_id: MerchantOrderId, body: ShipRequest, session: Session, user: CurrentUser
) -> MerchantOrderRead:
    """A member of the merchant ships its part: `paid` → `shipped`, with carrier and tracking
    number. The jobs complete it `AUTO_COMPLETE_DAYS` later unless the buyer confirms first."""
    mo = await lifecycle.ship_merchant_order(
        session, user, merchant_order_id, body.carrier, body.tracking_no
    )
    return await _merchant_order(session, mo.order_id, mo.id)


@router.post(
    "/merchant-orders/{merchant_order_id}/confirm-receipt",
    response_model=MerchantOrderRead,
    responses={
        **AUTH_RESPONSES,
        403: {
            "description": "`forbidden`: the caller sees the merchant order (its merchant's "
            "members, an admin) but is not its buyer."
        },
        404: {
            "description": "`merchant_order_not_found`: none, or not one the caller may see "
            "(another buyer's, another merchant's)."
        },
        409: {"description": "`invalid_transition`: only a shipped merchant order."},
    },
)
async def confirm_receipt(
    merchant_order_id: MerchantOrderId, session: Session, user: CurrentUser, _: NoFields = None
) -> MerchantOrderRead:
    """The buyer confirms receipt: `shipped` → `completed`. The order is `completed` when all
    its merchant orders are (a part refunded in full before shipping counts as done)."""
    mo = await lifecycle.confirm_receipt(session, user, merchant_order_id)
    return await _merchant_order(session, mo.order_id, mo.id)


async def _merchant_order(
    session: Session, order_id: uuid.UUID, merchant_order_id: uuid.UUID
) -> MerchantOrderRead:
    order = await service.read_order(session, order_id)
    return next(mo for mo in order.merchant_orders if mo.id == merchant_order_id)
