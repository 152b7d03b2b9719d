"""Downloads: one statement line by line, and the bank payout batch for the finance office.

Both are built from rows read in the request's transaction (the batch's audit event lands with
the same commit), then written by `app/core/export.py`: CSV in UTF-8 with a BOM, or XLSX, with
money in 元.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import record
from app.core.export import Column, ExportFormat, Kind, Sheet, csv_response, xlsx_response
from app.core.money import fen_to_yuan
from app.core.time import SHANGHAI, utcnow
from app.models import Merchant, Settlement, SettlementStatus, User
from app.settlement.queries import get_visible, read_settlements
from app.settlement.schemas import SettlementRead

STATEMENT_COLUMNS = [
    Column("类型"),  # 明细 (an order line), 订单 (a settled merchant order), 调整, 合计
    Column("订单号"),
    Column("完成时间"),
    Column("商品"),
    Column("单价(元)", Kind.yuan),
    Column("数量", Kind.integer),
    Column("已退数量", Kind.integer),
    Column("货款(元)", Kind.yuan),
    Column("退款(元)", Kind.yuan),
    Column("佣金(元)", Kind.yuan),
    Column("调整(元)", Kind.yuan),
    Column("应结(元)", Kind.yuan),
]

BATCH_COLUMNS = [
    Column("商户"),
    Column("开户银行"),
    Column("户名"),
    Column("账号"),
    Column("金额(元)", Kind.yuan),
    Column("结算单号"),
    Column("结算截止日"),
]


def statement_rows(s: SettlementRead) -> list[list[Any]]:
    """Each order line, then its merchant order's settlement, then adjustments and the total."""
    rows: list[list[Any]] = []
    for mo in s.merchant_orders:
        completed = mo.completed_at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")
        for line in mo.lines or []:
            rows.append(
                [
                    "明细",
                    mo.order_no,
                    completed,
                    line.name,
                    line.unit_price_fen,
                    line.quantity,
                    line.refunded_quantity,
                    line.line_total_fen,
                    None,
                    None,
                    None,
                    None,
                ]
            )
        rows.append(
            [
                "订单",
                mo.order_no,
                completed,
                *[None] * 4,
                *[mo.gross_fen, mo.refunds_fen, mo.commission_fen, None, mo.net_fen],
            ]
        )
    for adj in s.adjustments:
        label = "迟到退款" if adj.kind == "late_refund" else f"上期结转 {adj.source_settlement_id}"
        rows.append(
            [
                f"调整: {label}",
                adj.order_no,
                *[None] * 6,
                *[adj.refunds_fen or None, adj.commission_fen or None, adj.amount_fen],
                -adj.amount_fen,
            ]
        )
    rows.append(
        [
            "合计",
            *[None] * 6,
            *[s.gross_fen, s.refunds_fen, s.commission_fen, s.adjustments_fen, s.net_fen],
        ]
    )
    return rows


async def statement_download(
    session: AsyncSession, user: User, settlement_id: uuid.UUID, fmt: ExportFormat
) -> Response:
    """One statement, line by line; for whoever may read it (404 for another merchant's)."""
    statement = await get_visible(session, user, settlement_id)
    (s,) = await read_settlements(session, [statement], with_lines=True)
    name = f"结算单-{s.merchant_name}-{s.period_end.isoformat()}-{str(s.id)[:8]}"
    rows = statement_rows(s)
    if fmt == ExportFormat.csv:
        return csv_response(f"{name}.csv", STATEMENT_COLUMNS, rows)
    sheet = Sheet(
        title=f"{s.merchant_name} 结算单",
        notes=[
            f"结算截止日 {s.period_end.isoformat()}（北京时间，含当日）",
            f"状态 {s.status}；结算单号 {s.id}",
        ],
        name="结算单",
    )
    return await xlsx_response(f"{name}.xlsx", STATEMENT_COLUMNS, rows, sheet)


async def payout_batch(session: AsyncSession, user: User, fmt: ExportFormat) -> Response:
    """The statements awaiting a bank payout, with full account numbers; merchants whose
    payouts are on hold are left out. Every download is an audit event (without the numbers)."""
    rows: Sequence[Any] = (
        await session.execute(
            select(
                Merchant.name,
                Merchant.bank_name,
                Merchant.bank_account_name,
                Merchant.bank_account_no,
                Settlement.net_fen,
                Settlement.id,
                Settlement.period_end,
            )
            .join(Merchant, Merchant.id == Settlement.merchant_id)
            .where(
                Settlement.status == SettlementStatus.pending_payout,
                Settlement.transfer_attempted_at.is_(None),
                Merchant.payouts_on_hold.is_(False),
            )
            .order_by(Merchant.name, Settlement.period_end, Settlement.id)
        )
    ).all()
    data = [[*row[:5], str(row[5]), row[6].isoformat()] for row in rows]
    total = sum(int(row[4]) for row in rows)
    await record(
        session,
        actor_id=user.id,
        action="settlement.batch_downloaded",
        subject_type="settlement_batch",
        subject_id=utcnow().strftime("%Y%m%dT%H%M%S"),
        detail={
            "format": str(fmt),
            "statements": len(data),
            "net_fen": total,
            "settlement_ids": [row[5] for row in data],
        },
    )
    name = f"代付批次-{utcnow().astimezone(SHANGHAI).strftime('%Y%m%d-%H%M')}"
    if fmt == ExportFormat.csv:
        return csv_response(f"{name}.csv", BATCH_COLUMNS, data)
    sheet = Sheet(
        title="结算代付批次",
        notes=[f"{len(data)} 笔，合计 {fen_to_yuan(total)} 元；暂停结算的商户不在其中"],
        totals=["合计", None, None, None, total, None, None],
        name="代付批次",
    )
    return await xlsx_response(f"{name}.xlsx", BATCH_COLUMNS, data, sheet)
