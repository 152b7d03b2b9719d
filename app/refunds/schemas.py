"""Refunds as the API takes and shows them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.models import Refund, RefundKind, RefundStatus

Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


class RefundLineCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    order_line_id: uuid.UUID
    quantity: int = Field(ge=1, le=9999, strict=True)


class RefundCreate(BaseModel):
    """Lines of one merchant's part of the order (each cooperative decides its own refunds)."""

    model_config = ConfigDict(extra="forbid")

    lines: list[RefundLineCreate] = Field(min_length=1, max_length=100)
    reason: Reason


class RefundReject(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason


BankReference = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    Field(description="The bank's reference of the transfer (unique: one transfer, one use)."),
]


class RefundMarkPaid(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bank_reference: BankReference


class RefundLineRead(BaseModel):
    order_line_id: uuid.UUID
    quantity: int
    amount_fen: int


class RefundRead(BaseModel):
    """`approved`: owed to the buyer, on its way (Stripe) or awaiting the admin's bank transfer;
    `failed`: the provider refused, still owed (retried, or paid by bank); `succeeded`: paid.
    A refund counts against settlement and statistics from its approval, whatever follows."""

    id: uuid.UUID
    order_id: uuid.UUID
    merchant_order_id: uuid.UUID | None
    kind: RefundKind
    status: RefundStatus
    amount_fen: int
    currency: Literal["CNY"] = "CNY"
    reason: str
    reject_reason: str | None
    failure_message: str | None
    lines: list[RefundLineRead]
    created_at: datetime
    decided_at: datetime | None
    succeeded_at: datetime | None
    bank_reference: str | None = Field(
        default=None, description="The outgoing bank transfer's reference, once paid by bank."
    )
    attempts: int = Field(default=0, description="Times the payment provider was asked.")
    next_attempt_at: datetime | None = Field(
        default=None, description="When the jobs ask the provider again; null: they do not."
    )

    @classmethod
    def from_model(cls, refund: Refund, lines: list[RefundLineRead]) -> RefundRead:
        return cls(
            id=refund.id,
            order_id=refund.order_id,
            merchant_order_id=refund.merchant_order_id,
            kind=refund.kind,
            status=refund.status,
            amount_fen=refund.amount_fen,
            reason=refund.reason,
            reject_reason=refund.reject_reason,
            failure_message=refund.failure_message,
            lines=lines,
            created_at=refund.created_at,
            decided_at=refund.decided_at,
            succeeded_at=refund.succeeded_at,
            bank_reference=refund.bank_reference,
            attempts=refund.attempts,
            next_attempt_at=refund.next_attempt_at,
        )
