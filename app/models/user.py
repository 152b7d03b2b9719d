"""Accounts: buyers, merchant members, admins and officials."""

from __future__ import annotations

import enum
import uuid

from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, IdMixin, TimestampMixin
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
