"""Money is integer fen (分) end to end; rates are basis points. Rounding is decided here only."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from app.core.errors import Unprocessable

CURRENCY = "CNY"
MAX_FEN = 10**15  # 10 trillion yuan: far above any real amount, far below 2**63
STRIPE_MAX_CNY_FEN = 99_999_999
"""The largest amount Stripe takes in CNY (999,999.99 元): the ceiling of every price, line total
and order total (`MAX_ORDER_TOTAL_FEN` may set it lower, never higher)."""


class AmountTooLarge(Unprocessable):
    """An amount beyond the business ceiling, named by `loc` in `errors` like a validation error."""

    code = "validation_error"

    def __init__(self, detail: str, *, loc: list[str | int], limit: int) -> None:
        super().__init__(
            detail,
            loc=loc,
            msg=f"Input should be less than or equal to {limit}",
            error_type="less_than_equal",
            extra={"max_fen": limit},
        )


def ensure_price_within(price_fen: int | None, ceiling: int) -> None:
    """A product's `price_fen` at most the ceiling (`MAX_ORDER_TOTAL_FEN`)."""
    if price_fen is not None and price_fen > ceiling:
        raise AmountTooLarge(
            f"A price may be at most {ceiling} fen.", loc=["body", "price_fen"], limit=ceiling
        )


def apply_bps(amount_fen: int, rate_bps: int) -> int:
    """`amount_fen * rate_bps / 10000`, rounded half up to the fen (commission)."""
    return int((Decimal(amount_fen) * rate_bps / 10_000).quantize(Decimal(1), ROUND_HALF_UP))


def fen_to_yuan(amount_fen: int) -> Decimal:
    """Exact yuan with two decimals."""
    return (Decimal(amount_fen) / 100).quantize(Decimal("0.01"))


def fen_to_wan_yuan(amount_fen: int) -> Decimal:
    """万元 rounded half up to two decimals, as officials report upward."""
    return (Decimal(amount_fen) / 1_000_000).quantize(Decimal("0.01"), ROUND_HALF_UP)
