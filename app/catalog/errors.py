"""Errors of the catalogue: each with a fixed status and a stable `code`."""

from __future__ import annotations

from app.core.errors import Conflict, Forbidden, Loc, NotFound, Unprocessable


class ProductNotFound(NotFound):
    code = "product_not_found"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail or "No such product, or it is not on sale.")


class MerchantNotFound(NotFound):
    code = "merchant_not_found"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail or "No such merchant.")


class NotMerchantMember(Forbidden):
    """The caller is a merchant member, but of another merchant."""

    code = "not_merchant_member"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail or "Only members of this product's merchant may do this.")


class MerchantRejected(Forbidden):
    code = "merchant_rejected"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(
            detail or "Your merchant's application was rejected: it cannot list products."
        )


class UnknownCategory(Unprocessable):
    code = "unknown_category"

    def __init__(self, slug: str, loc: Loc) -> None:
        super().__init__(f"Unknown category {slug!r}: see GET /api/v1/categories.", loc=loc)


class InvalidTransition(Conflict):
    code = "invalid_transition"


class InsufficientStock(Conflict):
    code = "insufficient_stock"


class StockLimitExceeded(Conflict):
    code = "stock_limit_exceeded"


class ConcurrentUpdate(Conflict):
    """The product kept changing under a PATCH sent without `If-Match`; retrying will do."""

    code = "concurrent_update"
