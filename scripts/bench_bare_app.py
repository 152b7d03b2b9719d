"""The ceiling for `scripts/bench_catalog.py`: a bare FastAPI app on the same server.

One route, `GET /api/v1/products`, answers the very page the real API answered for the URL
being measured: `bench_catalog.py` captures the real response body first and writes it to the
file named by `BENCH_PAGE_FILE`; at startup this app parses those bytes into the real response
model (`Page[ProductRead]`), and every request returns that model object, which FastAPI
validates and serialises through `response_model` as it would any endpoint's result. So the
ceiling sends the same bytes as the real page (`bench_catalog.py` checks that), with no
database, no middleware and no error handlers: what FastAPI, Pydantic and uvicorn cost on
their own. Serve it with

    BENCH_PAGE_FILE=page.json .venv/bin/uvicorn --app-dir scripts bench_bare_app:app \\
        --workers 1 --log-level info --access-log
"""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import FastAPI, Query

from app.catalog.schemas import ProductRead
from app.core.pagination import Page

PAGE = Page[ProductRead].model_validate_json(Path(os.environ["BENCH_PAGE_FILE"]).read_bytes())

app = FastAPI(title="Bare baseline")


@app.get("/api/v1/products", response_model=Page[ProductRead])
async def list_products(
    limit: int = Query(default=20, ge=1, le=100),
    category: str | None = Query(default=None, max_length=40),
) -> Page[ProductRead]:
    """The captured page, from memory (the query parameters are parsed like the real ones)."""
    return PAGE
