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
    """Refunds approved and owed to buyers, not yet paid (on their way at Stripe, refused by it
    and awaiting a retry, or awaiting an admin's bank transfer)."""
    payouts = "payouts"
    """Payouts due: statements issued and not yet paid (negative, per merchant). A statement
    moves its net here from `merchant_payable`; paying it moves it out to `platform_cash`."""


class LedgerKind(enum.StrEnum):
    """What a posting records; stored in `ledger_entries.kind` (a string column, so a new kind
    needs no migration). Every posting names one of these."""

    payment_captured = "payment_captured"
    """A buyer's payment: cash in, owed to each merchant."""
    commission = "commission"
    """Commission on a paid order, moved from the merchant's payable to the platform."""
    refund_approved = "refund_approved"
    """An approved refund: owed to the buyer instead of the merchant."""
    commission_adjusted = "commission_adjusted"
    """Commission recomputed on gross less refunds after a refund."""
    refund_paid = "refund_paid"
    """A refund paid out to the buyer (provider confirmed, or a bank transfer recorded)."""
    refund_failed = "refund_failed"
    """No longer posted: a refund the provider refuses stays owed to the buyer. Kept for the
    entries of refunds that failed before that rule (their approval was reversed)."""
    late_payment_captured = "late_payment_captured"
    """A payment for an order already cancelled, owed back to the buyer in full."""
    settlement_issued = "settlement_issued"
    """A statement's net, moved from the merchant's payable to `payouts` (due to be paid)."""
    payout_paid = "payout_paid"
    """A statement paid (bank transfer or Stripe transfer): `payouts` settled from cash."""


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
    """What moved: a `LedgerKind`."""
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
