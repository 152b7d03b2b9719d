"""The baseline for `scripts/bench_catalog.py`: a bare FastAPI app on the same server.

One route, `GET /api/v1/products`, answers 20 product-like objects held in memory, validated and
serialised through a `response_model` with the same fields as the real list's items, wrapped in
`{items, next_cursor}`. No database, no middleware, no error handlers: what FastAPI, Pydantic and
uvicorn cost on their own. Serve it with

    .venv/bin/uvicorn --app-dir scripts bench_bare_app:app --workers 1 --no-access-log
"""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Literal

from fastapi import FastAPI, Query
from pydantic import BaseModel


class ProductStatus(enum.StrEnum):
    pending_review = "pending_review"
    active = "active"
    inactive = "inactive"
    rejected = "rejected"


class AssistanceClass(enum.StrEnum):
    agricultural = "agricultural"
    handicraft = "handicraft"


class CertificationRead(BaseModel):
    scheme: str
    certificate_no: str
    issuer: str
    valid_from: date
    valid_to: date


class ProductItem(BaseModel):
    """The fields of an item of the real `GET /api/v1/products` (`app.catalog.schemas`)."""

    id: uuid.UUID
    merchant_id: uuid.UUID
    merchant_name: str
    name: str
    description: str
    category: str
    unit: str
    price_fen: int
    currency: Literal["CNY"] = "CNY"
    stock: int
    sold_units: int
    origin_township: str
    assistance_class: AssistanceClass
    certification: CertificationRead | None
    images: list[str]
    weight_grams: int | None
    shelf_life_days: int | None
    status: ProductStatus
    status_reason: str | None
    version: int
    created_at: datetime
    updated_at: datetime


class ProductPage(BaseModel):
    items: list[ProductItem]
    next_cursor: str | None = None


def _items(count: int = 20) -> list[dict[str, object]]:
    base = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
    merchant_id = uuid.uuid4()
    items: list[dict[str, object]] = []
    for i in range(count):
        at = base - timedelta(minutes=17 * i)
        items.append(
            {
                "id": uuid.uuid4(),
                "merchant_id": merchant_id,
                "merchant_name": "巴塘县夏邛镇扎西种植专业合作社",
                "name": f"巴塘高原野生松茸 特级 {i + 1}号 500克礼盒",
                "description": (
                    "产自巴塘县海拔3500米以上的原始林区，由合作社社员清晨采摘，"
                    "当天分拣、冷链发货。肉质肥厚，香气浓郁，适合煲汤、炭烤。"
                    "每一份订单都计入山海协作消费帮扶。"
                ),
                "category": "mushrooms",
                "unit": "盒",
                "price_fen": 12800 + 100 * i,
                "currency": "CNY",
                "stock": 0 if i % 7 == 3 else 50 + i,
                "sold_units": 3 * i,
                "origin_township": "夏邛镇",
                "assistance_class": AssistanceClass.agricultural,
                "certification": {
                    "scheme": "消费帮扶产品认定",
                    "certificate_no": f"XFBF-2026-513335-{i:04d}",
                    "issuer": "四川省农业农村厅",
                    "valid_from": date(2026, 1, 1),
                    "valid_to": date(2027, 12, 31),
                }
                if i % 2 == 0
                else None,
                "images": [f"https://img.shanhai.example/p/{i}/{n}.jpg" for n in range(2)],
                "weight_grams": 500,
                "shelf_life_days": 7,
                "status": ProductStatus.active,
                "status_reason": None,
                "version": 1,
                "created_at": at,
                "updated_at": at,
            }
        )
    return items


ITEMS = _items()
NEXT_CURSOR = "WyJuZXdlc3QiLCIyMDI2LTExLTAxVDA4OjAwOjAwWiIsIjAwMDAiXQ"

app = FastAPI(title="Bare baseline")


@app.get("/api/v1/products", response_model=ProductPage)
async def list_products(
    limit: int = Query(default=20, ge=1, le=100),
    category: str | None = Query(default=None, max_length=40),
) -> dict[str, object]:
    """20 product-like objects from memory (the query parameters are parsed like the real ones)."""
    return {"items": ITEMS[:limit], "next_cursor": NEXT_CURSOR}
