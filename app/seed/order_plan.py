"""The demo year of orders as a plan: who buys what on which day, and what becomes of it.

`plan_orders` is pure and seeded with `random.Random(2026)`: the same "now" and catalogue give the
same plan. `app.seed.orders` plays it through the services.

Timeline rules (the contract is silent on demo data): orders are placed on the chosen day in daytime
hours of Asia/Shanghai (08:00–21:30); a bank transfer is confirmed within the payment deadline;
merchants ship 1–3 days later (fresh goods the next day), buyers confirm receipt 2–6 days after
that or the order completes `AUTO_COMPLETE_DAYS` after shipping, refunds are asked for and decided
within a few days of receipt. Whatever would happen after "now" has not happened yet, so the
newest orders are still paid or shipped; a few placed minutes ago still await payment.

Volumes follow the buyers' habits: individuals all year (more before the Spring Festival and
Mid-Autumn, in the matsutake season July–September and around Double Eleven), budget-unit and
school canteens on working days (schools not in their holidays), the trade union before festivals
(gift packs for staff), the enterprise mostly before festivals.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum

from app.core.time import SHANGHAI

SEED = 2026
SAMPLED_ORDERS = 350
"""Orders spread over the 365 days before today; a dozen more are placed in the last days."""

# Festival dates (Gregorian) of the years a demo may run in; outside them, no festival boost.
SPRING_FESTIVAL = tuple(date.fromisoformat(d) for d in (
    "2024-02-10", "2025-01-29", "2026-02-17", "2027-02-06", "2028-01-26", "2029-02-13",
    "2030-02-03", "2031-01-23",
))  # fmt: skip
MID_AUTUMN = tuple(date.fromisoformat(d) for d in (
    "2024-09-17", "2025-10-06", "2026-09-25", "2027-09-15", "2028-10-03", "2029-09-22",
    "2030-09-12", "2031-10-01",
))  # fmt: skip
DRAGON_BOAT = tuple(date.fromisoformat(d) for d in (
    "2024-06-10", "2025-05-31", "2026-06-19", "2027-06-09", "2028-05-28", "2029-06-16",
    "2030-06-05", "2031-06-24",
))  # fmt: skip


# --- who buys ----------------------------------------------------------------------------------


class Habit(StrEnum):
    individual = "individual"
    canteen = "canteen"
    union = "union"
    enterprise = "enterprise"
    school = "school"
    hospital = "hospital"


@dataclass(frozen=True)
class DemoBuyer:
    email: str
    habit: Habit
    recipient: str
    phone: str
    region_code: str
    address: str
    rate: float = 1.0
    """Relative ordering frequency among buyers of the same habit."""


_QDH = "浙江省杭州市淳安县千岛湖镇"
BUYERS: tuple[DemoBuyer, ...] = (
    DemoBuyer("buyer1@chunan.demo", Habit.individual, "方丽华", "13857100001", "330127",
              _QDH + "新安东路128号3幢2单元501室"),
    DemoBuyer("buyer2@chunan.demo", Habit.individual, "余建国", "13857100002", "330127",
              "浙江省杭州市淳安县汾口镇汾口大街56号"),
    DemoBuyer("buyer3@chunan.demo", Habit.individual, "徐晓燕", "13857100003", "330127",
              "浙江省杭州市淳安县威坪镇威坪街88号", rate=0.7),
    DemoBuyer("buyer@hangzhou.demo", Habit.individual, "杭州西湖区买家", "13857100009", "330106",
              "浙江省杭州市西湖区文三路259号昌地火炬大厦1号楼1203室", rate=0.8),
    DemoBuyer("canteen@chunan.demo", Habit.canteen, "周国强（机关食堂）", "13857100004", "330127",
              _QDH + "环湖北路1号县行政中心机关食堂"),
    DemoBuyer("union@chunan.demo", Habit.union, "汪晓梅（县总工会）", "13857100005", "330127",
              _QDH + "新安大街30号县总工会办公室"),
    DemoBuyer("purchasing@qiandaohu-foods.demo", Habit.enterprise, "程立新（采购部）",
              "13857100006", "330127", _QDH + "坪山工业园区青溪路8号"),
    DemoBuyer("school@chunan.demo", Habit.school, "邵老师（学校食堂）", "13857100007", "330127",
              _QDH + "梦姑路55号千岛湖镇第一小学"),
    DemoBuyer("hospital@chunan.demo", Habit.hospital, "鲍经理（医院食堂）", "13857100008",
              "330127", _QDH + "新安东路58号县第一人民医院后勤楼"),
)  # fmt: skip

_CATEGORY_TASTE: dict[Habit, dict[str, float]] = {
    Habit.individual: {"mushrooms": 2, "fruit": 2, "meat": 2, "grains": 1.5, "specialties": 2.5,
                       "handicrafts": 0.4, "gift-packs": 0.6},
    Habit.canteen: {"grains": 4, "meat": 3, "fruit": 3, "specialties": 2, "gift-packs": 0.5},
    Habit.union: {"gift-packs": 6, "meat": 1.5, "mushrooms": 1, "specialties": 1, "fruit": 1},
    Habit.enterprise: {"gift-packs": 4, "specialties": 2, "meat": 2, "mushrooms": 1.5,
                       "fruit": 1, "handicrafts": 0.2},
    Habit.school: {"grains": 4, "fruit": 3, "meat": 2, "specialties": 1},
    Habit.hospital: {"grains": 3, "fruit": 3, "meat": 3, "specialties": 1.5},
}  # fmt: skip

_NOTES: dict[Habit, tuple[str | None, ...]] = {
    Habit.individual: (None, None, None, "请放快递柜", "周末在家，工作日放门卫"),
    Habit.canteen: ("机关食堂采购，工作日8:00–16:00收货", "预留份额采购，请随货附发票"),
    Habit.union: ("职工节日福利，请节前送达工会办公室", "请随货开具增值税普通发票"),
    Habit.enterprise: ("员工福利采购，请联系采购部收货", None),
    Habit.school: ("学校食堂收货，请提前一天电话联系", None),
    Habit.hospital: ("医院食堂收货，送后勤楼一楼", None),
}


# --- what is for sale -------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    """An active product of an approved demo merchant, as the planner sees it."""

    id: uuid.UUID
    merchant_id: uuid.UUID
    merchant_no: int
    name: str
    category: str
    unit: str
    stock: int
    shelf_life_days: int | None

    @property
    def fresh(self) -> bool:
        return self.shelf_life_days is not None and self.shelf_life_days <= 7

    def in_season(self, day: date) -> bool:
        # Fresh matsutake is picked July–September; fresh chillies June–September.
        if self.fresh and self.category == "mushrooms":
            return 7 <= day.month <= 9
        if self.fresh and self.category == "specialties":
            return 6 <= day.month <= 9
        return True


# --- the plan ---------------------------------------------------------------------------------


class Fate(StrEnum):
    pending = "pending"
    """Placed minutes ago, not paid yet (not expired)."""
    payment_timeout = "payment_timeout"
    buyer_cancelled = "buyer_cancelled"
    """Cancelled by the buyer before paying."""
    cancelled_after_payment = "cancelled_after_payment"
    """Paid, then cancelled by the buyer before shipping: refunded in full."""
    normal = "normal"
    """Paid, then shipped and received as far as time allows."""
    partly_refunded = "partly_refunded"
    refund_rejected = "refund_rejected"
    fully_refunded = "fully_refunded"
    refund_requested = "refund_requested"
    """Received, a refund asked for and not decided yet."""


@dataclass
class OrderPlan:
    buyer: DemoBuyer
    created: datetime
    lines: list[tuple[Item, int]]
    fate: Fate = Fate.normal
    note: str | None = None
    payment_opened: datetime | None = None
    paid: datetime | None = None
    cancelled: datetime | None = None
    shipped: datetime | None = None
    completed: datetime | None = None
    auto_completed: bool = False
    refund_lines: list[tuple[uuid.UUID, int]] = field(default_factory=list)
    """(product id, units) asked back; empty for a full refund (everything)."""
    refund_reason: str = ""
    refund_requested: datetime | None = None
    refund_decided: datetime | None = None
    refund_settled: datetime | None = None

    @property
    def last_event(self) -> datetime:
        moments = (
            self.created, self.payment_opened, self.paid, self.cancelled, self.shipped,
            self.completed, self.refund_requested, self.refund_decided, self.refund_settled,
        )  # fmt: skip
        return max(m for m in moments if m is not None)


def local_time(moment: datetime) -> datetime:
    return moment.astimezone(SHANGHAI)


def daytime(day: date, rng: random.Random, latest: datetime | None = None) -> datetime:
    """A moment between 08:00 and 21:30 Asia/Shanghai on `day` (and before `latest`)."""
    start = datetime.combine(day, time(8, 0), tzinfo=SHANGHAI)
    end = datetime.combine(day, time(21, 30), tzinfo=SHANGHAI)
    if latest is not None:
        end = min(end, latest.astimezone(SHANGHAI))
    seconds = max(int((end - start).total_seconds()), 1)
    return (start + timedelta(seconds=rng.randrange(seconds))).astimezone(UTC)


def _later(moment: datetime, days: int, rng: random.Random) -> datetime:
    """Daytime `days` (Shanghai calendar) after `moment`, and always after it."""
    candidate = daytime(local_time(moment).date() + timedelta(days=days), rng)
    if candidate <= moment:
        candidate = moment + timedelta(minutes=rng.randint(20, 120))
    return candidate


def _days_before(day: date, festivals: tuple[date, ...], within: int) -> bool:
    return any(0 < (f - day).days <= within for f in festivals)


def _spring_holiday(day: date) -> bool:
    return any(-1 <= (day - f).days <= 6 for f in SPRING_FESTIVAL)


def _winter_break(day: date) -> bool:
    return any(-20 <= (day - f).days <= 15 for f in SPRING_FESTIVAL)


def _rate(buyer: DemoBuyer, day: date) -> float:
    """How likely `buyer` orders on `day`, relative to the others: festivals, seasons, weekends."""
    weekend = day.weekday() >= 5
    matsutake = 7 <= day.month <= 9
    spring = _days_before(day, SPRING_FESTIVAL, 25)
    mid_autumn = _days_before(day, MID_AUTUMN, 20)
    habit = buyer.habit
    if habit == Habit.individual:
        rate = 0.8 * (1.3 if weekend else 1.0)
        rate *= 2.5 if spring else 0.5 if _spring_holiday(day) else 1.0
        rate *= 2.0 if mid_autumn else 1.0
        rate *= 2.0 if matsutake else 1.0
        rate *= 1.8 if day.month == 11 and day.day <= 11 else 1.0  # Double Eleven
    elif habit == Habit.canteen:
        rate = 0.0 if weekend or _spring_holiday(day) else 1.2 * (1.5 if spring else 1.0)
    elif habit == Habit.union:
        rate = 0.02
        if _days_before(day, SPRING_FESTIVAL, 30) or _days_before(day, MID_AUTUMN, 25):
            rate = 2.0
        elif _days_before(day, DRAGON_BOAT, 14):
            rate = 0.8
        elif day.month == 3 and day.day <= 7:  # Women's Day
            rate = 0.6
        elif day.month == 12 and day.day >= 20:  # New Year's Day
            rate = 0.5
        rate = 0.0 if weekend else rate
    elif habit == Habit.enterprise:
        rate = 0.05 if weekend else 0.25
        rate *= 5.0 if _days_before(day, SPRING_FESTIVAL, 30) or mid_autumn else 1.0
        rate *= 1.5 if matsutake else 1.0
    elif habit == Habit.school:
        summer = (day.month == 7 and day.day >= 10) or day.month == 8
        rate = 0.0 if weekend or summer or _winter_break(day) else 0.6
    else:  # hospital
        rate = (0.4 if weekend else 0.6) * (0.5 if _spring_holiday(day) else 1.0)
    return rate * buyer.rate


def _category_taste(habit: Habit, day: date) -> dict[str, float]:
    taste = dict(_CATEGORY_TASTE[habit])
    if 7 <= day.month <= 9 and "mushrooms" in taste:
        taste["mushrooms"] *= 4 if habit == Habit.individual else 2
    if 9 <= day.month <= 11 and "fruit" in taste:  # apples are picked in autumn
        taste["fruit"] *= 2.5
    festive = _days_before(day, SPRING_FESTIVAL, 30) or _days_before(day, MID_AUTUMN, 25)
    if festive and "gift-packs" in taste:
        taste["gift-packs"] *= 3
    return taste


def _quantity(habit: Habit, item: Item, rng: random.Random) -> int:
    if item.unit == "克":
        return rng.choice((50, 100, 200)) * (1 if habit == Habit.individual else 5)
    if item.category == "handicrafts":
        return 1 if habit == Habit.individual else rng.randint(2, 6)
    if habit == Habit.individual:
        return rng.randint(1, 5) if item.unit in ("斤", "kg") else rng.randint(1, 3)
    if habit in (Habit.union, Habit.enterprise) and item.category == "gift-packs":
        return rng.randint(20, 80)
    if item.unit == "kg":
        return rng.randint(10, 60)
    if item.unit == "斤":
        return rng.randint(5, 30)
    return rng.randint(4, 20)


def _lines(
    buyer: DemoBuyer, day: date, catalogue: list[Item], rng: random.Random
) -> list[tuple[Item, int]]:
    taste = _category_taste(buyer.habit, day)
    offer = [i for i in catalogue if i.in_season(day) and taste.get(i.category, 0) > 0]
    weights = [taste[i.category] for i in offer]
    wanted = rng.choices((1, 2, 3), (6, 3, 1) if buyer.habit == Habit.individual else (3, 4, 3))[0]
    chosen: list[Item] = []
    while len(chosen) < min(wanted, len(offer)):
        item = rng.choices(offer, weights)[0]
        if item not in chosen:
            chosen.append(item)
    return [(item, _quantity(buyer.habit, item, rng)) for item in chosen]


_PARTIAL_REASONS = (
    "运输途中部分商品挤压破损",
    "少量果子磕碰腐烂",
    "包装破损，部分商品受潮",
    "实收数量少于订购数量",
)
_FULL_REASONS = ("冷链延误，整单到货变质", "发错商品，整单退回")
_REJECTED_REASON = "口感与预期不同，想退一部分"
REJECT_REASON = "商品无质量问题且签收已久，已与买家电话沟通说明"
_REQUESTED_REASON = "到货有破损，申请退部分货款"


def plan_orders(
    now: datetime, catalogue: list[Item], timeout_minutes: float, auto_complete_days: float
) -> list[OrderPlan]:
    """The year of orders ending at `now`, oldest first. Deterministic for the same inputs."""
    rng = random.Random(SEED)  # noqa: S311 - demo data, reproducible on purpose
    catalogue = sorted(catalogue, key=lambda i: (i.merchant_no, i.name))
    timeout = timedelta(minutes=timeout_minutes)
    today = local_time(now).date()

    days = [today - timedelta(days=k) for k in range(365, 0, -1)]
    pairs = [(day, buyer) for day in days for buyer in BUYERS]
    weights = [_rate(buyer, day) for day, buyer in pairs]
    plans: list[OrderPlan] = []
    for day, buyer in rng.choices(pairs, weights, k=SAMPLED_ORDERS):
        plans.append(OrderPlan(buyer, daytime(day, rng), _lines(buyer, day, catalogue, rng)))
    plans.sort(key=lambda p: p.created)

    # Cancellations, at about their real-life rates, and at least a few of each.
    for plan in plans:
        roll = rng.random()
        if roll < 0.05:
            plan.fate = Fate.payment_timeout
        elif roll < 0.085:
            plan.fate = Fate.buyer_cancelled
        elif roll < 0.095:
            plan.fate = Fate.cancelled_after_payment
    for fate, least in (
        (Fate.payment_timeout, 3),
        (Fate.buyer_cancelled, 3),
        (Fate.cancelled_after_payment, 2),
    ):
        normal = [p for p in plans if p.fate == Fate.normal]
        missing = least - sum(p.fate == fate for p in plans)
        for plan in rng.sample(normal, max(missing, 0)):
            plan.fate = fate

    for plan in plans:
        _timeline(plan, now, timeout, auto_complete_days, rng)
    _refunds(plans, now, rng)
    plans += _recent(now, today, catalogue, timeout, rng)
    plans.sort(key=lambda p: p.created)
    for plan in plans:
        plan.note = rng.choice(_NOTES[plan.buyer.habit])
    return plans


def _timeline(
    plan: OrderPlan, now: datetime, timeout: timedelta, auto_days: float, rng: random.Random
) -> None:
    created = plan.created
    opened = created + timeout * rng.uniform(0.05, 0.25)
    if plan.fate == Fate.payment_timeout:
        plan.payment_opened = opened if rng.random() < 0.7 else None
        plan.cancelled = created + timeout + timedelta(seconds=rng.randint(20, 180))
        return
    if plan.fate == Fate.buyer_cancelled:
        plan.payment_opened = opened if rng.random() < 0.5 else None
        plan.cancelled = created + timeout * rng.uniform(0.3, 0.95)
        return
    plan.payment_opened = opened
    plan.paid = created + timeout * rng.uniform(0.3, 0.9)
    if plan.fate == Fate.cancelled_after_payment:
        plan.cancelled = plan.paid + timedelta(minutes=rng.randint(10, 240))
        return
    fresh = any(item.fresh for item, _ in plan.lines)
    shipped = _later(plan.paid, 1 if fresh else rng.choice((1, 1, 2, 2, 3)), rng)
    if rng.random() < 0.75:
        completed = _later(shipped, rng.randint(2, 6), rng)
    else:
        completed = shipped + timedelta(days=auto_days, seconds=rng.randint(30, 1800))
        plan.auto_completed = True
    if shipped < now:
        plan.shipped = shipped
        if completed < now:
            plan.completed = completed


def _refunds(plans: list[OrderPlan], now: datetime, rng: random.Random) -> None:
    """Refunds of some received orders: partly approved, rejected, in full, one awaiting."""
    settled_before = now - timedelta(days=8)
    eligible = [
        p for p in plans if p.fate == Fate.normal and p.completed and p.completed < settled_before
    ]
    for plan in eligible:
        roll = rng.random()
        if roll < 0.06 and sum(q for _, q in plan.lines) >= 2:
            plan.fate = Fate.partly_refunded
        elif 0.06 <= roll < 0.08:
            plan.fate = Fate.refund_rejected
        elif 0.08 <= roll < 0.10:
            plan.fate = Fate.fully_refunded
    for fate, least in (
        (Fate.partly_refunded, 4),
        (Fate.refund_rejected, 2),
        (Fate.fully_refunded, 2),
    ):
        candidates = [p for p in eligible if p.fate == Fate.normal]
        if fate == Fate.partly_refunded:
            candidates = [p for p in candidates if sum(q for _, q in p.lines) >= 2]
        missing = least - sum(p.fate == fate for p in plans)
        for plan in rng.sample(candidates, min(max(missing, 0), len(candidates))):
            plan.fate = fate
    received = [p for p in plans if p.fate == Fate.normal and p.completed]
    received.sort(key=lambda p: p.completed or now)
    awaiting = 0
    for plan in reversed(received):  # the newest receipts: asked the day after, or that day
        if awaiting == 2:
            break
        assert plan.completed is not None
        requested = _later(plan.completed, 1, rng)
        if requested >= now:
            requested = _later(plan.completed, 0, rng)
        if requested < now:
            awaiting += 1
            plan.fate = Fate.refund_requested
            plan.refund_requested = requested
            plan.refund_lines = [(plan.lines[0][0].id, 1)]
            plan.refund_reason = _REQUESTED_REASON

    for plan in plans:
        if plan.fate not in (Fate.partly_refunded, Fate.refund_rejected, Fate.fully_refunded):
            continue
        assert plan.completed is not None
        plan.refund_requested = _later(plan.completed, rng.randint(0, 3), rng)
        plan.refund_decided = _later(plan.refund_requested, rng.randint(0, 2), rng)
        if plan.fate == Fate.partly_refunded:
            item, quantity = max(plan.lines, key=lambda line: line[1])
            if quantity >= 2:
                plan.refund_lines = [(item.id, rng.randint(1, max(1, quantity // 4)))]
            else:  # several lines of one unit each: one of them comes back
                plan.refund_lines = [(plan.lines[-1][0].id, 1)]
            plan.refund_reason = rng.choice(_PARTIAL_REASONS)
        elif plan.fate == Fate.refund_rejected:
            plan.refund_lines = [(plan.lines[0][0].id, 1)]
            plan.refund_reason = _REJECTED_REASON
        else:
            plan.refund_reason = rng.choice(_FULL_REASONS)
        if plan.fate != Fate.refund_rejected:
            plan.refund_settled = plan.refund_decided + timedelta(minutes=rng.randint(1, 10))
    # Bank refunds are paid when the admin records the transfer: the latest partial refund is
    # still awaiting it (approved, its money in refunds_in_transit).
    partial = [p for p in plans if p.fate == Fate.partly_refunded and p.refund_decided]
    if partial:
        max(partial, key=lambda p: p.refund_decided or now).refund_settled = None


def _recent(
    now: datetime, today: date, catalogue: list[Item], timeout: timedelta, rng: random.Random
) -> list[OrderPlan]:
    """Orders of the last days whose state shows the live workflow: a few awaiting payment
    (placed minutes ago), paid and waiting to ship, shipped and waiting for the buyer."""
    buyers = [b for b in BUYERS if b.habit in (Habit.individual, Habit.canteen, Habit.hospital)]
    plans: list[OrderPlan] = []
    for k in range(4):  # awaiting payment, not expired
        created = now - timeout * (0.4 - 0.1 * k) - timedelta(seconds=rng.randint(0, 30))
        plan = OrderPlan(rng.choice(buyers), created, [], Fate.pending)
        plan.lines = _lines(plan.buyer, today, catalogue, rng)
        if k != 1:
            plan.payment_opened = created + (now - created) * rng.uniform(0.1, 0.5)
        plans.append(plan)
    latest = now - timeout - timedelta(minutes=5)
    for k in range(4):  # paid, waiting to ship
        day = local_time(latest).date() - timedelta(days=k // 2)
        if local_time(latest) < datetime.combine(day, time(9, 0), tzinfo=SHANGHAI):
            day -= timedelta(days=1)
        plan = OrderPlan(rng.choice(buyers), daytime(day, rng, latest), [])
        plan.lines = _lines(plan.buyer, day, catalogue, rng)
        plan.payment_opened = plan.created + timeout * rng.uniform(0.05, 0.25)
        plan.paid = plan.created + timeout * rng.uniform(0.3, 0.9)
        plans.append(plan)
    for k in range(3):  # shipped, not yet received
        day = today - timedelta(days=3 + k)
        plan = OrderPlan(rng.choice(buyers), daytime(day, rng), [])
        plan.lines = _lines(plan.buyer, day, catalogue, rng)
        plan.payment_opened = plan.created + timeout * rng.uniform(0.05, 0.25)
        plan.paid = plan.created + timeout * rng.uniform(0.3, 0.9)
        plan.shipped = _later(plan.paid, 1, rng)
        plans.append(plan)
    return plans
