"""HTTP endpoints: settlement runs, statements, their downloads and payouts."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from app.accounts.deps import AdminUser, CurrentUser
from app.core.db import Session
from app.core.export import CSV_MEDIA_TYPE, XLSX_MEDIA_TYPE, ExportFormat
from app.core.idempotency import IdempotencyKeyHeader, run_idempotent
from app.core.pagination import Cursor, Limit, Page
from app.core.time import utcnow
from app.models import SettlementStatus
from app.routers.common import AUTH_RESPONSES, PROVIDER_RESPONSES, NoFields
from app.settlement import export, payouts, queries, service
from app.settlement.schemas import MarkPaid, SettlementRead, SettlementRunCreate, SettlementRunRead

router = APIRouter(tags=["settlement"])

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "`settlement_not_found` (also another merchant's)."}
}
DOWNLOAD: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {CSV_MEDIA_TYPE: {}, XLSX_MEDIA_TYPE: {}},
        "description": "A download (`Content-Disposition: attachment`); CSV in UTF-8 with a BOM.",
    }
}
FormatQuery = Annotated[
    ExportFormat, Query(alias="format", description="`csv` or `xlsx`; anything else is 422.")
]


@router.post(
    "/settlements/runs",
    response_model=SettlementRunRead,
    responses={
        **AUTH_RESPONSES,
        400: {"description": "`idempotency_key_required`."},
        422: {"description": "`period_end_in_future`, `validation_error` (a malformed date)."},
    },
)
async def run_settlement(
    request: Request,
    body: SettlementRunCreate,
    session: Session,
    admin: AdminUser,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Issue one statement per merchant over its settleable merchant orders not yet settled:
    `completed` on or before `period_end` (Asia/Shanghai) with `REFUND_WINDOW_DAYS` passed now.
    Each deducts refunds approved since an earlier statement settled an order, and an earlier
    negative net. A merchant gets at most one statement per `period_end`, and a merchant order is
    settled once, whatever runs at the same time: running it again issues nothing twice (run a
    later `period_end` for what became settleable since). `settlements` lists what this run
    issued; the scheduled job does the same on `SETTLEMENT_WEEKDAY`."""

    async def handler() -> tuple[int, SettlementRunRead]:
        result = await service.run_settlement(
            session,
            period_end=body.period_end,
            now=utcnow(),
            refund_window_days=request.app.state.settings.refund_window_days,
            actor_id=admin.id,
        )
        statements = await queries.statements_by_id(session, result.settlement_ids)
        return 200, SettlementRunRead(
            run_id=result.run_id,
            period_end=result.period_end,
            settlements=await queries.read_settlements(session, statements),
        )

    return await run_idempotent(
        request=request,
        session=session,
        user_id=admin.id,
        key=idempotency_key,
        body=body,
        handler=handler,
    )


@router.get("/settlements", response_model=Page[SettlementRead], responses=AUTH_RESPONSES)
async def list_settlements(
    session: Session,
    user: CurrentUser,
    merchant_id: uuid.UUID | None = None,
    status: SettlementStatus | None = None,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Page[SettlementRead]:
    """Statements, newest first: an admin sees all (`?merchant_id=`), a merchant member only its
    own merchant's (another `merchant_id` gives an empty list); officials and buyers 403."""
    return await queries.list_settlements(
        session, user, merchant_id=merchant_id, status=status, limit=limit, cursor=cursor
    )


@router.get(
    "/settlements/export",
    response_class=Response,
    responses={**AUTH_RESPONSES, **DOWNLOAD},
)
async def payout_batch(
    session: Session,
    admin: AdminUser,
    fmt: FormatQuery,
    status: Annotated[
        Literal["pending_payout"],
        Query(description="Only `pending_payout`: the statements to pay by bank."),
    ] = "pending_payout",
) -> Response:
    """The bank payout batch for the finance office: one row per statement awaiting payout
    (merchant, bank name, account name, the full account number, net in 元, statement id). The
    only place a full account number is shown; every download is an audit event. Statements of
    merchants whose payouts are on hold, and those with a Stripe transfer under way, are left
    out."""
    return await export.payout_batch(session, admin, fmt)


@router.get(
    "/settlements/{settlement_id}",
    response_model=SettlementRead,
    responses={**AUTH_RESPONSES, **NOT_FOUND},
)
async def get_settlement(
    settlement_id: Annotated[uuid.UUID, Path()], session: Session, user: CurrentUser
) -> SettlementRead:
    """A statement with its merchant orders and their lines, and its adjustments."""
    statement = await queries.get_visible(session, user, settlement_id)
    (read,) = await queries.read_settlements(session, [statement], with_lines=True)
    return read


@router.get(
    "/settlements/{settlement_id}/export",
    response_class=Response,
    responses={**AUTH_RESPONSES, **NOT_FOUND, **DOWNLOAD},
)
async def export_settlement(
    settlement_id: Annotated[uuid.UUID, Path()],
    session: Session,
    user: CurrentUser,
    fmt: FormatQuery,
) -> Response:
    """The statement line by line: each order line, each merchant order's gross, refunds,
    commission and net, the adjustments and the total, in 元."""
    return await export.statement_download(session, user, settlement_id, fmt)


@router.post(
    "/settlements/{settlement_id}/payout",
    response_model=SettlementRead,
    responses={
        **AUTH_RESPONSES,
        **NOT_FOUND,
        **PROVIDER_RESPONSES,
        409: {
            "description": "`payouts_not_enabled`, `payouts_on_hold`, `settlement_already_paid`, "
            "`settlement_not_payable` (carried forward)."
        },
    },
)
async def payout(
    request: Request,
    settlement_id: Annotated[uuid.UUID, Path()],
    session: Session,
    admin: AdminUser,
    _: NoFields = None,
) -> SettlementRead:
    """Pay the statement by a Stripe transfer to the merchant's connected account. The transfer's
    idempotency key comes from the statement id, so a retry after a 502 or 503 never pays twice;
    the statement stays `pending_payout` until Stripe has accepted the transfer."""
    statement = await payouts.payout_by_stripe(
        session, request.app.state.stripe, admin, settlement_id
    )
    (read,) = await queries.read_settlements(session, [statement])
    return read


@router.post(
    "/settlements/{settlement_id}/mark-paid",
    response_model=SettlementRead,
    responses={
        **AUTH_RESPONSES,
        **NOT_FOUND,
        409: {
            "description": "`settlement_already_paid` (twice), `settlement_not_payable`, "
            "`payouts_on_hold`, `payout_in_progress` (a Stripe transfer's outcome is unknown)."
        },
    },
)
async def mark_paid(
    settlement_id: Annotated[uuid.UUID, Path()],
    body: MarkPaid,
    session: Session,
    admin: AdminUser,
) -> SettlementRead:
    """Record that the statement was paid by bank transfer, with the bank's reference."""
    statement = await payouts.mark_paid(session, admin, settlement_id, body.bank_reference)
    (read,) = await queries.read_settlements(session, [statement])
    return read
