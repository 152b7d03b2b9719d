"""Writes and member reads of the catalogue: products, their review workflow and their stock.

Every change is one conditional UPDATE (on the expected `status`, `version` or stock) with a
row-count check, so concurrent requests can never both apply; every change bumps `version`.
Functions flush, never commit: the request's session commits.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Row, Table, and_, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import record
from app.catalog.errors import (
    ConcurrentUpdate,
    InsufficientStock,
    InvalidTransition,
    MerchantNotFound,
    MerchantRejected,
    NotMerchantMember,
    ProductNotFound,
    StockLimitExceeded,
    UnknownCategory,
)
from app.catalog.queries import PRODUCT_COLUMNS, categories, merchants, product_dict, products
from app.catalog.schemas import (
    MAX_STOCK,
    IfMatch,
    ProductCreate,
    ProductRead,
    ProductUpdate,
    StockAdjustmentCreate,
    StockAdjustmentRead,
)
from app.core.errors import Forbidden, PreconditionFailed
from app.core.pagination import Page, decode_cursor, encode_cursor
from app.core.time import utcnow
from app.models import (
    MerchantStatus,
    ProductStatus,
    Role,
    StockAdjustment,
    User,
)

adjustments = cast(Table, StockAdjustment.__table__)


def _load_statement() -> Any:
    return select(
        *PRODUCT_COLUMNS,
        merchants.c.name.label("merchant_name"),
        merchants.c.status.label("merchant_status"),
    ).select_from(products.join(merchants, merchants.c.id == products.c.merchant_id))


_LOADED = _load_statement()
_N = len(PRODUCT_COLUMNS)
_RESUBMITTED = "Edited after rejection: awaiting review again."
_RECERTIFY = "Certification changed: awaiting review."


class _Loaded:
    """A product row as loaded for a decision: its response fields and merchant status."""

    __slots__ = ("data", "merchant_status")

    def __init__(self, row: Row[Any]) -> None:
        self.data = product_dict(row[:_N], row[_N])
        self.merchant_status: MerchantStatus = row[_N + 1]

    @property
    def id(self) -> uuid.UUID:
        return self.data["id"]  # type: ignore[no-any-return]

    @property
    def merchant_id(self) -> uuid.UUID:
        return self.data["merchant_id"]  # type: ignore[no-any-return]

    @property
    def status(self) -> ProductStatus:
        return self.data["status"]  # type: ignore[no-any-return]

    @property
    def version(self) -> int:
        return self.data["version"]  # type: ignore[no-any-return]

    @property
    def on_sale(self) -> bool:
        return (
            self.status == ProductStatus.active and self.merchant_status == MerchantStatus.approved
        )


async def _load(session: AsyncSession, product_id: uuid.UUID) -> _Loaded | None:
    row = (await session.execute(_LOADED.where(products.c.id == product_id))).first()
    return None if row is None else _Loaded(row)


def _is_member(user: User | None, merchant_id: uuid.UUID) -> bool:
    return user is not None and user.role == Role.merchant and user.merchant_id == merchant_id


async def _load_for_member(session: AsyncSession, user: User, product_id: uuid.UUID) -> _Loaded:
    """The product if `user` is a member of its merchant; otherwise 404 when it is not on sale
    (its existence is not revealed) and 403 when it is."""
    product = await _load(session, product_id)
    if product is None:
        raise ProductNotFound()
    if not _is_member(user, product.merchant_id):
        if product.on_sale or user.role == Role.admin:
            raise NotMerchantMember()  # it sees the product: 403
        raise ProductNotFound()
    return product


def _read(data: dict[str, Any]) -> ProductRead:
    return ProductRead.model_validate(data)


def _returned(row: Row[Any] | None, merchant_name: str) -> ProductRead | None:
    return None if row is None else _read(product_dict(row, merchant_name))


async def _ensure_category(session: AsyncSession, slug: str) -> None:
    found = await session.scalar(select(categories.c.slug).where(categories.c.slug == slug))
    if found is None:
        raise UnknownCategory(slug, ["body", "category"])


def _cert_values(body: ProductCreate | ProductUpdate) -> dict[str, Any]:
    cert = body.certification
    return {
        "cert_scheme": cert.scheme if cert else None,
        "cert_no": cert.certificate_no if cert else None,
        "cert_issuer": cert.issuer if cert else None,
        "cert_valid_from": cert.valid_from if cert else None,
        "cert_valid_to": cert.valid_to if cert else None,
    }


# --- reads ------------------------------------------------------------------------------------


async def get_product(
    session: AsyncSession, user: User | None, product_id: uuid.UUID
) -> ProductRead:
    """The product if it is on sale, or the caller is an admin or a member of its merchant;
    otherwise `404 product_not_found`."""
    product = await _load(session, product_id)
    if product is None or not (
        product.on_sale
        or (user is not None and user.role == Role.admin)
        or _is_member(user, product.merchant_id)
    ):
        raise ProductNotFound()
    return _read(product.data)


# --- creation and edits -----------------------------------------------------------------------


async def create_product(session: AsyncSession, user: User, body: ProductCreate) -> ProductRead:
    """A new product of the caller's merchant, `pending_review`, version 1.
    `403 merchant_rejected` if the merchant's application was rejected; `422 unknown_category`."""
    assert user.merchant_id is not None
    merchant = (
        await session.execute(
            select(merchants.c.name, merchants.c.status).where(merchants.c.id == user.merchant_id)
        )
    ).one()
    if merchant.status == MerchantStatus.rejected:
        raise MerchantRejected()
    await _ensure_category(session, body.category)
    now = utcnow()
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "merchant_id": user.merchant_id,
        "name": body.name,
        "description": body.description,
        "category_slug": body.category,
        "unit": body.unit,
        "price_fen": body.price_fen,
        "stock": body.stock,
        "sold_units": 0,
        "origin_township": body.origin_township,
        "assistance_class": body.assistance_class,
        "images": list(body.images),
        "weight_grams": body.weight_grams,
        "shelf_life_days": body.shelf_life_days,
        "status": ProductStatus.pending_review,
        "status_reason": None,
        "version": 1,
        "created_at": now,
        "updated_at": now,
        **_cert_values(body),
    }
    row = (await session.execute(insert(products).values(values).returning(*PRODUCT_COLUMNS))).one()
    return _read(product_dict(row, merchant.name))


_PLAIN_FIELDS = (
    "name",
    "description",
    "unit",
    "price_fen",
    "origin_township",
    "assistance_class",
    "images",
    "weight_grams",
    "shelf_life_days",
)


def _cert_tuple(data: dict[str, Any]) -> tuple[Any, ...] | None:
    cert = data["certification"]
    if cert is None:
        return None
    return (
        cert["scheme"],
        cert["certificate_no"],
        cert["issuer"],
        cert["valid_from"],
        cert["valid_to"],
    )


async def update_product(
    session: AsyncSession,
    user: User,
    product_id: uuid.UUID,
    body: ProductUpdate,
    if_match: IfMatch | None,
) -> ProductRead:
    """Apply the fields present in `body` and bump `version`, atomically with the `If-Match`
    check (`412 precondition_failed`). Editing a `rejected` product resubmits it
    (`pending_review`); a changed certification sends an `active` or `inactive` product back to
    `pending_review`. An empty body changes nothing."""
    for _attempt in range(3):
        product = await _load_for_member(session, user, product_id)
        if if_match is not None and not if_match.matches(product.version):
            raise PreconditionFailed(
                f'The product is at version {product.version} (ETag "{product.version}"), '
                "not the one in If-Match: fetch it again and re-apply your change.",
                headers={"ETag": f'"{product.version}"'},
            )
        sent = body.model_fields_set
        if not sent:
            return _read(product.data)
        values: dict[str, Any] = {
            name: getattr(body, name) for name in _PLAIN_FIELDS if name in sent
        }
        if "category" in sent:
            assert body.category is not None
            await _ensure_category(session, body.category)
            values["category_slug"] = body.category
        if "certification" in sent:
            values.update(_cert_values(body))
        if product.status == ProductStatus.rejected:
            values["status"] = ProductStatus.pending_review
            values["status_reason"] = _RESUBMITTED
        elif (
            "certification" in sent
            and product.status in (ProductStatus.active, ProductStatus.inactive)
            and _certification_changed(product.data, body)
        ):
            values["status"] = ProductStatus.pending_review
            values["status_reason"] = _RECERTIFY
        row = (
            await session.execute(
                update(products)
                .where(and_(products.c.id == product_id, products.c.version == product.version))
                .values({**values, "version": products.c.version + 1, "updated_at": utcnow()})
                .returning(*PRODUCT_COLUMNS)
            )
        ).first()
        result = _returned(row, product.data["merchant_name"])
        if result is not None:
            return result
        if if_match is not None:  # someone else changed it between our read and our write
            raise PreconditionFailed("The product changed while you were editing it.")
    raise ConcurrentUpdate("The product kept changing; try again.")


def _certification_changed(data: dict[str, Any], body: ProductUpdate) -> bool:
    cert = body.certification
    new = (
        None
        if cert is None
        else (cert.scheme, cert.certificate_no, cert.issuer, cert.valid_from, cert.valid_to)
    )
    return new != _cert_tuple(data)


# --- the review workflow ----------------------------------------------------------------------


async def _transition(
    session: AsyncSession,
    product: _Loaded,
    expected: ProductStatus,
    target: ProductStatus,
    verb: str,
    reason: str | None = None,
) -> ProductRead:
    if product.status != expected:
        raise InvalidTransition(
            f"Cannot {verb} a product that is {product.status.value} (only a {expected.value} one)."
        )
    row = (
        await session.execute(
            update(products)
            .where(and_(products.c.id == product.id, products.c.status == expected))
            .values(
                status=target,
                status_reason=reason,
                version=products.c.version + 1,
                updated_at=utcnow(),
            )
            .returning(*PRODUCT_COLUMNS)
        )
    ).first()
    result = _returned(row, product.data["merchant_name"])
    if result is None:  # another request moved it first
        raise InvalidTransition(f"Cannot {verb} the product: its status just changed.")
    return result


async def _load_any(session: AsyncSession, product_id: uuid.UUID) -> _Loaded:
    product = await _load(session, product_id)
    if product is None:
        raise ProductNotFound()
    return product


async def _load_for_review(session: AsyncSession, user: User, product_id: uuid.UUID) -> _Loaded:
    """The product, for an admin. Anyone else: 404 unless it sees the product (on sale, or of
    its own merchant), then 403."""
    product = await _load_any(session, product_id)
    if user.role != Role.admin:
        if not (product.on_sale or _is_member(user, product.merchant_id)):
            raise ProductNotFound()
        raise Forbidden("Only admins review products.")
    return product


async def approve_product(session: AsyncSession, admin: User, product_id: uuid.UUID) -> ProductRead:
    """`pending_review → active`: on sale at once if its merchant is approved."""
    product = await _load_for_review(session, admin, product_id)
    result = await _transition(
        session, product, ProductStatus.pending_review, ProductStatus.active, "approve"
    )
    await record(
        session,
        actor_id=admin.id,
        action="product.approved",
        subject_type="product",
        subject_id=product_id,
        detail={"version": result.version},
    )
    return result


async def reject_product(
    session: AsyncSession, admin: User, product_id: uuid.UUID, reason: str
) -> ProductRead:
    """`pending_review → rejected`, keeping `reason` as `status_reason`."""
    product = await _load_for_review(session, admin, product_id)
    result = await _transition(
        session, product, ProductStatus.pending_review, ProductStatus.rejected, "reject", reason
    )
    await record(
        session,
        actor_id=admin.id,
        action="product.rejected",
        subject_type="product",
        subject_id=product_id,
        detail={"reason": reason, "version": result.version},
    )
    return result


async def activate_product(session: AsyncSession, user: User, product_id: uuid.UUID) -> ProductRead:
    """`inactive → active` (back on sale), by a member of the product's merchant."""
    product = await _load_for_member(session, user, product_id)
    return await _transition(
        session, product, ProductStatus.inactive, ProductStatus.active, "activate"
    )


async def deactivate_product(
    session: AsyncSession, user: User, product_id: uuid.UUID
) -> ProductRead:
    """`active → inactive` (off sale), by a member of the product's merchant."""
    product = await _load_for_member(session, user, product_id)
    return await _transition(
        session, product, ProductStatus.active, ProductStatus.inactive, "deactivate"
    )


# --- stock ------------------------------------------------------------------------------------


async def adjust_stock(
    session: AsyncSession, user: User, product_id: uuid.UUID, body: StockAdjustmentCreate
) -> ProductRead:
    """Add `delta` (negative: remove) to the stock with one conditional UPDATE: `409
    insufficient_stock` if the stock would go below zero, `409 stock_limit_exceeded` above
    1,000,000,000. Keeps a `StockAdjustment` row and an audit event."""
    product = await _load_for_member(session, user, product_id)
    delta = body.delta
    new_stock = products.c.stock + delta
    bound = new_stock >= 0 if delta < 0 else new_stock <= MAX_STOCK
    row = (
        await session.execute(
            update(products)
            .where(and_(products.c.id == product_id, bound))
            .values(stock=new_stock, version=products.c.version + 1, updated_at=utcnow())
            .returning(*PRODUCT_COLUMNS)
        )
    ).first()
    result = _returned(row, product.data["merchant_name"])
    if result is None:
        on_hand = await session.scalar(select(products.c.stock).where(products.c.id == product_id))
        name = product.data["name"]
        if delta < 0:
            raise InsufficientStock(
                f"Not enough stock of “{name}” (product {product_id}): {on_hand} on hand, "
                f"cannot remove {-delta}.",
                extra={"product_id": str(product_id), "available": on_hand},
            )
        raise StockLimitExceeded(
            f"Stock of “{name}” (product {product_id}) would exceed {MAX_STOCK:,} units: "
            f"{on_hand} on hand.",
            extra={"product_id": str(product_id), "available": on_hand},
        )
    await session.execute(
        insert(adjustments).values(
            id=uuid.uuid4(),
            product_id=product_id,
            delta=delta,
            stock_after=result.stock,
            reason=body.reason,
            actor_id=user.id,
            created_at=utcnow(),
        )
    )
    await record(
        session,
        actor_id=user.id,
        action="product.stock_adjusted",
        subject_type="product",
        subject_id=product_id,
        detail={"delta": delta, "reason": body.reason, "stock_after": result.stock},
    )
    return result


def _keyset(cursor: str | None, kind: str) -> tuple[datetime, uuid.UUID] | None:
    """The (created_at, id) position in a newest-first cursor."""
    if cursor is None:
        return None
    at, at_id = decode_cursor(cursor, kind, datetime, uuid.UUID)
    return at, at_id


async def list_stock_adjustments(
    session: AsyncSession, user: User, product_id: uuid.UUID, *, limit: int, cursor: str | None
) -> Page[StockAdjustmentRead]:
    """A product's stock adjustments, newest first: for its merchant's members and admins."""
    if user.role == Role.admin:
        await _load_any(session, product_id)
    else:
        await _load_for_member(session, user, product_id)
    position = _keyset(cursor, "stock_adjustments")
    query = select(
        adjustments.c.id,
        adjustments.c.delta,
        adjustments.c.stock_after,
        adjustments.c.reason,
        adjustments.c.actor_id,
        adjustments.c.created_at,
    ).where(adjustments.c.product_id == product_id)
    if position is not None:
        query = query.where(
            (adjustments.c.created_at < position[0])
            | ((adjustments.c.created_at == position[0]) & (adjustments.c.id < position[1]))
        )
    query = query.order_by(adjustments.c.created_at.desc(), adjustments.c.id.desc()).limit(
        limit + 1
    )
    rows = (await session.execute(query)).all()
    items = [StockAdjustmentRead.model_validate(row._mapping) for row in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = items[-1]
        next_cursor = encode_cursor(
            "stock_adjustments", [last.created_at.isoformat(), str(last.id)]
        )
    return Page[StockAdjustmentRead](items=items, next_cursor=next_cursor)


async def list_merchant_products(
    session: AsyncSession,
    user: User,
    merchant_id: uuid.UUID,
    *,
    status: ProductStatus | None,
    limit: int,
    cursor: str | None,
) -> Page[ProductRead]:
    """A merchant's own catalogue in any status (or one `status`), newest first: for its
    members and admins (`403 not_merchant_member` for other merchants' members)."""
    if user.role == Role.admin:
        exists = await session.scalar(select(merchants.c.id).where(merchants.c.id == merchant_id))
        if exists is None:
            raise MerchantNotFound()
    elif not _is_member(user, merchant_id):
        raise NotMerchantMember("Only this merchant's members and admins see its catalogue.")
    position = _keyset(cursor, "merchant_products")
    query = (
        select(*PRODUCT_COLUMNS, merchants.c.name.label("merchant_name"))
        .select_from(products.join(merchants, merchants.c.id == products.c.merchant_id))
        .where(products.c.merchant_id == merchant_id)
    )
    if status is not None:
        query = query.where(products.c.status == status)
    if position is not None:
        query = query.where(
            (products.c.created_at < position[0])
            | ((products.c.created_at == position[0]) & (products.c.id < position[1]))
        )
    query = query.order_by(products.c.created_at.desc(), products.c.id.desc()).limit(limit + 1)
    rows = (await session.execute(query)).all()
    items = [_read(product_dict(row[:_N], row[_N])) for row in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = items[-1]
        next_cursor = encode_cursor(
            "merchant_products", [last.created_at.isoformat(), str(last.id)]
        )
    return Page[ProductRead](items=items, next_cursor=next_cursor)
