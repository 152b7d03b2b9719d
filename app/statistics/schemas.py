"""Schemas of the consumption-assistance statistics."""

from __future__ import annotations

import enum
from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

MAX_TARGET_FEN = 10**15
"""A sanity bound: ten trillion yuan."""


class GroupBy(enum.StrEnum):
    month = "month"
    quarter = "quarter"
    year = "year"
    indicator = "indicator"
    buyer_type = "buyer_type"
    buyer_region = "buyer_region"
    product_class = "product_class"
    category = "category"
    merchant = "merchant"
    township = "township"


TIME_GROUPS = (GroupBy.month, GroupBy.quarter, GroupBy.year)


class AssistanceTotals(BaseModel):
    amount_fen: int = Field(description="Paid amount less refunds of the counted lines, in fen.")
    order_count: int = Field(
        description="Distinct orders with a counted, not wholly refunded line."
    )
    units: int = Field(description="Units paid less units refunded.")
    buyer_count: int = Field(description="Distinct buyers of those orders.")


class AssistanceRow(AssistanceTotals):
    key: str = Field(
        description="Stable id: `2026-03`, `2026-Q1`, `2026`, an indicator, a merchant id, "
        "a township name, a region code, a category slug."
    )
    label: str = Field(description="Display name, in Chinese.")
    linked_households: int | None = Field(
        default=None,
        description="Grouped by merchant or township only: households linked to the merchant's "
        "income (利益联结); for a township, the sum over the western merchants registered there.",
    )


class AssistanceReport(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: date = Field(alias="from")
    to: date
    group_by: GroupBy
    rows: list[AssistanceRow]
    totals: AssistanceTotals = Field(
        description="Distinct counts over the whole range: an order or buyer in several rows "
        "counts once here."
    )
    counting_rule: str = Field(description="The counting rule, as written in the exports.")


class TargetsUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    purchased_fen: int = Field(ge=0, le=MAX_TARGET_FEN, strict=True, description="采购 target.")
    helped_sold_fen: int = Field(
        ge=0, le=MAX_TARGET_FEN, strict=True, description="帮助销售 target."
    )


class TargetsRead(BaseModel):
    year: int
    purchased_fen: int
    helped_sold_fen: int
    updated_at: datetime


class IndicatorProgress(BaseModel):
    indicator: str
    label: str
    target_fen: int | None = Field(description="Null while no target is set for the year.")
    actual_fen: int = Field(description="The year's figure so far (1 January to today, Shanghai).")
    ratio: float | None = Field(description="actual / target, 4 decimals; null without a target.")


class ProgressRead(BaseModel):
    year: int
    as_of: datetime
    indicators: list[IndicatorProgress]
