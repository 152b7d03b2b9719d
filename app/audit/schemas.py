"""Audit events as the API shows them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class AuditEventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    at: datetime
    actor_id: uuid.UUID | None = Field(
        description="The user who acted; null for the scheduled jobs."
    )
    action: str = Field(
        description="What happened, e.g. `merchant.approved`, `product.stock_adjusted`."
    )
    subject_type: str = Field(description="The kind of thing acted on, e.g. `merchant`.")
    subject_id: str = Field(description="Its id.")
    detail: dict[str, Any] = Field(description="Action-specific facts, e.g. a reason or amount.")


class AuditEventFilters(BaseModel):
    """Exact-match filters; all given ones must hold."""

    model_config = ConfigDict(extra="forbid")

    action: str | None = Field(default=None, max_length=60)
    subject_type: str | None = Field(default=None, max_length=40)
    subject_id: str | None = Field(default=None, max_length=64)
    actor_id: uuid.UUID | None = None
