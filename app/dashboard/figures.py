"""What the dashboard shows, read from the statistics service (the one behind
`GET /api/v1/stats/assistance`): no figure is computed here, only arranged for the page."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.money import fen_to_wan_yuan, fen_to_yuan
from app.core.time import SHANGHAI, utcnow
from app.dashboard import charts
from app.models import User
from app.statistics import service as stats
from app.statistics.export import export_report, parse_format
from app.statistics.schemas import GroupBy
from app.statistics.targets import progress as year_progress

GROUPINGS: list[tuple[str, str]] = [
    ("merchant", "合作社/企业"),
    ("township", "乡镇"),
    ("buyer_type", "买家类型"),
    ("category", "品类"),
    ("product_class", "产品类别"),
]
INDICATORS: list[tuple[str, str, str]] = [
    ("purchased", "采购", charts.PURCHASED_COLOUR),
    ("helped_sold", "帮助销售", charts.HELPED_SOLD_COLOUR),
]
FIRST_YEAR = 2021  # the pairing's current round began in 2021


@dataclass(slots=True)
class View:
    """The page's choices from the query string; bad values fall back to defaults, said so."""

    year: int
    date_from: date
    date_to: date
    group_by: str
    error: str | None = None
    years: list[int] = field(default_factory=list)

    @classmethod
    def parse(
        cls,
        today: date,
        year: str | None,
        date_from: str | None,
        date_to: str | None,
        group_by: str,
    ) -> View:
        errors: list[str] = []
        chosen = today.year
        if year:
            if year.isascii() and year.isdigit() and FIRST_YEAR <= int(year) <= today.year:
                chosen = int(year)
            else:
                errors.append("年度无效，已显示今年。")
        default_to = min(today, date(chosen, 12, 31))
        start = _date(date_from, date(chosen, 1, 1), errors)
        end = _date(date_to, default_to, errors)
        if start > end:
            errors.append("起始日期晚于截止日期，已显示全年。")
            start, end = date(chosen, 1, 1), default_to
        if group_by not in dict(GROUPINGS):
            errors.append("分类无效，已按合作社/企业显示。")
            group_by = "merchant"
        years = list(range(today.year, FIRST_YEAR - 1, -1))
        return cls(chosen, start, end, group_by, " ".join(errors) or None, years)

    def query(self, **override: str) -> dict[str, str]:
        base = {
            "year": str(self.year),
            "from": self.date_from.isoformat(),
            "to": self.date_to.isoformat(),
            "group_by": self.group_by,
        }
        return {**base, **override}


def _date(text: str | None, default: date, errors: list[str]) -> date:
    if not text:
        return default
    try:
        return date.fromisoformat(text) if len(text) == 10 and text.isascii() else _bad(text)
    except ValueError:
        errors.append(f"日期“{text[:10]}”无效，已使用默认值。")
        return default


def _bad(text: str) -> date:
    raise ValueError(text)


async def page_context(session: AsyncSession, settings: Settings, view: View) -> dict[str, Any]:
    """Everything the dashboard template needs, from four reads of the statistics service."""
    progress = await year_progress(session, settings, view.year)
    breakdown = await stats.assistance_report(
        session, settings, view.date_from, view.date_to, GroupBy(view.group_by)
    )
    this_year = await stats.monthly_by_indicator(session, settings, view.year)
    last_year = await stats.monthly_by_indicator(session, settings, view.year - 1)
    series = []
    for indicator, name, colour in INDICATORS:
        series.append(charts.Series(f"{name} {view.year}", colour, this_year[indicator]))
        series.append(
            charts.Series(f"{name} {view.year - 1}", colour, last_year[indicator], line=True)
        )
    series.sort(key=lambda s: s.line)  # bars first, then lines
    rows = sorted(breakdown.rows, key=lambda r: (-r.amount_fen, r.key))
    households = view.group_by in ("merchant", "township")
    colour = charts.PURCHASED_COLOUR
    return {
        "year": view.year,
        "years": view.years,
        "date_from": view.date_from.isoformat(),
        "date_to": view.date_to.isoformat(),
        "group_by": view.group_by,
        "group_name": dict(GROUPINGS)[view.group_by],
        "groupings": GROUPINGS,
        "error": view.error,
        "as_of": _local_minute(progress.as_of),
        "indicators": [_indicator(i) for i in progress.indicators],
        "monthly_chart": charts.monthly_chart(series),
        "bar_chart": charts.bar_chart([(r.label, r.amount_fen) for r in rows], colour),
        "households": households,
        "rows": [_row(r, households) for r in rows],
        "totals": _amounts(breakdown.totals),
    }


def _indicator(ind: Any) -> dict[str, Any]:
    names = {key: (name, colour) for key, name, colour in INDICATORS}
    name, colour = names[ind.indicator]
    ratio = float(ind.ratio) if ind.ratio is not None else None
    return {
        "indicator": ind.indicator,
        "name": name,
        "actual_fen": ind.actual_fen,
        "actual_wan": fen_to_wan_yuan(ind.actual_fen),
        "target_fen": ind.target_fen,
        "target_wan": fen_to_wan_yuan(ind.target_fen) if ind.target_fen else "未设定",
        "bar": charts.progress_bar(ratio, colour),
        "ratio_text": "尚未设定年度目标" if ratio is None else f"完成 {ratio * 100:.1f}%",
    }


def _amounts(figure: Any) -> dict[str, Any]:
    return {
        "amount_fen": figure.amount_fen,
        "wan": fen_to_wan_yuan(figure.amount_fen),
        "yuan": f"{fen_to_yuan(figure.amount_fen):,}",
        "order_count": figure.order_count,
        "units": figure.units,
        "buyer_count": figure.buyer_count,
    }


def _row(row: Any, households: bool) -> dict[str, Any]:
    out = {"key": row.key, "label": row.label, **_amounts(row)}
    if households:
        out["households"] = row.linked_households
    return out


def _local_minute(moment: Any) -> str:
    return (moment or utcnow()).astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")


async def export(
    session: AsyncSession,
    settings: Settings,
    user: User,
    export_format: str,
    date_from: str | None,
    date_to: str | None,
    group_by: str,
) -> Response:
    """The same download as the API's export (and audited the same way), for what the page
    shows; a bad parameter is refused as by the API."""
    start, end = stats.parse_range(date_from, date_to)
    return await export_report(
        session,
        settings,
        user,
        parse_format(export_format),
        start,
        end,
        stats.parse_group_by(group_by),
    )
