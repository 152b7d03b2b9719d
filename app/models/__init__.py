"""Every ORM model, imported here so that Alembic and the mappers see them all."""

from app.models.audit import AuditEvent
from app.models.base import Base
from app.models.catalog import AssistanceClass, Category, Product, ProductStatus, StockAdjustment
from app.models.merchant import Merchant, MerchantKind, MerchantStatus
from app.models.user import BuyerType, LoginFailure, MerchantRole, Role, User

__all__ = [
    "AssistanceClass",
    "AuditEvent",
    "Base",
    "BuyerType",
    "Category",
    "LoginFailure",
    "Merchant",
    "MerchantKind",
    "MerchantRole",
    "MerchantStatus",
    "Product",
    "ProductStatus",
    "Role",
    "StockAdjustment",
    "User",
]
