"""HTTP endpoints: catalog (categories, products, their review workflow and stock)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Path, Query, Request, Response

from app.accounts.deps import CurrentUser, MerchantUser, OptionalUser, require_role
from app.catalog import queries, service
from app.catalog.schemas import (
    CategoryRead,
    EmptyBody,
    IfMatch,
    ProductCreate,
    ProductListQuery,
    ProductRead,
    ProductUpdate,
    RejectBody,
    StockAdjustmentCreate,
    StockAdjustmentRead,
)
from app.core.db import ReplicaConnection, Session
from app.core.money import ensure_price_within
from app.core.openapi import OPTIONAL_AUTH
from app.core.pagination import Cursor, Limit, Page
from app.models import ProductStatus, Role, User

router = APIRouter(tags=["catalog"])

ManagerUser = Annotated[User, Depends(require_role(Role.admin, Role.merchant))]
ProductId = Annotated[uuid.UUID, Path(description="The product's id.")]
OptionalAction = Annotated[EmptyBody | None, Body(description="`{}` or no body.")]

_PRODUCT_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "`not_authenticated` / `invalid_token`."},
    403: {
        "description": "`forbidden` (role) or `not_merchant_member`: the caller sees the "
        "product (on sale, or any product for an admin) but is not a member of its merchant."
    },
    404: {
        "description": "`product_not_found`: no such product, or one not on sale that the "
        "caller may not see."
    },
}


def _etag(response: Response, product: ProductRead) -> ProductRead:
    response.headers["ETag"] = f'"{product.version}"'
    return product


@router.get("/categories", response_model=list[CategoryRead])
async def list_categories(conn: ReplicaConnection) -> list[CategoryRead]:
    """Every product category (`slug`, `name`), in display order. Products refer to their
    category by `slug`."""
    return await queries.list_categories(conn)


@router.get("/products", response_model=Page[ProductRead])
async def list_products(request: Request, query: Annotated[ProductListQuery, Query()]) -> Response:
    """The storefront: active products of approved merchants, for everyone (a token is not
    needed and not looked at). Filters combine with AND; `min_price_fen > max_price_fen` simply
    matches nothing; unknown query parameters are ignored. Keyset pagination: a cursor belongs
    to its `sort` (another sort's cursor is `400 invalid_cursor`), and walking the pages never
    repeats or skips a product while new ones are added."""
    # Rendered through `Page[ProductRead]` by the query code (and kept while the catalogue does
    # not change): the bytes the response model would produce.
    # Reads the replica when there is one (`app.catalog.pages`: one connection at a time, only
    # for the statement it needs).
    page = await request.app.state.catalog_pages.page(query)
    return Response(page, media_type="application/json")


@router.post(
    "/products",
    response_model=ProductRead,
    status_code=201,
    responses={
        401: _PRODUCT_ERRORS[401],
        403: {"description": "`forbidden` (not a merchant member) or `merchant_rejected`."},
        422: {"description": "`validation_error` or `unknown_category`."},
    },
)
async def create_product(
    request: Request, body: ProductCreate, user: MerchantUser, session: Session, response: Response
) -> ProductRead:
    """A member (owner or staff) of a merchant that is not rejected lists a product for its
    merchant. It starts `pending_review` (not on sale until an admin approves it), version 1
    (`ETag: "1"`). `description` defaults to empty, `images` to none, `stock` to 0. A
    `price_fen` above `MAX_ORDER_TOTAL_FEN` is a 422 naming it."""
    ensure_price_within(body.price_fen, request.app.state.settings.max_order_total_fen)
    product = await service.create_product(session, user, body)
    response.headers["Location"] = f"/api/v1/products/{product.id}"
    return _etag(response, product)


@router.get(
    "/products/{product_id}",
    response_model=ProductRead,
    responses={404: _PRODUCT_ERRORS[404]},
    openapi_extra=OPTIONAL_AUTH,
)
async def get_product(
    product_id: ProductId, user: OptionalUser, session: Session, response: Response
) -> ProductRead:
    """A product on sale (active, of an approved merchant), for everyone; members of its
    merchant and admins see it in any status. Anything else is `404 product_not_found`.
    Carries `ETag: "<version>"` for a later `If-Match`."""
    return _etag(response, await service.get_product(session, user, product_id))


@router.patch(
    "/products/{product_id}",
    response_model=ProductRead,
    responses={
        **_PRODUCT_ERRORS,
        409: {
            "description": "`concurrent_update`: changed again and again under a PATCH "
            "without If-Match; retry."
        },
        412: {
            "description": "`precondition_failed`: `If-Match` names no current ETag (or is a "
            'weak tag `W/"n"`, or not an entity-tag at all).'
        },
        422: {"description": "`validation_error` (e.g. `stock` is sent) or `unknown_category`."},
    },
)
async def update_product(
    request: Request,
    product_id: ProductId,
    body: ProductUpdate,
    user: CurrentUser,
    session: Session,
    response: Response,
    if_match: Annotated[
        str | None,
        Header(
            max_length=1000,
            description='An entity-tag (RFC 9110): `"<version>"` as in the ETag, a list '
            '(`"2", "3"`: any member may match) or `*` (any current version). Apply only if the '
            "product is still at a listed version, else `412 precondition_failed`. Comparison is "
            'strong: a weak tag (`W/"3"`) never matches, and a value that is not an entity-tag '
            "(a bare `3`) matches nothing (412). Without the header the edit applies to the "
            "current version.",
        ),
    ] = None,
) -> ProductRead:
    """A member of the product's merchant edits any of the creation fields except `stock`
    (stock changes only through stock adjustments; sending it is a 422). Every edit bumps
    `version`. Editing a `rejected` product resubmits it for review (`pending_review`); changing
    `certification` sends an `active` or `inactive` product back to `pending_review` (it needs a
    new review before it is on sale again). A price change affects new orders only. An empty
    body changes nothing. Another merchant's member gets 404 for a product not on sale, 403 for
    one on sale. A `price_fen` above `MAX_ORDER_TOTAL_FEN` is a 422 naming it."""
    ensure_price_within(body.price_fen, request.app.state.settings.max_order_total_fen)
    condition = IfMatch(if_match) if if_match is not None else None
    return _etag(response, await service.update_product(session, user, product_id, body, condition))


_TRANSITION_ERRORS: dict[int | str, dict[str, Any]] = {
    **_PRODUCT_ERRORS,
    409: {"description": "`invalid_transition`: the product is not in the status this needs."},
}


_REVIEW_ERRORS: dict[int | str, dict[str, Any]] = {
    **_TRANSITION_ERRORS,
    403: {
        "description": "`forbidden`: only admins review; given to a caller who sees the "
        "product (anyone, for one on sale; its merchant's members, in any status)."
    },
    404: {
        "description": "`product_not_found`: no such product, or one not on sale that the "
        "caller may not see."
    },
}


@router.post("/products/{product_id}/approve", response_model=ProductRead, responses=_REVIEW_ERRORS)
async def approve_product(
    product_id: ProductId,
    admin: CurrentUser,
    session: Session,
    response: Response,
    body: OptionalAction = None,
) -> ProductRead:
    """Admin: `pending_review → active`. The product is on sale at once if its merchant is
    approved. Audited as `product.approved`."""
    return _etag(response, await service.approve_product(session, admin, product_id))


@router.post("/products/{product_id}/reject", response_model=ProductRead, responses=_REVIEW_ERRORS)
async def reject_product(
    product_id: ProductId,
    body: RejectBody,
    admin: CurrentUser,
    session: Session,
    response: Response,
) -> ProductRead:
    """Admin: `pending_review → rejected`, with a `reason` (1–500 characters) shown to the
    merchant as `status_reason`. The merchant may edit the product to resubmit it. Audited as
    `product.rejected`."""
    return _etag(response, await service.reject_product(session, admin, product_id, body.reason))


@router.post(
    "/products/{product_id}/activate", response_model=ProductRead, responses=_TRANSITION_ERRORS
)
async def activate_product(
    product_id: ProductId,
    user: CurrentUser,
    session: Session,
    response: Response,
    body: OptionalAction = None,
) -> ProductRead:
    """A member of the product's merchant puts an `inactive` product back on sale (`active`)."""
    return _etag(response, await service.activate_product(session, user, product_id))


@router.post(
    "/products/{product_id}/deactivate", response_model=ProductRead, responses=_TRANSITION_ERRORS
)
async def deactivate_product(
    product_id: ProductId,
    user: CurrentUser,
    session: Session,
    response: Response,
    body: OptionalAction = None,
) -> ProductRead:
    """A member of the product's merchant takes an `active` product off sale (`inactive`)."""
    return _etag(response, await service.deactivate_product(session, user, product_id))


@router.post(
    "/products/{product_id}/stock-adjustments",
    response_model=ProductRead,
    status_code=201,
    responses={
        **_PRODUCT_ERRORS,
        409: {
            "description": "`insufficient_stock` (stock would go below zero) or "
            "`stock_limit_exceeded` (above 1,000,000,000)."
        },
    },
)
async def adjust_stock(
    product_id: ProductId,
    body: StockAdjustmentCreate,
    user: CurrentUser,
    session: Session,
    response: Response,
) -> ProductRead:
    """A member of the product's merchant adds (`delta > 0`) or removes (`delta < 0`) units,
    with a `reason`. Answers the product with its new `stock` and `ETag`. Stock never goes below
    zero (`409 insufficient_stock`, naming the product) nor above 1,000,000,000. Every
    adjustment is kept and audited as `product.stock_adjusted`."""
    return _etag(response, await service.adjust_stock(session, user, product_id, body))


@router.get(
    "/products/{product_id}/stock-adjustments",
    response_model=Page[StockAdjustmentRead],
    responses=_PRODUCT_ERRORS,
)
async def list_stock_adjustments(
    product_id: ProductId,
    user: CurrentUser,
    session: Session,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Page[StockAdjustmentRead]:
    """A product's stock adjustments, newest first: for its merchant's members and admins. Anyone
    else: 403 on a product on sale (it sees the product), 404 on one that is not."""
    return await service.list_stock_adjustments(
        session, user, product_id, limit=limit, cursor=cursor
    )


@router.get(
    "/merchants/{merchant_id}/products",
    response_model=Page[ProductRead],
    responses={
        401: _PRODUCT_ERRORS[401],
        403: {"description": "`forbidden` (role) or `not_merchant_member`."},
        404: {"description": "`merchant_not_found` (admins)."},
    },
)
async def list_merchant_products(
    merchant_id: uuid.UUID,
    user: ManagerUser,
    session: Session,
    status: Annotated[ProductStatus | None, Query(description="Only this status.")] = None,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Page[ProductRead]:
    """A merchant's own catalogue in every status (or `?status=`), newest first: for the
    merchant's members and admins."""
    return await service.list_merchant_products(
        session, user, merchant_id, status=status, limit=limit, cursor=cursor
    )
