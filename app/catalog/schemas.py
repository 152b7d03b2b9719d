"""Request and response shapes of the catalogue: categories, products, stock adjustments."""

from __future__ import annotations

import enum
import re
import uuid
from datetime import date, datetime
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from app.core.money import MAX_FEN, STRIPE_MAX_CNY_FEN
from app.core.validators import IsoDate, UtcTimestamp
from app.models import AssistanceClass, ProductStatus

MAX_STOCK = 1_000_000_000
"""Most units a product may hold; also the largest single adjustment."""

# Control characters (and lone surrogates, which PostgreSQL cannot store) never belong in a
# one-line field; free text keeps tab and line breaks.
_NOT_IN_LINE = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")
_NOT_IN_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


def _one_line(value: str) -> str:
    if _NOT_IN_LINE.search(value):
        raise ValueError("must not contain control characters")
    return value


def _free_text(value: str) -> str:
    if _NOT_IN_TEXT.search(value):
        raise ValueError("must not contain control characters other than tab and line breaks")
    return value


def _http_url(value: str) -> str:
    if _NOT_IN_LINE.search(value) or " " in value:
        raise ValueError("must not contain spaces or control characters")
    parts = urlsplit(value)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an absolute http(s) URL")
    return value


ProductName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    AfterValidator(_one_line),
]
Description = Annotated[
    str,
    StringConstraints(max_length=5000),
    AfterValidator(_free_text),
    Field(description="Free text, 0–5000 characters."),
]
CategorySlug = Annotated[
    str,
    StringConstraints(min_length=1, max_length=40),
    AfterValidator(_one_line),
    Field(description="A category `slug` from `GET /categories`.", examples=["mushrooms"]),
]
Unit = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=10),
    AfterValidator(_one_line),
    Field(description="Sales unit, e.g. 斤, kg, 克, 盒, 箱, 份, 套.", examples=["斤"]),
]
Township = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=40),
    AfterValidator(_one_line),
    Field(description="Where the product comes from (乡/镇).", examples=["夏邛镇"]),
]
ImageUrl = Annotated[
    str,
    StringConstraints(min_length=1, max_length=500),
    AfterValidator(_http_url),
    Field(description="An absolute http(s) URL, at most 500 characters."),
]
Images = Annotated[list[ImageUrl], Field(max_length=10, description="0–10 image URLs.")]
Price = Annotated[
    int,
    Field(
        strict=True,
        gt=0,
        le=STRIPE_MAX_CNY_FEN,
        description="Unit price in fen (分), > 0 and at most `MAX_ORDER_TOTAL_FEN` (by default "
        "99,999,999, Stripe's limit in CNY); beyond it a 422 naming `price_fen`.",
    ),
]
Stock = Annotated[int, Field(strict=True, ge=0, le=MAX_STOCK, description="Units on hand.")]
WeightGrams = Annotated[int, Field(strict=True, ge=1, le=1_000_000)]
ShelfLifeDays = Annotated[int, Field(strict=True, ge=1, le=36_500)]
Reason500 = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=500),
    AfterValidator(_free_text),
]
Reason200 = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(_free_text),
]


class CategoryRead(BaseModel):
    slug: str
    name: str


class Certification(BaseModel):
    """A consumption-assistance product certificate (消费帮扶产品认定, formerly 扶贫产品认定)."""

    model_config = ConfigDict(extra="forbid")

    scheme: Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=60),
        AfterValidator(_one_line),
        Field(examples=["消费帮扶产品认定"]),
    ]
    certificate_no: Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=60),
        AfterValidator(_one_line),
    ]
    issuer: Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
        AfterValidator(_one_line),
    ]
    valid_from: IsoDate = Field(description="First day of validity, `YYYY-MM-DD`.")
    valid_to: IsoDate = Field(
        description="Last day of validity, inclusive, `YYYY-MM-DD`; not before `valid_from`."
    )

    @model_validator(mode="after")
    def _period(self) -> Certification:
        if self.valid_to < self.valid_from:
            raise ValueError("valid_to must not be before valid_from")
        return self


class ProductCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: ProductName
    description: Description = ""
    category: CategorySlug
    unit: Unit
    price_fen: Price
    stock: Stock = 0
    origin_township: Township
    assistance_class: AssistanceClass
    certification: Certification | None = None
    images: Images = []
    weight_grams: WeightGrams | None = None
    shelf_life_days: ShelfLifeDays | None = None


_REQUIRED_ON_PATCH = (
    "name",
    "description",
    "category",
    "unit",
    "price_fen",
    "origin_township",
    "assistance_class",
    "images",
)


class ProductUpdate(BaseModel):
    """Any subset of the creation fields except `stock` (stock changes only by adjustments).
    `null` clears `certification`, `weight_grams` and `shelf_life_days`; the other fields cannot
    be null."""

    model_config = ConfigDict(extra="forbid")

    name: ProductName | SkipJsonSchema[None] = None
    description: Description | SkipJsonSchema[None] = None
    category: CategorySlug | SkipJsonSchema[None] = None
    unit: Unit | SkipJsonSchema[None] = None
    price_fen: Price | SkipJsonSchema[None] = None
    origin_township: Township | SkipJsonSchema[None] = None
    assistance_class: AssistanceClass | SkipJsonSchema[None] = None
    certification: Certification | None = None
    images: Images | SkipJsonSchema[None] = None
    weight_grams: WeightGrams | None = None
    shelf_life_days: ShelfLifeDays | None = None

    @field_validator(*_REQUIRED_ON_PATCH)
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("may be left out, but not null")
        return value


class RejectBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason500


class EmptyBody(BaseModel):
    """Action endpoints take an empty JSON object (or no body)."""

    model_config = ConfigDict(extra="forbid")


class StockAdjustmentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    delta: Annotated[
        int,
        Field(
            strict=True,
            ge=-MAX_STOCK,
            le=MAX_STOCK,
            description="Units added (> 0) or removed (< 0); not zero.",
        ),
    ]
    reason: Reason200

    @field_validator("delta")
    @classmethod
    def _not_zero(cls, value: int) -> int:
        if value == 0:
            raise ValueError("must not be zero")
        return value


class StockAdjustmentRead(BaseModel):
    id: uuid.UUID
    delta: int
    stock_after: int
    reason: str
    actor_id: uuid.UUID | None
    created_at: datetime


class CertificationRead(BaseModel):
    scheme: str
    certificate_no: str
    issuer: str
    valid_from: date
    valid_to: date


class ProductRead(BaseModel):
    id: uuid.UUID
    merchant_id: uuid.UUID
    merchant_name: str
    name: str
    description: str
    category: str = Field(description="The category's slug.")
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
    status_reason: str | None = Field(
        description="Why the product is in its status (the rejection reason), if anyone said."
    )
    version: int = Field(description='Bumped by every change; the `ETag` is `"<version>"`.')
    created_at: UtcTimestamp
    updated_at: UtcTimestamp


class ProductSort(enum.StrEnum):
    newest = "newest"
    price_asc = "price_asc"
    price_desc = "price_desc"
    best_selling = "best_selling"


_NO_CONTROL = r"^[^\x00-\x1f\x7f]*$"


class ProductListQuery(BaseModel):
    """The public list's query string, validated in one pass."""

    q: str | None = Field(
        default=None,
        max_length=100,
        pattern=_NO_CONTROL,
        description="Substring of the name or description; Latin letters match in either case; "
        "`%`, `_` and `\\` are matched literally. Blank: no filter.",
    )
    category: str | None = Field(
        default=None, max_length=40, pattern=_NO_CONTROL, description="A category slug."
    )
    merchant_id: uuid.UUID | None = Field(default=None, description="Only this merchant's.")
    township: str | None = Field(
        default=None, max_length=40, pattern=_NO_CONTROL, description="Exact `origin_township`."
    )
    min_price_fen: int | None = Field(
        default=None, ge=0, le=MAX_FEN, description="Lowest unit price, inclusive."
    )
    max_price_fen: int | None = Field(
        default=None, ge=0, le=MAX_FEN, description="Highest unit price, inclusive."
    )
    in_stock: bool = Field(
        default=False, description="`true`: only products with stock > 0; `false`: no filter."
    )
    sort: ProductSort = Field(
        default=ProductSort.newest,
        description="`newest` (created_at desc), `price_asc`, `price_desc`, `best_selling` "
        "(sold units desc); ties by id.",
    )
    limit: int = Field(default=20, ge=1, le=100, description="Page size, 1–100.")
    cursor: str | None = Field(
        default=None,
        description="Opaque cursor from the previous page's `next_cursor` (a bad one is "
        "`400 invalid_cursor`).",
    )


_ENTITY_TAG = re.compile(r'[ \t]*(W/)?"([\x21\x23-\x7e]*)"[ \t]*')


class IfMatch:
    """A parsed `If-Match` header (RFC 9110 §13.1.1): `*`, or a comma-separated list of entity
    tags. Products' tags are strong (`"3"` is version 3), and If-Match uses the strong
    comparison, so a weak tag (`W/"3"`) never matches. A value that is not `*` nor a list of
    entity tags (a bare `3`, an unclosed quote) matches nothing: the request fails with
    `412 precondition_failed` rather than applying unconditionally."""

    __slots__ = ("any", "versions")

    def __init__(self, header: str) -> None:
        self.any = header.strip() == "*"
        self.versions: set[int] = set()
        if self.any:
            return
        tags: set[int] = set()
        for member in header.split(","):
            if not member.strip():
                continue  # empty list elements are allowed (RFC 9110 §5.6.1)
            match = _ENTITY_TAG.fullmatch(member)
            if match is None:
                return  # not an entity-tag: the whole header matches nothing
            weak, opaque = match.groups()
            if weak is None and opaque.isdigit() and len(opaque) <= 18:
                tags.add(int(opaque))
        self.versions = tags

    def matches(self, version: int) -> bool:
        return self.any or version in self.versions
