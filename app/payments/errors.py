"""Errors of payments."""

from __future__ import annotations

from app.core.errors import Conflict, NotFound


class PaymentNotFound(NotFound):
    code = "payment_not_found"


class OrderNotPayable(Conflict):
    code = "order_not_payable"


class AmountMismatch(Conflict):
    code = "amount_mismatch"


class BankReferenceUsed(Conflict):
    """One bank transfer confirms one payment, and one outgoing transfer pays one refund."""

    code = "bank_reference_used"
