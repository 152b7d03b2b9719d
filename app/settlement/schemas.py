"""Request and response bodies of settlement."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.models import AdjustmentKind, PayoutMethod, SettlementStatus


class SettlementRunCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    period_end: date = Field(
        description="`YYYY-MM-DD`, Asia/Shanghai, inclusive: merchant orders completed on or "
        "before this day (and past the refund window now) are settled. A day after today is "
        "`422 period_end_in_future`; a malformed date `422 validation_error`."
    )


class MarkPaid(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bank_reference: str = Field(
        min_length=1,
        max_length=100,
        description="The bank's reference of the transfer that paid the statement.",
    )


class SettlementLineItem(BaseModel):
    """An order line of a settled merchant order."""

    id: uuid.UUID
    product_id: uuid.UUID
    name: str
    unit: str
    unit_price_fen: int
    quantity: int
    refunded_quantity: int
    line_total_fen: int


class SettledMerchantOrder(BaseModel):
    """A merchant order as the statement settled it (amounts at settlement)."""

    merchant_order_id: uuid.UUID
    order_id: uuid.UUID
    order_no: str
    completed_at: datetime
    gross_fen: int
    refunds_fen: int
    commission_fen: int
    net_fen: int = Field(description="gross − refunds − commission.")
    lines: list[SettlementLineItem] | None = Field(
        default=None, description="The order lines; in `GET /settlements/{id}` only."
    )


class SettlementAdjustmentRead(BaseModel):
    id: uuid.UUID
    kind: AdjustmentKind = Field(
        description="`late_refund`: refunds approved after an earlier statement settled the "
        "merchant order (less the commission they gave back; negative when a refund failed "
        "and the money stayed); `carried_forward`: an earlier statement's negative net."
    )
    merchant_order_id: uuid.UUID | None
    order_no: str | None
    source_settlement_id: uuid.UUID | None
    refunds_fen: int
    commission_fen: int = Field(description="The change in the order's commission.")
    amount_fen: int = Field(description="Deducted from this statement.")


class SettlementRead(BaseModel):
    id: uuid.UUID
    merchant_id: uuid.UUID
    merchant_name: str
    run_id: uuid.UUID
    period_end: date
    status: SettlementStatus = Field(
        description="`pending_payout` → `paid`; `carried_forward` (net below zero) is never "
        "paid, its net is deducted from the next statement. A net of exactly 0 is issued `paid`."
    )
    currency: Literal["CNY"] = "CNY"
    gross_fen: int
    refunds_fen: int
    commission_fen: int
    adjustments_fen: int
    net_fen: int = Field(description="gross − refunds − commission − adjustments.")
    payout_method: PayoutMethod | None
    payout_reference: str | None = Field(
        description="The bank's reference (mark-paid) or the Stripe transfer id."
    )
    paid_at: datetime | None
    created_at: datetime
    carried_into_id: uuid.UUID | None = Field(
        default=None, description="For `carried_forward`: the statement that deducted it."
    )
    merchant_orders: list[SettledMerchantOrder]
    adjustments: list[SettlementAdjustmentRead]


class SettlementRunRead(BaseModel):
    run_id: uuid.UUID
    period_end: date
    settlements: list[SettlementRead]
