"""Merchants: the cooperatives, enterprises, individual businesses and village collectives."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, false, text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, IdMixin, TimestampMixin
from app.models.types import str_enum


class MerchantKind(enum.StrEnum):
    cooperative = "cooperative"
    enterprise = "enterprise"
    individual_business = "individual_business"
    village_collective = "village_collective"


class MerchantStatus(enum.StrEnum):
    pending = "pending"
    approved = "approved"
    rejected = "rejected"
    suspended = "suspended"


class Merchant(IdMixin, TimestampMixin, Base):
    __tablename__ = "merchants"
    __table_args__ = (
        CheckConstraint(
            "households >= 0 AND poverty_alleviated_households >= 0 AND monitored_households >= 0",
            name="households_not_negative",
        ),
    )

    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[MerchantKind] = mapped_column(str_enum(MerchantKind, "merchant_kind"))
    uscc: Mapped[str] = mapped_column(String(18), unique=True)
    """Unified social credit code (统一社会信用代码), check character verified."""
    legal_representative: Mapped[str] = mapped_column(String(50))
    contact_phone: Mapped[str] = mapped_column(String(16))
    """E.164 mainland mobile number."""
    region_code: Mapped[str] = mapped_column(String(6), index=True)
    """Where the merchant is registered: only the western county's merchants count as assistance."""
    township: Mapped[str] = mapped_column(String(40))
    address: Mapped[str] = mapped_column(String(200))
    households: Mapped[int] = mapped_column(default=0)
    """Households linked to the merchant's income (利益联结), counts only."""
    poverty_alleviated_households: Mapped[int] = mapped_column(default=0)
    monitored_households: Mapped[int] = mapped_column(default=0)
    bank_name: Mapped[str] = mapped_column(String(100))
    bank_account_name: Mapped[str] = mapped_column(String(100))
    bank_account_no: Mapped[str] = mapped_column(String(34))
    """Full account number for payouts; only ever shown masked."""
    status: Mapped[MerchantStatus] = mapped_column(
        str_enum(MerchantStatus, "merchant_status"), default=MerchantStatus.pending, index=True
    )
    """pending → approved | rejected; approved ⇄ suspended."""
    status_reason: Mapped[str | None] = mapped_column(String(500))
    approved_at: Mapped[datetime | None]
    stripe_account_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    """The merchant's Stripe connected account, when it has one; payouts go by bank otherwise."""
    payouts_enabled: Mapped[bool] = mapped_column(default=False, server_default=false())
    """Mirrors the connected account's `payouts_enabled` (kept current by `account.updated`)."""
    payouts_on_hold: Mapped[bool] = mapped_column(default=False, server_default=false())
    """Set when the owner changes the bank account; cleared when an admin verifies it. While set,
    no payout of any kind reaches the merchant."""


class InvitationStatus(enum.StrEnum):
    pending = "pending"
    accepted = "accepted"
    declined = "declined"
    replaced = "replaced"


_PENDING = text("status = 'pending'")


class MerchantInvitation(IdMixin, TimestampMixin, Base):
    """An owner's invitation of an e-mail address to join its merchant as staff.

    Stored only when the address was free or a buyer's when the owner invited it; the invited
    buyer accepts or declines while signed in. An invitation past `expires_at` can no longer be
    answered (it reads as `expired`)."""

    __tablename__ = "merchant_invitations"
    __table_args__ = (
        # At most one pending invitation per merchant and address: inviting again replaces it.
        Index(
            "uq_merchant_invitations_pending",
            "merchant_id",
            "email",
            unique=True,
            sqlite_where=_PENDING,
            postgresql_where=_PENDING,
        ),
    )

    merchant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("merchants.id", ondelete="RESTRICT"), index=True
    )
    email: Mapped[str] = mapped_column(String(254), index=True)
    """Lower-cased; the account with this e-mail (now or later) is the one invited."""
    invited_by_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    status: Mapped[InvitationStatus] = mapped_column(
        str_enum(InvitationStatus, "invitation_status"), default=InvitationStatus.pending
    )
    """pending → accepted | declined | replaced (by a newer invitation of the same address)."""
    expires_at: Mapped[datetime]
    decided_at: Mapped[datetime | None]
