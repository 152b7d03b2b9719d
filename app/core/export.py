"""Downloads for people who open them in Excel: CSV in UTF-8 with a BOM, and XLSX workbooks.

A download is described once, as columns (a header and how a value is written) and rows of plain
values; money is passed as integer fen and written here as 元 (exact, two decimals) or 万元
(rounded half up, two decimals, `app/core/money.py`). CSV rows stream as they are produced; an
XLSX workbook is built by XlsxWriter in constant-memory mode (row by row, on a temporary file)
and sent when complete, since a ZIP container cannot be sent before its directory is written.
"""

from __future__ import annotations

import csv
import enum
import io
import tempfile
import unicodedata
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import xlsxwriter
from fastapi.responses import Response, StreamingResponse

from app.core.money import fen_to_wan_yuan, fen_to_yuan

CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class ExportFormat(enum.StrEnum):
    csv = "csv"
    xlsx = "xlsx"


class Kind(enum.StrEnum):
    text = "text"
    integer = "integer"
    yuan = "yuan"
    """A fen amount written as 元 with two decimals, exact."""
    wan_yuan = "wan_yuan"
    """A fen amount written as 万元, rounded half up to two decimals."""


@dataclass(frozen=True, slots=True)
class Column:
    header: str
    kind: Kind = Kind.text


def cell_value(column: Column, value: Any) -> Any:
    """The value as written: money converted from fen, dates as ISO text, None as empty."""
    if value is None:
        return None
    if column.kind is Kind.yuan:
        return fen_to_yuan(int(value))
    if column.kind is Kind.wan_yuan:
        return fen_to_wan_yuan(int(value))
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def content_disposition(filename: str) -> str:
    """`attachment` with an ASCII fallback name and the real (possibly Chinese) one per RFC 6266."""
    fallback = filename.encode("ascii", "replace").decode().replace("?", "_").replace('"', "_")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename)}"


async def _aiter(
    rows: Iterable[Sequence[Any]] | AsyncIterable[Sequence[Any]],
) -> AsyncIterator[Sequence[Any]]:
    if isinstance(rows, AsyncIterable):
        async for row in rows:
            yield row
    else:
        for row in rows:
            yield row


def csv_response(
    filename: str,
    columns: Sequence[Column],
    rows: Iterable[Sequence[Any]] | AsyncIterable[Sequence[Any]],
    *,
    headers: dict[str, str] | None = None,
) -> StreamingResponse:
    """A CSV download (UTF-8 with a BOM, CRLF rows) streamed as rows are produced."""

    async def body() -> AsyncIterator[bytes]:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow([c.header for c in columns])
        yield b"\xef\xbb\xbf" + buffer.getvalue().encode()
        async for row in _aiter(rows):
            buffer.seek(0)
            buffer.truncate()
            writer.writerow(
                [
                    "" if (v := cell_value(c, x)) is None else v
                    for c, x in zip(columns, row, strict=True)
                ]
            )
            yield buffer.getvalue().encode()

    return StreamingResponse(
        body(),
        media_type=CSV_MEDIA_TYPE,
        headers={"Content-Disposition": content_disposition(filename), **(headers or {})},
    )


def display_width(text: str) -> int:
    """Columns a text takes in a spreadsheet: wide (CJK) characters count twice."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


@dataclass(slots=True)
class Sheet:
    """What a workbook holds besides its rows: a title line, notes under it (the period, the
    counting rule, when it was produced) and an optional totals row (values as in a row)."""

    title: str
    notes: Sequence[str] = ()
    totals: Sequence[Any] | None = None
    name: str = "Sheet1"


async def xlsx_response(
    filename: str,
    columns: Sequence[Column],
    rows: Iterable[Sequence[Any]] | AsyncIterable[Sequence[Any]],
    sheet: Sheet,
    *,
    headers: dict[str, str] | None = None,
) -> Response:
    """An XLSX download: title and notes above a bold header row, numbers stored as numbers
    (money with two decimals), an optional bold totals row, column widths fitted to the text."""
    with tempfile.TemporaryFile() as tmp:
        book = xlsxwriter.Workbook(tmp, {"constant_memory": True})
        ws = book.add_worksheet(sheet.name)
        bold = book.add_format({"bold": True})
        money = book.add_format({"num_format": "#,##0.00"})
        bold_money = book.add_format({"bold": True, "num_format": "#,##0.00"})
        widths = [display_width(c.header) for c in columns]
        ws.write_string(0, 0, sheet.title, book.add_format({"bold": True, "font_size": 14}))
        for i, note in enumerate(sheet.notes, start=1):
            ws.write_string(i, 0, note)
        header_row = len(sheet.notes) + 2
        for j, c in enumerate(columns):
            ws.write_string(header_row, j, c.header, bold)
        r = header_row
        async for row in _aiter(rows):
            r += 1
            _write_row(ws, r, columns, row, money, None, widths)
        if sheet.totals is not None:
            _write_row(ws, r + 1, columns, sheet.totals, bold_money, bold, widths)
        for j, w in enumerate(widths):
            ws.set_column(j, j, min(max(w + 2, 8), 60))
        book.close()
        tmp.seek(0)
        content = tmp.read()
    return Response(
        content,
        media_type=XLSX_MEDIA_TYPE,
        headers={"Content-Disposition": content_disposition(filename), **(headers or {})},
    )


def _write_row(
    ws: Any,
    r: int,
    columns: Sequence[Column],
    row: Sequence[Any],
    money: Any,
    text_format: Any,
    widths: list[int],
) -> None:
    for j, (c, raw) in enumerate(zip(columns, row, strict=True)):
        value = cell_value(c, raw)
        if value is None:
            continue
        if isinstance(value, Decimal):
            ws.write_number(r, j, float(value), money)
            text = f"{value:,}"
        elif isinstance(value, int | float) and not isinstance(value, bool):
            ws.write_number(r, j, value, text_format)
            text = str(value)
        else:
            text = str(value)
            ws.write_string(r, j, text, text_format)
        widths[j] = max(widths[j], display_width(text))
