"""Accounts: buyers, merchant members, admins and officials; and login throttling."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.time import utcnow
from app.models.base import Base, BigInt, IdMixin, TimestampMixin
from app.models.types import str_enum


class Role(enum.StrEnum):
    buyer = "buyer"
    merchant = "merchant"
    admin = "admin"
    official = "official"


class BuyerType(enum.StrEnum):
    individual = "individual"
    budget_unit = "budget_unit"
    union = "union"
    enterprise = "enterprise"
    public_institution = "public_institution"
    social_org = "social_org"


class MerchantRole(enum.StrEnum):
    owner = "owner"
    staff = "staff"


class User(IdMixin, TimestampMixin, Base):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(
            "(role = 'merchant' AND merchant_id IS NOT NULL AND merchant_role IS NOT NULL)"
            " OR (role <> 'merchant' AND merchant_id IS NULL AND merchant_role IS NULL)",
            name="merchant_membership",
        ),
    )

    email: Mapped[str] = mapped_column(String(254), unique=True)
    """Lower-cased; the login name."""
    password_hash: Mapped[str] = mapped_column(String(255))
    display_name: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(16))
    """E.164, e.g. +8613800000000."""
    region_code: Mapped[str] = mapped_column(String(6))
    """Division code of the buyer's home: decides the `purchased` / `helped_sold` indicator."""
    role: Mapped[Role] = mapped_column(str_enum(Role, "user_role"))
    buyer_type: Mapped[BuyerType | None] = mapped_column(str_enum(BuyerType, "buyer_type"))
    """Set by an admin once an organisation is verified; kept when a buyer joins a merchant."""
    merchant_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("merchants.id", ondelete="RESTRICT"), index=True
    )
    merchant_role: Mapped[MerchantRole | None] = mapped_column(
        str_enum(MerchantRole, "merchant_role")
    )
    disabled: Mapped[bool] = mapped_column(default=False)
    """A disabled user's tokens stop working at once: every request re-reads this flag."""


class LoginFailure(Base):
    """One failed sign-in, kept for the throttling window; shared by every API process."""

    __tablename__ = "login_failures"
    __table_args__ = (Index("ix_login_failures_key_at", "key", "at"),)

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(300))
    """`account:<email>` or `address:<client ip>`."""
    at: Mapped[datetime] = mapped_column(default=utcnow)
