"""Errors of checkout and the order lifecycle."""

from __future__ import annotations

from app.core.errors import Conflict, NotFound, Unprocessable
from app.core.money import AmountTooLarge


class OrderNotFound(NotFound):
    code = "order_not_found"


class MerchantOrderNotFound(NotFound):
    code = "merchant_order_not_found"


class InsufficientStock(Conflict):
    code = "insufficient_stock"


class ProductUnavailable(Conflict):
    code = "product_unavailable"


class InvalidTransition(Conflict):
    code = "invalid_transition"


class OrderInProgress(Conflict):
    code = "orders_in_progress"


class InvalidOrderLine(Unprocessable):
    code = "invalid_order_line"


class TooManyUnpaidOrders(Conflict):
    code = "too_many_unpaid_orders"


class OrderTotalTooLarge(AmountTooLarge):
    """A line total or the order total beyond `MAX_ORDER_TOTAL_FEN`: 422, `loc` names the
    quantity of the line that crosses it."""

    code = "order_total_too_large"
