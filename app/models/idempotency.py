"""Idempotency keys: a caller's key, the hash of its first request, and that request's answer."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.time import utcnow
from app.models.base import Base
from app.models.types import str_enum


class IdempotencyStatus(enum.StrEnum):
    in_progress = "in_progress"
    completed = "completed"


class IdempotencyKey(Base):
    """A caller's `Idempotency-Key`, the hash of its first request, and that request's response."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (Index("uq_idempotency_keys_user_key", "user_id", "key", unique=True),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    """sha256 of method, path and body."""
    status: Mapped[IdempotencyStatus] = mapped_column(
        str_enum(IdempotencyStatus, "idempotency_status")
    )
    response_status: Mapped[int | None]
    response_body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    claimant: Mapped[int | None] = mapped_column(BigInteger)
    """The claiming process's liveness key (`app.core.liveness`) while `in_progress`."""
    expires_at: Mapped[datetime] = mapped_column(index=True)
    """Kept at least 24 hours."""
