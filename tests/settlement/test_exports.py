"""Downloads: one statement line by line (CSV with a BOM), and the bank payout batch with full
account numbers for admins only, every download audited."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import openpyxl
import pytest

from app.core.time import shanghai_today
from app.models import Role
from tests.fixtures.factories import auth, make_user
from tests.fixtures.orders import API, ask_refund
from tests.fixtures.settlement import approve, of, run, sell

YESTERDAY = shanghai_today() - timedelta(days=1)


def read_csv(content: bytes) -> list[list[str]]:
    assert content.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))


async def test_a_statement_downloads_line_by_line(client, app, session, cast):
    order = await sell(client, app, session, cast, "m1", 3)
    refund = await ask_refund(client, app, cast["buyer"], order, [(order["line_id"], 1)])
    await approve(client, app, cast["admin"], refund["id"])
    statement = of(await run(client, app, cast["admin"], YESTERDAY), cast["m1"].id)

    r = await client.get(
        f"{API}/settlements/{statement['id']}/export?format=csv", headers=auth(app, cast["owner1"])
    )

    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    header, detail, mo, total = read_csv(r.content)
    assert header[0] == "类型"
    assert detail[0] == "明细"
    assert detail[1] == order["order_no"]
    assert detail[4:8] == ["45.00", "3", "1", "135.00"]
    assert mo[0] == "订单"
    assert mo[7:] == ["135.00", "45.00", "4.50", "", "85.50"]
    assert total[0] == "合计"
    assert total[-1] == "85.50"
    assert statement["net_fen"] == 8550


async def test_a_statement_downloads_as_xlsx_and_an_unknown_format_is_422(
    client, app, session, cast
):
    await sell(client, app, session, cast, "m1", 1)
    statement = of(await run(client, app, cast["admin"], YESTERDAY), cast["m1"].id)
    headers = auth(app, cast["admin"])
    r = await client.get(f"{API}/settlements/{statement['id']}/export?format=xlsx", headers=headers)
    assert r.status_code == 200
    sheet = openpyxl.load_workbook(io.BytesIO(r.content)).active
    values = [c for row in sheet.iter_rows(values_only=True) for c in row if c is not None]
    assert 42.75 in values  # 45 yuan less 5%
    for fmt in ("pdf", ""):
        r = await client.get(
            f"{API}/settlements/{statement['id']}/export?format={fmt}", headers=headers
        )
        assert r.status_code == 422
        assert r.json()["code"] == "validation_error"


async def test_the_payout_batch_has_full_account_numbers_and_is_audited(client, app, session, cast):
    await sell(client, app, session, cast, "m1", 2)
    await sell(client, app, session, cast, "m2", 1)
    result = await run(client, app, cast["admin"], YESTERDAY)
    s1, s2 = of(result, cast["m1"].id), of(result, cast["m2"].id)
    paid = await client.post(
        f"{API}/settlements/{s2['id']}/mark-paid",
        json={"bank_reference": "B-1"},
        headers=auth(app, cast["admin"]),
    )
    assert paid.status_code == 200

    r = await client.get(
        f"{API}/settlements/export?status=pending_payout&format=csv",
        headers=auth(app, cast["admin"]),
    )

    assert r.status_code == 200
    header, *rows = read_csv(r.content)
    assert header == ["商户", "开户银行", "户名", "账号", "金额(元)", "结算单号", "结算截止日"]
    assert rows == [
        [
            cast["m1"].name,
            cast["m1"].bank_name,
            cast["m1"].bank_account_name,
            cast["m1"].bank_account_no,
            "85.50",
            s1["id"],
            YESTERDAY.isoformat(),
        ]
    ]
    # nowhere else: the statement and the merchant show no account number
    for path in (f"/settlements/{s1['id']}", f"/merchants/{cast['m1'].id}"):
        shown = await client.get(f"{API}{path}", headers=auth(app, cast["admin"]))
        assert cast["m1"].bank_account_no not in shown.text

    x = await client.get(f"{API}/settlements/export?format=xlsx", headers=auth(app, cast["admin"]))
    assert x.status_code == 200
    sheet = openpyxl.load_workbook(io.BytesIO(x.content)).active
    cells = [c for row in sheet.iter_rows(values_only=True) for c in row if c is not None]
    assert cast["m1"].bank_account_no in cells
    assert 85.5 in cells

    events = (
        await client.get(
            f"{API}/audit-events",
            params={"action": "settlement.batch_downloaded"},
            headers=auth(app, cast["admin"]),
        )
    ).json()["items"]
    assert [e["detail"]["format"] for e in events] == ["xlsx", "csv"]
    assert events[1]["detail"]["settlement_ids"] == [s1["id"]]
    assert cast["m1"].bank_account_no not in str(events)


@pytest.mark.parametrize("role", ["merchant", "official", "buyer"])
async def test_only_admins_download_the_batch(client, app, session, cast, role):
    caller = cast["owner1"] if role == "merchant" else await make_user(session, role=Role(role))
    r = await client.get(f"{API}/settlements/export?format=csv", headers=auth(app, caller))
    assert r.status_code == 403
    assert cast["m1"].bank_account_no not in r.text


@pytest.mark.parametrize(
    "query", ["format=pdf", "status=paid&format=csv", "status=pending_payout", ""]
)
async def test_bad_batch_queries_are_422(client, app, cast, query):
    r = await client.get(f"{API}/settlements/export?{query}", headers=auth(app, cast["admin"]))
    assert r.status_code == 422
    assert r.json()["code"] == "validation_error"
