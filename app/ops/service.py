"""Readiness: can this process reach its database right now?"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import text

from app.core.db import Database
from app.ops.errors import NotReady

logger = logging.getLogger("shanhai.ops")

READINESS_TIMEOUT_SECONDS = 2.0
"""A load balancer's probe must get an answer quickly, even when the database hangs."""


async def check_database(
    db: Database, *, within_seconds: float = READINESS_TIMEOUT_SECONDS
) -> None:
    """Run `SELECT 1` on a pooled connection (autocommit on PostgreSQL) within `within_seconds`.

    Raises `NotReady` (503) when the database refuses, fails or does not answer in time.
    """
    try:
        async with asyncio.timeout(within_seconds):
            async with db.read_engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
    except Exception as exc:  # any failure to answer means "not ready", never a 500
        logger.warning("readiness check failed", extra={"error": type(exc).__name__})
        raise NotReady("The database does not answer.") from None
