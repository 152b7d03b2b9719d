"""Categories, products and the kept-forever record of every stock adjustment."""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.time import utcnow
from app.models.base import Base, BigInt, IdMixin, TimestampMixin
from app.models.types import PortableJSON, str_enum


class Category(Base):
    __tablename__ = "categories"

    slug: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(40))
    position: Mapped[int] = mapped_column(default=0)


class ProductStatus(enum.StrEnum):
    pending_review = "pending_review"
    active = "active"
    inactive = "inactive"
    rejected = "rejected"


class AssistanceClass(enum.StrEnum):
    agricultural = "agricultural"
    """农畜牧产品"""
    handicraft = "handicraft"
    """特色手工艺品"""


class Product(IdMixin, TimestampMixin, Base):
    __tablename__ = "products"
    __table_args__ = (
        CheckConstraint("price_fen > 0", name="price_positive"),
        CheckConstraint("stock >= 0", name="stock_not_negative"),
        CheckConstraint("sold_units >= 0", name="sold_units_not_negative"),
        CheckConstraint("version >= 1", name="version_positive"),
        # The public list's three sort orders, each a keyset over (sort key, id).
        Index("ix_products_status_created_at_id", "status", "created_at", "id"),
        Index("ix_products_status_price_fen_id", "status", "price_fen", "id"),
        Index("ix_products_status_sold_units_id", "status", "sold_units", "id"),
    )

    merchant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("merchants.id", ondelete="RESTRICT"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text, default="")
    category_slug: Mapped[str] = mapped_column(
        ForeignKey("categories.slug", ondelete="RESTRICT"), index=True
    )
    unit: Mapped[str] = mapped_column(String(10))
    price_fen: Mapped[int] = mapped_column(BigInt)
    """Current unit price in fen; orders copy it, so a change never alters an existing order."""
    stock: Mapped[int] = mapped_column(BigInt, default=0)
    """Units on hand; never below zero (CHECK), changed only by conditional UPDATEs."""
    sold_units: Mapped[int] = mapped_column(BigInt, default=0)
    """Units sold in paid orders: the `best_selling` sort key."""
    origin_township: Mapped[str] = mapped_column(String(40), index=True)
    assistance_class: Mapped[AssistanceClass] = mapped_column(
        str_enum(AssistanceClass, "assistance_class")
    )
    cert_scheme: Mapped[str | None] = mapped_column(String(60))
    cert_no: Mapped[str | None] = mapped_column(String(60))
    cert_issuer: Mapped[str | None] = mapped_column(String(100))
    cert_valid_from: Mapped[date | None]
    cert_valid_to: Mapped[date | None]
    images: Mapped[list[str]] = mapped_column(PortableJSON, default=list)
    weight_grams: Mapped[int | None]
    shelf_life_days: Mapped[int | None]
    status: Mapped[ProductStatus] = mapped_column(
        str_enum(ProductStatus, "product_status"), default=ProductStatus.pending_review
    )
    """pending_review → active | rejected; active ⇄ inactive."""
    status_reason: Mapped[str | None] = mapped_column(String(500))
    version: Mapped[int] = mapped_column(default=1)
    """Bumped on every change; the ETag."""


class StockAdjustment(Base):
    """A change of stock by a merchant member. Never updated or deleted."""

    __tablename__ = "stock_adjustments"
    __table_args__ = (
        CheckConstraint("delta <> 0", name="delta_not_zero"),
        CheckConstraint("stock_after >= 0", name="stock_after_not_negative"),
        Index("ix_stock_adjustments_product_id_created_at", "product_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    product_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("products.id", ondelete="RESTRICT"))
    delta: Mapped[int] = mapped_column(BigInt)
    """Signed units added (+) or removed (−)."""
    stock_after: Mapped[int] = mapped_column(BigInt)
    reason: Mapped[str] = mapped_column(String(200))
    actor_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


CATALOG_VERSION_SHARDS = 16
"""Rows of `catalog_version` on PostgreSQL (SQLite uses row 0 only)."""


class CatalogVersion(Base):
    """The catalogue's version: the sum of `version` over the rows changes whenever a committed
    transaction changed anything a public product list shows (a product row, or a merchant's
    name or status). Database triggers bump it in the writing transaction itself (migration
    `c4a7e2f19b3d`), so no code path can forget to; the API keeps rendered list pages per
    process keyed by it (`app.catalog.pages`).

    On PostgreSQL the triggers are deferred to commit and spread over `CATALOG_VERSION_SHARDS`
    rows (by backend pid), so concurrent checkouts neither hold nor queue for one hot row lock
    for the length of their transaction."""

    __tablename__ = "catalog_version"

    shard: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(BigInt, default=0)
