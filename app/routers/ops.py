"""HTTP endpoints: operations (liveness, readiness, metrics). Outside `/api/v1`."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from app.core.db import get_database
from app.ops import metrics
from app.ops.schemas import HealthRead, ReadinessRead
from app.ops.service import check_database

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=HealthRead)
async def healthz() -> HealthRead:
    """Liveness: the process is up and serving. Touches no database, so a database outage
    does not make an orchestrator restart healthy API processes."""
    return HealthRead()


@router.get(
    "/readyz",
    response_model=ReadinessRead,
    responses={503: {"description": "`not_ready`: the database did not answer `SELECT 1`."}},
)
async def readyz(request: Request) -> ReadinessRead:
    """Readiness: the database answers `SELECT 1` within 2 seconds. Otherwise
    `503 not_ready`, so a load balancer stops sending traffic here until it recovers."""
    await check_database(get_database(request))
    return ReadinessRead()


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format."}},
)
async def metrics_text() -> Response:
    """Prometheus metrics in the text exposition format: `shanhai_http_requests_total` (by
    method, route template and status) and `shanhai_http_request_duration_seconds` (by method and
    route template; requests that match no route are labelled `unmatched`). With several worker
    processes the samples of all of them are summed. Not authenticated: restrict it at the proxy
    if it must not be public."""
    body, content_type = metrics.render()
    return Response(content=body, media_type=content_type)
