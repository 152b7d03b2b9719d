"""The statistics as the spreadsheet officials file: CSV (UTF-8 with a BOM) or XLSX."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import record
from app.core.config import Settings
from app.core.export import Column, ExportFormat, Kind, Sheet, csv_response, xlsx_response
from app.core.time import SHANGHAI, utcnow
from app.models import User
from app.statistics.errors import InvalidExportFormat
from app.statistics.schemas import AssistanceReport, GroupBy
from app.statistics.service import COUNTING_RULE, assistance_report

GROUP_LABELS = {
    GroupBy.month: "月份",
    GroupBy.quarter: "季度",
    GroupBy.year: "年度",
    GroupBy.indicator: "指标",
    GroupBy.buyer_type: "买家类型",
    GroupBy.buyer_region: "买家所在地",
    GroupBy.product_class: "产品类别",
    GroupBy.category: "品类",
    GroupBy.merchant: "经营主体",
    GroupBy.township: "产地乡镇",
}
WITH_HOUSEHOLDS = (GroupBy.merchant, GroupBy.township)


def parse_format(value: str | None) -> ExportFormat:
    try:
        return ExportFormat(value or ExportFormat.xlsx)
    except ValueError:
        raise InvalidExportFormat(
            "`format` is `csv` or `xlsx`.",
            loc=["query", "format"],
            extra={"allowed": [f.value for f in ExportFormat]},
        ) from None


def _columns(group_by: GroupBy) -> list[Column]:
    columns = [
        Column("代码"),
        Column(GROUP_LABELS[group_by]),
        Column("金额（元）", Kind.yuan),
        Column("金额（万元）", Kind.wan_yuan),
        Column("订单数", Kind.integer),
        Column("件数", Kind.integer),
        Column("购买人数", Kind.integer),
    ]
    if group_by in WITH_HOUSEHOLDS:
        columns.append(Column("带动户数", Kind.integer))
    return columns


def _rows(report: AssistanceReport) -> list[list[Any]]:
    households = report.group_by in WITH_HOUSEHOLDS
    rows: list[list[Any]] = []
    for r in report.rows:
        row: list[Any] = [r.key, r.label, r.amount_fen, r.amount_fen, r.order_count, r.units]
        row.append(r.buyer_count)
        if households:
            row.append(r.linked_households or 0)
        rows.append(row)
    return rows


def _totals(report: AssistanceReport) -> list[Any]:
    t = report.totals
    row: list[Any] = ["合计", "", t.amount_fen, t.amount_fen, t.order_count, t.units, t.buyer_count]
    if report.group_by in WITH_HOUSEHOLDS:
        row.append(sum(r.linked_households or 0 for r in report.rows))
    return row


async def export_report(
    session: AsyncSession,
    settings: Settings,
    user: User,
    fmt: ExportFormat,
    start: date,
    end: date,
    group_by: GroupBy,
) -> Response:
    """The report as a download, recorded as an audit event in the same transaction."""
    report = await assistance_report(session, settings, start, end, group_by)
    produced = utcnow()
    await record(
        session,
        actor_id=user.id,
        action="stats.exported",
        subject_type="stats_export",
        subject_id=f"{group_by.value}:{start.isoformat()}:{end.isoformat()}",
        detail={
            "format": fmt.value,
            "from": start.isoformat(),
            "to": end.isoformat(),
            "group_by": group_by.value,
            "rows": len(report.rows),
            "amount_fen": report.totals.amount_fen,
        },
    )
    name = f"消费帮扶统计_{GROUP_LABELS[group_by]}_{start:%Y%m%d}-{end:%Y%m%d}.{fmt.value}"
    columns = _columns(group_by)
    rows = [*_rows(report), _totals(report)] if fmt is ExportFormat.csv else _rows(report)
    if fmt is ExportFormat.csv:
        return csv_response(name, columns, rows)
    stamp = produced.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")
    sheet = Sheet(
        title="消费帮扶统计表",
        notes=(
            f"统计期间：{start.isoformat()} 至 {end.isoformat()}（北京时间，含首尾两日）",
            f"分组：{GROUP_LABELS[group_by]}",
            COUNTING_RULE,
            "金额（元）为精确值；金额（万元）四舍五入保留两位小数；合计行的订单数、购买人数为去重计数。",
            f"生成时间：{stamp}（北京时间）",
        ),
        totals=_totals(report),
        name="消费帮扶",
    )
    return await xlsx_response(name, columns, rows, sheet)
