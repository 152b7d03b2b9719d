"""HTTP endpoints: consumption-assistance statistics, targets and exports (officials, admins)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.deps import StatsUser
from app.core.db import ReplicaConnection, Session
from app.core.time import shanghai_today
from app.routers.common import AUTH_RESPONSES
from app.statistics import service, targets
from app.statistics.export import export_report, parse_format
from app.statistics.schemas import AssistanceReport, ProgressRead, TargetsRead, TargetsUpdate

router = APIRouter(prefix="/stats", tags=["statistics"])

BAD_QUERY: dict[int | str, dict[str, Any]] = {
    422: {
        "description": "`invalid_date` (not YYYY-MM-DD, or outside 2000–2100), "
        "`invalid_date_range` (`from` after `to`), `date_range_too_long` (over 10 years), "
        "`invalid_group_by`."
    }
}
FromQuery = Annotated[
    str | None,
    Query(alias="from", description="First day, YYYY-MM-DD (Asia/Shanghai); 1 January by default."),
]
ToQuery = Annotated[
    str | None, Query(description="Last day, inclusive, YYYY-MM-DD; today (Shanghai) by default.")
]
GroupByQuery = Annotated[
    str | None,
    Query(
        description="`month` (default), `quarter`, `year`, `indicator`, `buyer_type`, "
        "`buyer_region`, `product_class`, `category`, `merchant`, `township`."
    ),
]


@router.get(
    "/assistance",
    response_model=AssistanceReport,
    response_model_exclude_none=True,
    responses={**AUTH_RESPONSES, **BAD_QUERY},
)
async def assistance(
    request: Request,
    conn: ReplicaConnection,
    _: StatsUser,
    from_: FromQuery = None,
    to: ToQuery = None,
    group_by: GroupByQuery = None,
) -> AssistanceReport:
    """Consumption-assistance figures of a date range, grouped.

    Counted: lines of paid orders sold by merchants registered in the western county, whose
    product certificate was valid on the payment day; the paid amount less approved refunds
    (a refund reduces the period of the original payment); dated by payment time in
    Asia/Shanghai. A line counts once, under `purchased` when the buyer's region (frozen on the
    order at checkout) is the eastern county's, else under `helped_sold`; buyer types are those
    frozen on the order too. `order_count` and `buyer_count` are distinct counts: an order or a
    buyer counts once in `totals` even when it appears in several rows. An order or buyer whose
    lines were wholly refunded no longer counts. Time groupings list every period of the range,
    empty ones included; other groupings list the keys with figures, largest amount first.
    Grouped by merchant or township, rows carry `linked_households` (a township's is the sum of
    the western merchants registered there)."""
    start, end = service.parse_range(from_, to)
    group = service.parse_group_by(group_by)
    async with AsyncSession(bind=conn) as session:
        return await service.assistance_report(
            session, request.app.state.settings, start, end, group
        )


@router.put(
    "/targets/{year}",
    response_model=TargetsRead,
    responses={**AUTH_RESPONSES, 422: {"description": "`invalid_year`, `validation_error`."}},
)
async def put_targets(
    year: Annotated[int, Path(description="Calendar year, 2000–2100.")],
    body: TargetsUpdate,
    session: Session,
    user: StatsUser,
) -> TargetsRead:
    """Set (create or replace) a year's targets, in fen; an audit event records who did."""
    return await targets.set_targets(session, user, year, body)


@router.get(
    "/assistance/progress",
    response_model=ProgressRead,
    responses={**AUTH_RESPONSES, 422: {"description": "`invalid_year`, `validation_error`."}},
)
async def progress(
    request: Request,
    conn: ReplicaConnection,
    _: StatsUser,
    year: Annotated[int | None, Query(description="This year (Shanghai) by default.")] = None,
) -> ProgressRead:
    """The year's figure per indicator so far, against its target (`ratio` = actual / target,
    null while no target is set)."""
    async with AsyncSession(bind=conn) as session:
        return await targets.progress(
            session, request.app.state.settings, year or shanghai_today().year
        )


@router.get(
    "/assistance/export",
    responses={
        **AUTH_RESPONSES,
        200: {
            "description": "A download: `text/csv` (UTF-8 with a BOM, a totals row last) or an "
            "XLSX workbook (title, period, counting rule and production time above a Chinese "
            "header row; amounts in 元 and 万元 as numbers; a totals row).",
            "content": {
                "text/csv": {},
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {},
            },
        },
        422: {"description": BAD_QUERY[422]["description"] + " `invalid_export_format`."},
    },
)
async def export(
    request: Request,
    session: Session,
    user: StatsUser,
    format: Annotated[str | None, Query(description="`xlsx` (default) or `csv`.")] = None,
    from_: FromQuery = None,
    to: ToQuery = None,
    group_by: GroupByQuery = None,
) -> Response:
    """The same figures as `GET /stats/assistance`, as the spreadsheet officials file. Every
    export is an audit event (`stats.exported`)."""
    fmt = parse_format(format)
    start, end = service.parse_range(from_, to)
    group = service.parse_group_by(group_by)
    return await export_report(session, request.app.state.settings, user, fmt, start, end, group)
