"""Every ORM model, imported here so that Alembic and the mappers see them all."""

from app.models.audit import AuditEvent
from app.models.base import Base
from app.models.catalog import (
    AssistanceClass,
    CatalogVersion,
    Category,
    Product,
    ProductStatus,
    StockAdjustment,
)
from app.models.idempotency import IdempotencyKey, IdempotencyStatus
from app.models.ledger import LedgerAccount, LedgerEntry, LedgerKind
from app.models.merchant import (
    InvitationStatus,
    Merchant,
    MerchantInvitation,
    MerchantKind,
    MerchantStatus,
)
from app.models.order import (
    MerchantOrder,
    MerchantOrderStatus,
    Order,
    OrderLine,
    OrderStatus,
    PaymentMethod,
)
from app.models.payment import (
    Payment,
    PaymentStatus,
    Refund,
    RefundKind,
    RefundLine,
    RefundStatus,
    StripeEvent,
)
from app.models.ratelimit import RateLimit
from app.models.settlement import (
    AdjustmentKind,
    PayoutMethod,
    Settlement,
    SettlementAdjustment,
    SettlementLine,
    SettlementStatus,
)
from app.models.statistics import StatsBuyer, StatsCounted, StatsPeriod, StatsTarget
from app.models.user import BuyerType, MerchantRole, Role, User

__all__ = [
    "AdjustmentKind",
    "AssistanceClass",
    "AuditEvent",
    "Base",
    "BuyerType",
    "CatalogVersion",
    "Category",
    "IdempotencyKey",
    "IdempotencyStatus",
    "InvitationStatus",
    "LedgerAccount",
    "LedgerEntry",
    "LedgerKind",
    "Merchant",
    "MerchantInvitation",
    "MerchantKind",
    "MerchantOrder",
    "MerchantOrderStatus",
    "MerchantRole",
    "MerchantStatus",
    "Order",
    "OrderLine",
    "OrderStatus",
    "Payment",
    "PaymentMethod",
    "PaymentStatus",
    "PayoutMethod",
    "Product",
    "ProductStatus",
    "RateLimit",
    "Refund",
    "RefundKind",
    "RefundLine",
    "RefundStatus",
    "Role",
    "Settlement",
    "SettlementAdjustment",
    "SettlementLine",
    "SettlementStatus",
    "StatsBuyer",
    "StatsCounted",
    "StatsPeriod",
    "StatsTarget",
    "StockAdjustment",
    "StripeEvent",
    "User",
]
