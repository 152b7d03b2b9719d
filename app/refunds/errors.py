"""Errors of refunds."""

from __future__ import annotations

from app.core.errors import Conflict, NotFound, Unprocessable


class RefundNotFound(NotFound):
    code = "refund_not_found"


class RefundExceedsPurchase(Conflict):
    code = "refund_exceeds_purchase"


class OrderNotRefundable(Conflict):
    code = "order_not_refundable"


class InvalidRefundLine(Unprocessable):
    code = "invalid_refund_line"


class RefundSpansMerchants(Unprocessable):
    code = "refund_spans_merchants"
