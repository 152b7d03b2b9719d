"""Money is integer fen (分) end to end; rates are basis points. Rounding is decided here only."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

CURRENCY = "CNY"
MAX_FEN = 10**15  # 10 trillion yuan: far above any real amount, far below 2**63


def apply_bps(amount_fen: int, rate_bps: int) -> int:
    """`amount_fen * rate_bps / 10000`, rounded half up to the fen (commission)."""
    return int((Decimal(amount_fen) * rate_bps / 10_000).quantize(Decimal(1), ROUND_HALF_UP))


def fen_to_yuan(amount_fen: int) -> Decimal:
    """Exact yuan with two decimals."""
    return (Decimal(amount_fen) / 100).quantize(Decimal("0.01"))


def fen_to_wan_yuan(amount_fen: int) -> Decimal:
    """万元 rounded half up to two decimals, as officials report upward."""
    return (Decimal(amount_fen) / 1_000_000).quantize(Decimal("0.01"), ROUND_HALF_UP)
