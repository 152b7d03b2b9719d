"""The application factory: settings, database, middleware, error handlers and routers."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from app.catalog.pages import CatalogPages
from app.core.config import Settings, get_settings
from app.core.db import Database
from app.core.errors import install_error_handlers
from app.core.headers import SecurityHeadersMiddleware
from app.core.logging import configure_logging
from app.core.middleware import RequestContextMiddleware
from app.core.nul import RefuseNulMiddleware
from app.core.openapi import install_openapi
from app.dashboard.pages import STATIC_DIR as DASHBOARD_STATIC
from app.integrations.stripe import StripeGateway
from app.routers import (
    audit,
    auth,
    catalog,
    dashboard,
    invitations,
    merchants,
    ops,
    orders,
    payments,
    payouts,
    refunds,
    settlements,
    statistics,
    users,
)

API_PREFIX = "/api/v1"

DESCRIPTION = """
Shanhai (山海) is the backend of the Chun'an–Batang consumption-assistance (消费帮扶) marketplace:
Batang's cooperatives sell to buyers in Chun'an and beyond, and officials report the totals.

* Every error is `application/problem+json` (the `Problem` schema) with a stable `code`; 422
  adds `errors`. An unknown path is `404 not_found`; a method the path does not serve (OPTIONS
  included) is `405 method_not_allowed` with every method it serves in `Allow`; a body over
  1 MiB is `413 payload_too_large`.
* While the database cannot be reached, any endpoint that needs it answers
  `503 database_unavailable` with `Retry-After`; retry later (with the same `Idempotency-Key`).
* Roles and the 404/403 rule, idempotency keys, statuses and their transitions, and how the
  assistance statistics count are explained in the repository's `docs/guide.md`.
* Money is integer fen (`*_fen`), currency CNY.
* Lists take `limit` (1–100) and an opaque `cursor`, answer `{items, next_cursor}`, newest first.
* Every response carries `X-Request-ID` (yours, if you sent a sane one).
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level)
    db = Database(
        settings.database_url,
        replica_url=settings.database_replica_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_seconds,
        connect_timeout=settings.db_connect_timeout_seconds,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Everything built so far (modules, the app, compiled schemas) lives as long as the
        # process: move it out of the garbage collector's sight, so that collections under load
        # only walk what requests create.
        gc.collect()
        gc.freeze()
        yield
        await db.dispose()

    docs = settings.docs_on
    app = FastAPI(
        title="Shanhai API",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
    )
    app.state.settings = settings
    app.state.db = db
    # Rendered pages of the public product list, per process, keyed by the catalogue's version.
    app.state.catalog_pages = CatalogPages(db.replica_engine)
    app.state.stripe = (
        StripeGateway(
            settings.stripe_api_key,
            webhook_secret=settings.stripe_webhook_secret,
            api_base=settings.stripe_api_base,
            timeout_seconds=settings.stripe_timeout_seconds,
        )
        if settings.stripe_api_key
        else None
    )
    # Inner first: the NUL check sees a body already capped at 1 MiB by the request context.
    app.add_middleware(RefuseNulMiddleware)
    app.add_middleware(RequestContextMiddleware)
    # Added last, so outermost: the request-context middleware's own 413 and 500 get it too.
    app.add_middleware(SecurityHeadersMiddleware, trusted_proxy_hops=settings.trusted_proxy_hops)
    install_error_handlers(app)
    install_openapi(app)

    app.include_router(ops.router)
    app.include_router(dashboard.router)
    app.mount(
        "/dashboard/static",
        StaticFiles(directory=DASHBOARD_STATIC),
        name="dashboard-static",
    )
    app.include_router(auth.router, prefix=API_PREFIX)
    app.include_router(users.router, prefix=API_PREFIX)
    app.include_router(merchants.router, prefix=API_PREFIX)
    app.include_router(invitations.router, prefix=API_PREFIX)
    app.include_router(payouts.router, prefix=API_PREFIX)
    app.include_router(catalog.router, prefix=API_PREFIX)
    app.include_router(orders.router, prefix=API_PREFIX)
    app.include_router(payments.router, prefix=API_PREFIX)
    app.include_router(refunds.router, prefix=API_PREFIX)
    app.include_router(settlements.router, prefix=API_PREFIX)
    app.include_router(audit.router, prefix=API_PREFIX)
    app.include_router(statistics.router, prefix=API_PREFIX)
    return app
