"""Counters of the abuse limits (sign-in, sign-up, checkout), shared by every API process.

One row per key (`login:pair:<email>|<address>`, `signup:<address>`, `checkout:<buyer id>`, …),
always changed by one atomic statement (`app.core.ratelimit`). Times are Unix milliseconds, so
the same integer arithmetic runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base


class RateLimit(Base):
    """A fixed window of `hits` that began at `window_start_ms`; for a gate, the current spacing
    (`delay_ms`) and the time before which no further attempt passes (`blocked_until_ms`)."""

    __tablename__ = "rate_limits"

    key: Mapped[str] = mapped_column(String(400), primary_key=True)
    window_start_ms: Mapped[int] = mapped_column(BigInteger)
    hits: Mapped[int] = mapped_column(Integer)
    delay_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    blocked_until_ms: Mapped[int] = mapped_column(BigInteger, default=0)
