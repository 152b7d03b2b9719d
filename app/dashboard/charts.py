"""Charts drawn on the server as SVG: no script, no asset from outside, nothing a Content-Security-
Policy without `unsafe-inline` would block (only SVG presentation attributes, no style attributes).

Every function takes plain numbers (fen) and labels and returns markup that is safe to embed:
text is escaped here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from html import escape

from markupsafe import Markup

from app.core.money import fen_to_wan_yuan

PURCHASED_COLOUR = "#1f6f8b"
HELPED_SOLD_COLOUR = "#d9731a"
GRID_COLOUR = "#d8dde3"
TEXT_COLOUR = "#333b45"
FONT = "'Noto Sans CJK SC','Source Han Sans SC','PingFang SC','Microsoft YaHei',sans-serif"


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    colour: str
    values_fen: Sequence[int]
    line: bool = False
    """Drawn as a dashed line (last year) instead of bars (this year)."""


def wan(amount_fen: int) -> Decimal:
    return fen_to_wan_yuan(amount_fen)


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 × 10^k at or above `value` (an axis maximum)."""
    if value <= 0:
        return 1.0
    exponent = math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        candidate = step * 10**exponent
        if candidate >= value:
            return float(candidate)
    return float(10 ** (exponent + 1))  # pragma: no cover - the loop always returns


def _text(
    x: float,
    y: float,
    content: str,
    *,
    anchor: str = "start",
    size: int = 12,
    colour: str = TEXT_COLOUR,
    weight: str = "normal",
) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}" '
        f'font-family="{FONT}" fill="{colour}" font-weight="{weight}">{escape(content)}</text>'
    )


def progress_bar(ratio: float | None, colour: str, *, width: int = 420, height: int = 18) -> Markup:
    """A bar filled to `ratio` (capped at the bar; the text beside it says the real figure)."""
    filled = 0.0 if ratio is None else max(0.0, min(ratio, 1.0)) * width
    return Markup(  # noqa: S704 - every text in it went through escape()
        f'<svg class="progress" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{escape(_percent(ratio))}">'
        f'<rect x="0" y="0" width="{width}" height="{height}" rx="4" fill="#e9edf1"/>'
        f'<rect x="0" y="0" width="{filled:.1f}" height="{height}" rx="4" fill="{colour}"/>'
        "</svg>"
    )


def _percent(ratio: float | None) -> str:
    return "无目标" if ratio is None else f"{ratio * 100:.1f}%"


def monthly_chart(series: Sequence[Series], *, width: int = 860, height: int = 320) -> Markup:
    """Twelve months: this year's series as grouped bars, last year's as dashed lines, in 万元."""
    left, right, top, bottom = 64, 16, 40, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max((v for s in series for v in s.values_fen), default=0)
    y_max = nice_ceiling(float(wan(peak)))
    parts = [
        f'<svg class="chart" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        'role="img" aria-label="按月消费帮扶金额">'
    ]
    for i in range(6):
        value = y_max * i / 5
        y = top + plot_h - plot_h * i / 5
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" '
            f'stroke="{GRID_COLOUR}" stroke-width="1"/>'
        )
        parts.append(_text(left - 8, y + 4, f"{value:g} 万", anchor="end", size=11))
    group_w = plot_w / 12
    bars = [s for s in series if not s.line]
    bar_w = group_w * 0.7 / max(len(bars), 1)

    def y_of(amount_fen: int) -> float:
        return top + plot_h - plot_h * float(wan(amount_fen)) / y_max

    for m in range(12):
        x0 = left + group_w * m + group_w * 0.15
        for b, s in enumerate(bars):
            y = y_of(s.values_fen[m])
            parts.append(
                f'<rect x="{x0 + b * bar_w:.1f}" y="{y:.1f}" width="{bar_w - 1:.1f}" '
                f'height="{top + plot_h - y:.1f}" fill="{s.colour}">'
                f"<title>{escape(s.name)} {m + 1}月：{wan(s.values_fen[m])} 万元</title></rect>"
            )
        parts.append(
            _text(
                left + group_w * (m + 0.5),
                height - bottom + 18,
                f"{m + 1}月",
                anchor="middle",
                size=11,
            )
        )
    for s in series:
        if not s.line:
            continue
        points = " ".join(
            f"{left + group_w * (m + 0.5):.1f},{y_of(s.values_fen[m]):.1f}" for m in range(12)
        )
        parts.append(
            f'<polyline points="{points}" fill="none" stroke="{s.colour}" stroke-width="2" '
            'stroke-dasharray="6 4" opacity="0.8"/>'
        )
    parts.append(_legend(series, left, 16))
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every text in it went through escape()


def _legend(series: Sequence[Series], x: float, y: float) -> str:
    out = []
    for s in series:
        if s.line:
            out.append(
                f'<line x1="{x:.1f}" y1="{y - 4:.1f}" x2="{x + 18:.1f}" y2="{y - 4:.1f}" '
                f'stroke="{s.colour}" stroke-width="2" stroke-dasharray="6 4"/>'
            )
        else:
            out.append(
                f'<rect x="{x:.1f}" y="{y - 10:.1f}" width="18" height="10" fill="{s.colour}"/>'
            )
        out.append(_text(x + 24, y, s.name, size=12))
        x += 24 + 14 * len(s.name) + 24
    return "".join(out)


def bar_chart(
    rows: Sequence[tuple[str, int]], colour: str, *, width: int = 860, limit: int = 15
) -> Markup:
    """Horizontal bars, largest first (the caller sorts), at most `limit`, labelled in 万元."""
    rows = list(rows)[:limit]
    label_w, value_w, row_h, top = 240, 110, 26, 8
    height = top * 2 + row_h * max(len(rows), 1)
    plot_w = width - label_w - value_w
    peak = max((v for _, v in rows), default=0)
    parts = [
        f'<svg class="chart" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        'role="img" aria-label="分类排名">'
    ]
    if not rows:
        parts.append(_text(width / 2, height / 2 + 4, "所选期间没有数据", anchor="middle"))
    for i, (label, value) in enumerate(rows):
        y = top + i * row_h
        w = 0.0 if peak <= 0 else max(plot_w * value / peak, 0.0)
        parts.append(_text(label_w - 8, y + 17, _clip(label, 15), anchor="end", size=12))
        parts.append(
            f'<rect x="{label_w}" y="{y + 5}" width="{w:.1f}" height="{row_h - 10}" '
            f'fill="{colour}"><title>{escape(label)}：{wan(value)} 万元</title></rect>'
        )
        parts.append(_text(label_w + w + 6, y + 17, f"{wan(value)} 万元", size=12))
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every text in it went through escape()


def _clip(label: str, wide_chars: int) -> str:
    """At most about `wide_chars` CJK characters (two narrow count as one), then an ellipsis."""
    out, used = "", 0.0
    for ch in label:
        used += 1 if ord(ch) > 0x2E80 else 0.55
        if used > wide_chars:
            return out + "…"
        out += ch
    return out
