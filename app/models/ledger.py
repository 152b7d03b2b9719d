"""The ledger: signed, balanced, append-only entries that prove every balance.

Each money movement is one transaction (`txn_id`) of entries summing to zero. Sign convention:
positive is what the platform holds or is owed (cash), negative is what it owes or has earned
(merchant payables, commission, refunds on their way back). So every balance is signed and the
grand total is always 0.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.time import utcnow
from app.models.base import Base, BigInt
from app.models.types import str_enum


class LedgerAccount(enum.StrEnum):
    platform_cash = "platform_cash"
    """Money received from buyers and not yet paid out or refunded."""
    merchant_payable = "merchant_payable"
    """What each merchant is owed (negative: a liability)."""
    platform_commission = "platform_commission"
    """Commission earned (negative: income)."""
    refunds_in_transit = "refunds_in_transit"
    """Refunds approved but not yet confirmed by the provider."""
    payouts = "payouts"
    """Money paid out to merchants."""


class LedgerEntry(Base):
    __tablename__ = "ledger_entries"
    __table_args__ = (
        CheckConstraint("amount_fen <> 0", name="amount_not_zero"),
        Index("ix_ledger_entries_account_merchant_id", "account", "merchant_id"),
    )

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    txn_id: Mapped[uuid.UUID] = mapped_column(index=True)
    """Entries of one movement share it and sum to zero."""
    kind: Mapped[str] = mapped_column(String(40))
    """What moved: payment_captured, commission, refund_approved, refund_succeeded, …"""
    account: Mapped[LedgerAccount] = mapped_column(str_enum(LedgerAccount, "ledger_account"))
    merchant_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("merchants.id", ondelete="RESTRICT")
    )
    amount_fen: Mapped[int] = mapped_column(BigInt)
    """Signed amount in fen."""
    order_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("orders.id", ondelete="RESTRICT"), index=True
    )
    merchant_order_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("merchant_orders.id", ondelete="RESTRICT"), index=True
    )
    payment_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("payments.id", ondelete="RESTRICT")
    )
    refund_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("refunds.id", ondelete="RESTRICT")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
