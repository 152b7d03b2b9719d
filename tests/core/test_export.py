"""Downloads open in Excel as a person expects: Chinese text, money as numbers, exact totals."""

from __future__ import annotations

import io
from decimal import Decimal

import openpyxl
import pytest

from app.core.export import Column, Kind, Sheet, content_disposition, csv_response, xlsx_response

COLUMNS = [
    Column("合作社"),
    Column("订单数", Kind.integer),
    Column("金额（元）", Kind.yuan),
    Column("金额（万元）", Kind.wan_yuan),
]
ROWS = [
    ["巴塘县夏邛镇松茸专业合作社", 3, 12_345_678, 12_345_678],
    ["中咱镇苹果合作社", 1, 5, 5_000],
]


async def _body(response) -> bytes:  # type: ignore[no-untyped-def]
    return b"".join([chunk async for chunk in response.body_iterator])


async def test_csv_has_a_bom_chinese_headers_and_exact_yuan() -> None:
    response = csv_response("统计.csv", COLUMNS, ROWS)
    body = await _body(response)
    assert body.startswith(b"\xef\xbb\xbf")
    lines = body.decode("utf-8-sig").split("\r\n")
    assert lines[0] == "合作社,订单数,金额（元）,金额（万元）"
    assert lines[1] == "巴塘县夏邛镇松茸专业合作社,3,123456.78,12.35"
    assert lines[2] == "中咱镇苹果合作社,1,0.05,0.01"  # 0.005 万元 rounds half up
    assert response.headers["content-disposition"].startswith("attachment;")


async def test_csv_streams_rows_from_an_async_source() -> None:
    async def rows():  # type: ignore[no-untyped-def]
        for row in ROWS:
            yield row

    body = await _body(csv_response("x.csv", COLUMNS, rows()))
    assert body.decode("utf-8-sig").count("\r\n") == 3


async def test_xlsx_numbers_are_numbers_with_a_totals_row_and_notes() -> None:
    sheet = Sheet(
        title="消费帮扶统计",
        notes=["统计期间：2026-01-01 至 2026-12-31"],
        totals=["合计", 4, 12_345_683, 12_350_678],
    )
    response = await xlsx_response("统计.xlsx", COLUMNS, ROWS, sheet)
    book = openpyxl.load_workbook(io.BytesIO(response.body))
    ws = book.active
    values = [list(r) for r in ws.iter_rows(values_only=True)]
    assert values[0][0] == "消费帮扶统计"
    assert values[1][0] == "统计期间：2026-01-01 至 2026-12-31"
    header = values.index(["合作社", "订单数", "金额（元）", "金额（万元）"])
    data = values[header + 1 : header + 3]
    assert data[0] == ["巴塘县夏邛镇松茸专业合作社", 3, 123456.78, 12.35]
    assert values[header + 3] == ["合计", 4, 123456.83, 12.35]
    total = sum(Decimal(str(r[2])) for r in data)
    assert total == Decimal("123456.83")
    # the Chinese name fits its column: 13 wide characters count 26
    assert ws.column_dimensions["A"].width >= 26


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "settlement.csv",
            "attachment; filename=\"settlement.csv\"; filename*=UTF-8''settlement.csv",
        ),
        ("统计.xlsx", "attachment; filename=\"__.xlsx\"; filename*=UTF-8''%E7%BB%9F%E8%AE%A1.xlsx"),
    ],
)
def test_content_disposition_names_the_file_for_every_browser(name: str, expected: str) -> None:
    assert content_disposition(name) == expected
