"""Errors of payments."""

from __future__ import annotations

from app.core.errors import Conflict, NotFound


class PaymentNotFound(NotFound):
    code = "payment_not_found"


class OrderNotPayable(Conflict):
    code = "order_not_payable"


class AmountMismatch(Conflict):
    code = "amount_mismatch"
