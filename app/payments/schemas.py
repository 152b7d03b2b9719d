"""Payments, refunds and ledger balances as the API shows them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.core.money import MAX_FEN
from app.models import LedgerAccount, PaymentMethod, PaymentStatus

Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


class BankTransferInstructions(BaseModel):
    bank_name: str
    account_name: str
    account_no: str
    amount_fen: int
    reference: str
    pay_before: datetime
    note: str


class PaymentRead(BaseModel):
    """For `stripe`: `client_secret` and `provider_reference` (the PaymentIntent id) are set.
    For `bank_transfer`: `reference` and `instructions` are set."""

    payment_id: uuid.UUID
    order_id: uuid.UUID
    provider: PaymentMethod
    status: PaymentStatus
    amount_fen: int
    currency: Literal["CNY"] = "CNY"
    client_secret: str | None = None
    provider_reference: str | None = None
    reference: str | None = Field(
        default=None, description="Bank transfers: the reference the buyer writes on it."
    )
    instructions: BankTransferInstructions | None = None
    bank_reference: str | None = Field(
        default=None,
        description="Bank transfers: the bank's reference of the transfer an admin confirmed "
        "(unique: one transfer confirms one payment); compare it with `reference`.",
    )
    created_at: datetime
    succeeded_at: datetime | None = None


class BankTransferConfirm(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount_fen: int = Field(gt=0, le=MAX_FEN, strict=True)
    bank_reference: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)
    ]


class LedgerBalance(BaseModel):
    account: LedgerAccount
    merchant_id: uuid.UUID | None
    balance_fen: int


class LedgerBalances(BaseModel):
    """Signed balances: positive is held by the platform, negative is owed or earned."""

    accounts: list[LedgerBalance]
    total_fen: int
