"""The demo marketplace: Batang (巴塘县, 513335) merchants and their products, Chun'an (淳安县,
330127) buyers, an admin and an official. `shanhai seed-demo` loads it.

Idempotent: merchants are keyed by USCC, users by e-mail, products by (merchant, name); a row
that exists is left as it is (a demo may have changed it), so running twice adds nothing.
Everything goes through the models, not through HTTP, and the caller commits.

To extend it, add a `_seed_<kind>` step to `seed_demo` that reads what the earlier steps returned,
keys its rows on something stable, and counts what it adds in `summary.added[<kind>]`.

The last step, `_seed_orders` (`app/seed/orders.py`), plays a year of orders through the order
and payment services; it runs only while there is no order at all, and those services commit
along the way, so a seeding with orders is not one transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings, get_settings
from app.core.security import hash_password
from app.core.time import shanghai_today, utcnow
from app.merchants.uscc import check_character
from app.models import (
    AssistanceClass,
    BuyerType,
    Merchant,
    MerchantKind,
    MerchantRole,
    MerchantStatus,
    Product,
    ProductStatus,
    Role,
    Settlement,
    StatsTarget,
    User,
)
from app.seed.orders import seed_orders
from app.seed.settlements import seed_settlements
from app.statistics.recount import rebuild

DEMO_PASSWORD = "shanhai-demo-2026"
"""The one password of every demo account (documented; never use the demo data in production)."""

ADMIN_EMAIL = "admin@shanhai.demo"
"""Confirms the demo's bank transfers."""
BATANG = "513335"
CHUNAN = "330127"
HANGZHOU_XIHU = "330106"
_APPROVED_FROM = datetime(2025, 3, 3, 2, 0, tzinfo=UTC)


# --- merchants -------------------------------------------------------------------------------


@dataclass(frozen=True)
class MerchantSeed:
    no: int
    """Stable demo number: the owner is `owner<no>@batang.demo`."""
    name: str
    kind: MerchantKind
    org_code: str
    """USCC positions 9–17 (9 characters); the prefix follows from `kind`, the check is computed."""
    legal_representative: str
    phone: str
    township: str
    address: str
    households: tuple[int, int, int]
    """Linked households: all, of which formerly poor, of which monitored."""
    bank_name: str
    bank_account_no: str
    status: MerchantStatus = MerchantStatus.approved
    status_reason: str | None = None

    @property
    def uscc(self) -> str:
        body = _USCC_PREFIX[self.kind] + BATANG + self.org_code
        return body + check_character(body)

    @property
    def owner_email(self) -> str:
        return f"owner{self.no}@batang.demo"


_USCC_PREFIX = {
    MerchantKind.enterprise: "91",
    MerchantKind.individual_business: "92",
    MerchantKind.cooperative: "93",
    MerchantKind.village_collective: "N2",
}

_ABC = "中国农业银行股份有限公司巴塘县支行"
_RCC = "四川巴塘农村商业银行股份有限公司"
_PSBC = "中国邮政储蓄银行股份有限公司巴塘县支行"
_ADDR = "四川省甘孜藏族自治州巴塘县"

MERCHANTS: tuple[MerchantSeed, ...] = (
    MerchantSeed(1, "巴塘县松茸专业合作社",
                 MerchantKind.cooperative, "MA62U1A01", "扎西次仁",
                 "+8613908361001", "措拉镇", _ADDR + "措拉镇措拉村二组", (268, 97, 12),
                 _ABC, "2270 0101 0400 1234 01"),
    MerchantSeed(2, "巴塘县毛桃加工厂",
                 MerchantKind.enterprise, "MA62U1B02", "王建华",
                 "+8613908361002", "夏邛镇", _ADDR + "夏邛镇团结路18号", (156, 48, 6),
                 _RCC, "8801 2000 0012 3456 02"),
    MerchantSeed(3, "巴塘县高原牦牛肉制品有限公司",
                 MerchantKind.enterprise, "MA62U1C03", "泽仁多吉",
                 "+8613908361003", "中咱镇", _ADDR + "中咱镇工业园区3号", (210, 74, 9),
                 _ABC, "2270 0101 0400 1234 03"),
    MerchantSeed(4, "巴塘县竹巴龙乡苹果种植专业合作社",
                 MerchantKind.cooperative, "MA62U1D04", "格桑曲珍",
                 "+8613908361004", "竹巴龙乡", _ADDR + "竹巴龙乡水磨沟村", (132, 51, 4),
                 _RCC, "8801 2000 0012 3456 04"),
    MerchantSeed(5, "巴塘县南区辣椒专业合作社",
                 MerchantKind.cooperative, "MA62U1E05", "洛绒降措",
                 "+8613908361005", "地巫镇", _ADDR + "地巫镇地巫村一组", (94, 35, 5),
                 _PSBC, "6217 9966 0000 1234 05"),
    MerchantSeed(6, "巴塘县甲英镇青稞苦荞种植专业合作社",
                 MerchantKind.cooperative, "MA62U1F06", "四郎卓玛",
                 "+8613908361006", "甲英镇", _ADDR + "甲英镇甲英村三组", (187, 70, 8),
                 _ABC, "2270 0101 0400 1234 06"),
    MerchantSeed(7, "巴塘县夏邛镇阿旺弦胡制作坊",
                 MerchantKind.individual_business, "MA62U1G07",
                 "阿旺平措", "+8613908361007", "夏邛镇", _ADDR + "夏邛镇弦子街6号", (12, 5, 1),
                 _RCC, "8801 2000 0012 3456 07"),
    MerchantSeed(8, "巴塘县拉哇乡卡日村股份经济合作社",
                 MerchantKind.village_collective, "MA62U1H08",
                 "次仁旺姆", "+8613908361008", "拉哇乡", _ADDR + "拉哇乡卡日村村委会", (143, 62, 7),
                 _RCC, "8801 2000 0012 3456 08"),
    MerchantSeed(9, "巴塘县苏哇龙乡玛咖种植专业合作社",
                 MerchantKind.cooperative, "MA62U1J09", "益西拉姆",
                 "+8613908361009", "苏哇龙乡", _ADDR + "苏哇龙乡王大龙村", (88, 40, 3),
                 _ABC, "2270 0101 0400 1234 09"),
    MerchantSeed(10, "巴塘县波密乡高原蜂业专业合作社",
                 MerchantKind.cooperative, "MA62U1K10", "李秀英",
                 "+8613908361010", "波密乡", _ADDR + "波密乡波密村五组", (56, 21, 2),
                 _PSBC, "6217 9966 0000 1234 10"),
    MerchantSeed(11, "巴塘县德达乡雪域特产商贸有限公司",
                 MerchantKind.enterprise, "MA62U1L11", "陈志强",
                 "+8613908361011", "德达乡", _ADDR + "德达乡德达村集市街2号", (310, 102, 11),
                 _ABC, "2270 0101 0400 1234 11"),
    MerchantSeed(12, "巴塘县昌波乡土陶与毛纺编织专业合作社",
                 MerchantKind.cooperative, "MA62U1M12",
                 "拉姆卓嘎", "+8613908361012", "昌波乡", _ADDR + "昌波乡昌波村手工艺坊",
                 (64, 30, 4), _RCC, "8801 2000 0012 3456 12"),
    MerchantSeed(13, "巴塘县亚日贡乡亚日贡村股份经济合作社",
                 MerchantKind.village_collective, "MA62U1N13",
                 "贡布扎西", "+8613908361013", "亚日贡乡", _ADDR + "亚日贡乡亚日贡村村委会",
                 (119, 55, 6), _PSBC, "6217 9966 0000 1234 13"),
    MerchantSeed(14, "巴塘县莫多乡牧民专业合作社",
                 MerchantKind.cooperative, "MA62U1P14", "多吉次仁",
                 "+8613908361014", "莫多乡", _ADDR + "莫多乡莫多村牧业点", (73, 33, 5),
                 _ABC, "2270 0101 0400 1234 14", status=MerchantStatus.pending),
    MerchantSeed(15, "巴塘县松多乡黑美人土豆种植专业合作社",
                 MerchantKind.cooperative, "MA62U1Q15",
                 "罗布顿珠", "+8613908361015", "松多乡", _ADDR + "松多乡松多村四组", (101, 44, 6),
                 _RCC, "8801 2000 0012 3456 15", status=MerchantStatus.suspended,
                 status_reason="食品经营许可证已过期，补交新证后恢复"),
)  # fmt: skip


# --- products --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Certificate:
    scheme: str
    issuer: str
    year: int
    valid_from: date
    valid_to: date


CERT_CURRENT = Certificate(
    "消费帮扶产品认定", "四川省农业农村厅", 2025, date(2025, 1, 1), date(2027, 12, 31)
)
"""The scheme in force since 2024."""
CERT_LAPSED_2025 = Certificate(
    "扶贫产品认定", "四川省乡村振兴局", 2023, date(2023, 1, 1), date(2025, 12, 31)
)
"""The old scheme: valid through 2025, not renewed yet."""
CERT_EXPIRED = Certificate(
    "扶贫产品认定", "四川省扶贫开发局", 2020, date(2020, 6, 1), date(2022, 12, 31)
)
"""Long expired: sales of these products never count as assistance."""

_C, _F, _X = CERT_CURRENT, CERT_LAPSED_2025, CERT_EXPIRED
_AG, _HC = AssistanceClass.agricultural, AssistanceClass.handicraft
_PENDING, _INACTIVE, _REJECTED = (
    ProductStatus.pending_review,
    ProductStatus.inactive,
    ProductStatus.rejected,
)


@dataclass(frozen=True)
class ProductSeed:
    merchant_no: int
    name: str
    category: str
    unit: str
    price_fen: int
    stock: int
    description: str
    weight_grams: int | None = None
    shelf_life_days: int | None = None
    township: str | None = None
    """Where it was grown or made; the merchant's township when not given."""
    assistance_class: AssistanceClass = AssistanceClass.agricultural
    certificate: Certificate | None = CERT_CURRENT
    status: ProductStatus = ProductStatus.active
    status_reason: str | None = None


def _p(
    merchant_no: int,
    name: str,
    category: str,
    unit: str,
    yuan: int | str,  # a string for fractions: money is never a float
    stock: int,
    description: str,
    weight_grams: int | None = None,
    shelf_life_days: int | None = None,
    **kwargs: object,
) -> ProductSeed:
    return ProductSeed(
        merchant_no,
        name,
        category,
        unit,
        int(Decimal(str(yuan)) * 100),
        stock,
        description,
        weight_grams,
        shelf_life_days,
        **kwargs,  # type: ignore[arg-type]
    )


PRODUCTS: tuple[ProductSeed, ...] = (
    # 1 松茸 — fresh 210–350 元/斤, July–September.
    _p(1, "巴塘鲜松茸（特级 8–12厘米）", "mushrooms", "斤", 328, 120,
       "措拉镇海拔3500米以上高山林下采摘，当天分级、冷链发货。菌柄粗壮、开伞少。", 500, 5),
    _p(1, "巴塘鲜松茸（一级 5–8厘米）", "mushrooms", "斤", 258, 200,
       "采摘后4小时内预冷，顺丰冷链直达。适合刺身、炭烤、煲汤。", 500, 5,
       township="茶洛乡"),
    _p(1, "巴塘鲜松茸（统货）", "mushrooms", "斤", 210, 300,
       "大小不一、品质一致的统货松茸，性价比之选，适合食堂与家庭。", 500, 5,
       township="波戈溪乡"),
    _p(1, "松茸干片（50克/罐）", "mushrooms", "盒", 158, 400,
       "鲜松茸低温烘干切片，泡发后炖汤、焖饭，香味浓郁。", 50, 540),
    _p(1, "松茸冻干粉（按克计价）", "mushrooms", "克", "1.2", 20000,
       "真空冷冻干燥研磨，调味提鲜，按克称量。", 1, 365),
    _p(1, "野生羊肚菌干货", "mushrooms", "斤", 598, 60,
       "春季高山羊肚菌，自然晾晒，无硫熏。", 500, 540, status=_PENDING, certificate=None),
    # 2 毛桃加工厂
    _p(2, "巴塘毛桃果脯（250克）", "specialties", "盒", 38, 500,
       "巴塘野生毛桃低糖果脯，酸甜可口。", 250, 270),
    _p(2, "毛桃果汁（248毫升×12瓶）", "specialties", "箱", 88, 300,
       "NFC鲜榨毛桃汁，不加香精色素。", 3200, 365, certificate=_X),
    _p(2, "毛桃干", "specialties", "斤", 45, 260,
       "整果去核自然晾晒，嚼劲十足。", 500, 360),
    _p(2, "野生毛桃果酱", "specialties", "份", 28, 350,
       "每份300克，熬煮6小时，抹面包、配酸奶。", 300, 365),
    _p(2, "毛桃仁（500克）", "specialties", "份", 56, 0,
       "毛桃核取仁，产季已过暂停销售。", 500, 300, status=_INACTIVE),
    # 3 牦牛肉 — fresh 40–45 元/斤, air-dried 170–230 元/斤.
    _p(3, "鲜牦牛肉（后腿）", "meat", "斤", 45, 400,
       "高原放牧牦牛，当日分割，冰鲜发货。", 500, 4),
    _p(3, "鲜牦牛肉（牛腩）", "meat", "斤", 40, 350,
       "肥瘦相间，适合红烧、清炖。", 500, 4, township="列衣乡"),
    _p(3, "风干牦牛肉（原味）", "meat", "斤", 198, 300,
       "传统挂晒风干工艺，肉质紧实，越嚼越香。", 500, 270),
    _p(3, "风干牦牛肉（麻辣）", "meat", "斤", 218, 260,
       "配巴塘大红袍花椒与南区辣椒，麻辣鲜香。", 500, 270),
    _p(3, "手撕牦牛肉干（200克）", "meat", "盒", 68, 600,
       "独立小包装，办公室与旅行零食。", 200, 240),
    _p(3, "牦牛酥油", "specialties", "斤", 55, 150,
       "牧民手工打制酥油，打酥油茶、做糌粑。", 500, 180, township="列衣乡"),
    _p(3, "高原牦牛肉礼盒（鲜肉2斤+肉干2盒）", "gift-packs", "套", 268, 120,
       "冷链配送，适合工会节日福利。", 1400, 4),
    _p(3, "牦牛肉辣椒酱", "specialties", "份", 26, 200,
       "每份220克，牦牛肉粒与南区辣椒熬制。", 220, 365, status=_PENDING, certificate=None),
    # 4 苹果 — farm gate 3.5–10 元/kg, gift boxes about 200 for 12.
    _p(4, "巴塘高原红富士苹果", "fruit", "kg", "9.8", 3000,
       "竹巴龙乡金沙江河谷种植，昼夜温差大，糖度15度以上。", 1000, 60),
    _p(4, "巴塘金冠苹果", "fruit", "kg", "7.5", 2000,
       "巴塘1911年起种植苹果，金冠为老品种，香气浓郁。", 1000, 45),
    _p(4, "巴塘苹果（5公斤装）", "fruit", "箱", 58, 800,
       "混装中果，食堂、家庭囤货首选。", 5000, 45),
    _p(4, "巴塘苹果礼盒（12枚装）", "gift-packs", "盒", 198, 400,
       "精选85毫米以上大果，单果套袋，礼盒包装。", 3500, 45),
    _p(4, "巴塘苹果干", "fruit", "斤", 36, 300,
       "低温烘干苹果脆片，无添加。", 500, 300),
    _p(4, "巴塘苹果醋（6瓶装）", "specialties", "箱", 68, 150,
       "苹果自然发酵，每瓶500毫升。", 3300, 540, certificate=_X),
    # 5 南区辣椒、花椒 — Sichuan pepper 80–100 元/斤.
    _p(5, "巴塘南区干辣椒", "specialties", "斤", 28, 800,
       "地巫镇南区干热河谷种植，色红油亮，香辣适中。", 500, 365),
    _p(5, "南区辣椒面（粗粉）", "specialties", "斤", 32, 500,
       "石碾粗磨，做油泼辣子、蘸水。", 500, 365),
    _p(5, "南区油泼辣子", "specialties", "份", 22, 400,
       "每份250克，菜籽油现泼。", 250, 180, certificate=_X),
    _p(5, "鲜辣椒（二荆条）", "specialties", "kg", 12, 500,
       "当季鲜椒，冷链发货。", 1000, 7),
    _p(5, "特辣魔鬼椒", "specialties", "斤", 66, 100,
       "外购辣椒分装。", 500, 365, certificate=None, status=_REJECTED,
       status_reason="产地非巴塘县，不符合消费帮扶产品认定要求"),
    # 6 青稞、苦荞
    _p(6, "有机青稞米", "grains", "kg", 18, 1500,
       "甲英镇高海拔青稞，富含β-葡聚糖，可与大米同煮。", 1000, 365),
    _p(6, "青稞糌粑", "grains", "斤", 20, 800,
       "青稞炒熟后石磨研粉，拌酥油茶即食。", 500, 240),
    _p(6, "青稞挂面（24包）", "grains", "箱", 48, 400,
       "青稞粉含量30%，劲道爽滑，适合食堂。", 6000, 365, certificate=_F),
    _p(6, "苦荞茶（300克）", "grains", "盒", 38, 600,
       "全胚芽苦荞烘焙，麦香浓。", 300, 540),
    _p(6, "苦荞米", "grains", "kg", 22, 700,
       "脱壳苦荞，煮粥、蒸饭皆宜。", 1000, 365, township="列衣乡"),
    _p(6, "青稞酥饼干", "grains", "盒", 28, 300,
       "新品，待审核。", 400, 180, status=_PENDING, certificate=None),
    # 7 弦胡 — 巴塘弦子的伴奏乐器.
    _p(7, "巴塘弦胡（传统手工，牛角琴筒）", "handicrafts", "套", 1280, 15,
       "巴塘弦子舞伴奏乐器，非遗传承人手工制作，含琴弓与琴盒。", 1800, None,
       assistance_class=_HC),
    _p(7, "巴塘弦胡（入门款）", "handicrafts", "套", 680, 30,
       "适合初学者的弦胡，含琴弓、松香。", 1500, None, assistance_class=_HC),
    _p(7, "弦胡琴弦替换装", "handicrafts", "份", 60, 200,
       "每份两根，马尾琴弓配套。", 50, None, assistance_class=_HC, certificate=None),
    _p(7, "迷你弦胡工艺摆件", "handicrafts", "份", 98, 80,
       "1:4比例缩小，可作书房摆件与纪念品。", 300, None, assistance_class=_HC,
       certificate=None),
    # 8 拉哇乡村集体 — walnuts and walnut oil.
    _p(8, "巴塘薄壳核桃", "specialties", "斤", 25, 1200,
       "拉哇乡金沙江畔老核桃树，壳薄易剥。", 500, 300),
    _p(8, "冷榨核桃油（500毫升）", "grains", "盒", 88, 500,
       "核桃仁低温物理压榨，适合婴幼儿辅食与凉拌。", 520, 540),
    _p(8, "生核桃仁", "specialties", "斤", 45, 400,
       "人工去壳，颗粒完整。", 500, 180),
    _p(8, "核桃油礼盒（2瓶装）", "gift-packs", "套", 198, 200,
       "两瓶500毫升冷榨核桃油，适合节日慰问。", 1200, 540),
    # 9 玛咖 — bought back from farmers at 30 元/斤.
    _p(9, "黑玛咖干果", "specialties", "斤", 60, 300,
       "苏哇龙乡海拔3000米以上种植，合作社以每斤30元保底回收。", 500, 540),
    _p(9, "黄玛咖干果", "specialties", "斤", 48, 300,
       "晒干整果，可泡酒、煲汤。", 500, 540, certificate=_F),
    _p(9, "玛咖切片（250克）", "specialties", "盒", 58, 400,
       "切片烘干，泡水、炖鸡。", 250, 540),
    _p(9, "玛咖粉（200克）", "specialties", "盒", 48, 200,
       "新品，待审核。", 200, 365, status=_PENDING, certificate=None),
    # 10 蜂蜜 — about 60 元/斤.
    _p(10, "巴塘高原土蜂蜜", "specialties", "斤", 60, 500,
       "中华蜂百花蜜，一年一取，自然成熟。", 500, 730),
    _p(10, "百花蜜礼盒（2斤装）", "gift-packs", "盒", 128, 200,
       "两瓶各500克，附木质蜂蜜勺。", 1200, 730),
    _p(10, "原生巢蜜（500克）", "specialties", "盒", 88, 120,
       "整块蜂巢，连蜡嚼食。", 500, 540, certificate=None, township="松多乡"),
    # 11 德达乡商贸 — gift packs for unions and canteens.
    _p(11, "巴塘特产年货礼盒（松茸干片+牦牛肉干+糌粑）", "gift-packs", "套", 198, 500,
       "汇集巴塘三样特产，工会年货首选。", 1500, 240),
    _p(11, "工会福利礼包（牦牛肉干·核桃·苹果干）", "gift-packs", "份", 168, 800,
       "按工会福利标准配置，可开具发票。", 1800, 240),
    _p(11, "食堂帮扶采购包（青稞米10kg+核桃油2L）", "gift-packs", "箱", 368, 300,
       "预算单位食堂采购专用组合，整箱配送。", 12500, 365),
    _p(11, "中秋高原礼盒", "gift-packs", "套", 228, 300,
       "蜂蜜、苹果干、风干牦牛肉组合。", 2000, 240, certificate=_F),
    _p(11, "藏香猪腊肉", "meat", "斤", 98, 200,
       "德达乡散养藏香猪，柏枝熏制。", 500, 180),
    _p(11, "速溶酥油茶粉（10袋）", "specialties", "盒", 38, 600,
       "牦牛酥油、砖茶调配，热水冲泡。", 250, 365, certificate=None),
    # 12 土陶与毛纺编织
    _p(12, "巴塘黑陶茶具（一壶四杯）", "handicrafts", "套", 480, 40,
       "昌波乡传统土陶工艺，手工拉坯、柴窑烧制。", 2600, None, assistance_class=_HC),
    _p(12, "手工土陶花瓶", "handicrafts", "份", 158, 60,
       "每件纹样不同，高约25厘米。", 1200, None, assistance_class=_HC, certificate=None),
    _p(12, "手工羊毛编织围巾", "handicrafts", "份", 268, 80,
       "本地绵羊毛手纺手织，植物染色。", 300, None, assistance_class=_HC),
    _p(12, "牦牛绒编织披肩", "handicrafts", "份", 580, 30,
       "牦牛绒手工编织，轻暖。", 400, None, assistance_class=_HC),
    _p(12, "藏式手工编织挂毯", "handicrafts", "份", 880, 12,
       "1.2米×0.8米，传统吉祥纹样。", 2500, None, assistance_class=_HC),
    _p(12, "羊毛编织坐垫", "handicrafts", "份", 128, 50,
       "新品，待审核。", 600, None, assistance_class=_HC, status=_PENDING, certificate=None),
    # 13 亚日贡乡村集体 — Sichuan pepper.
    _p(13, "巴塘大红袍花椒", "specialties", "斤", 92, 400,
       "亚日贡乡干热河谷花椒，麻味足、香气正。", 500, 540),
    _p(13, "巴塘青花椒", "specialties", "斤", 82, 300,
       "青花椒，清香麻爽，适合鱼、鸡。", 500, 540),
    _p(13, "花椒礼盒（红花椒+青花椒各半斤）", "gift-packs", "盒", 168, 150,
       "两罐装，适合节日馈赠。", 600, 540),
    # 14 莫多乡牧民 (merchant pending): nothing on sale yet.
    _p(14, "手工牦牛奶渣", "specialties", "斤", 45, 100,
       "牦牛奶提取酥油后的奶渣晒干，高钙零食。", 500, 180, status=_PENDING, certificate=None),
    _p(14, "牦牛奶酪（200克）", "specialties", "盒", 58, 80,
       "牧场手工奶酪。", 200, 90, status=_PENDING, certificate=None),
    # 15 黑美人土豆 (merchant suspended): off the storefront until reinstated.
    _p(15, "黑美人土豆", "specialties", "kg", 12, 1000,
       "紫皮紫肉，富含花青素，蒸煮皆宜。", 1000, 60),
    _p(15, "黑美人土豆（5公斤装）", "specialties", "箱", 55, 300,
       "整箱装，食堂采购。", 5000, 60),
    _p(15, "高原黄心土豆", "specialties", "kg", 6, 1500,
       "松多乡高原黄心土豆，面糯香甜。", 1000, 60),
)  # fmt: skip


# --- accounts --------------------------------------------------------------------------------


@dataclass(frozen=True)
class UserSeed:
    email: str
    display_name: str
    role: Role
    region_code: str
    buyer_type: BuyerType | None = None
    phone: str | None = None


USERS: tuple[UserSeed, ...] = (
    UserSeed(ADMIN_EMAIL, "山海平台运营", Role.admin, CHUNAN),
    UserSeed("official@chunan.demo", "淳安县东西部协作办", Role.official, CHUNAN),
    UserSeed("buyer1@chunan.demo", "方丽华", Role.buyer, CHUNAN, BuyerType.individual,
             "+8613857100001"),
    UserSeed("buyer2@chunan.demo", "余建国", Role.buyer, CHUNAN, BuyerType.individual,
             "+8613857100002"),
    UserSeed("buyer3@chunan.demo", "徐晓燕", Role.buyer, CHUNAN, BuyerType.individual),
    UserSeed("canteen@chunan.demo", "淳安县机关事务管理中心", Role.buyer, CHUNAN,
             BuyerType.budget_unit, "+8613857100004"),
    UserSeed("union@chunan.demo", "淳安县总工会", Role.buyer, CHUNAN, BuyerType.union,
             "+8613857100005"),
    UserSeed("purchasing@qiandaohu-foods.demo", "淳安千岛湖山水食品有限公司", Role.buyer, CHUNAN,
             BuyerType.enterprise, "+8613857100006"),
    UserSeed("school@chunan.demo", "淳安县千岛湖镇第一小学", Role.buyer, CHUNAN,
             BuyerType.public_institution, "+8613857100007"),
    UserSeed("hospital@chunan.demo", "淳安县第一人民医院食堂", Role.buyer, CHUNAN,
             BuyerType.public_institution),
    UserSeed("buyer@hangzhou.demo", "杭州西湖区买家", Role.buyer, HANGZHOU_XIHU,
             BuyerType.individual, "+8613857100009"),
)  # fmt: skip


# --- the run ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoAccount:
    email: str
    role: str
    name: str


@dataclass
class SeedSummary:
    added: dict[str, int] = field(default_factory=dict)
    """Rows inserted by this run, by kind; all zero on a second run."""
    present: dict[str, int] = field(default_factory=dict)
    """Demo rows in the database after this run, by kind."""
    accounts: list[DemoAccount] = field(default_factory=list)
    password: str = DEMO_PASSWORD
    orders_by_status: dict[str, int] = field(default_factory=dict)
    """Every order in the database by status, after this run (empty when orders were skipped)."""
    merchant_orders_by_status: dict[str, int] = field(default_factory=dict)

    @property
    def total_added(self) -> int:
        return sum(self.added.values())


async def seed_demo(
    session: AsyncSession, settings: Settings | None = None, *, orders: bool = True
) -> SeedSummary:
    """Insert whatever part of the demo data is missing and flush; the caller commits.

    `orders=False` leaves out the year of orders (the catalogue and accounts alone seed in well
    under a second). `settings` (default: the environment's) give the payment deadline, the
    auto-completion delay and the commission rate the orders are played with.
    """
    summary = SeedSummary()
    password_hash = _PasswordHash()
    merchants = await _seed_merchants(session, summary)
    await _seed_users(session, summary, merchants, password_hash)
    await _seed_products(session, summary, merchants)
    await session.flush()
    settings = settings or get_settings()
    if orders:
        await _seed_orders(session, summary, merchants, settings)
        # The orders were played now and moved back to their planned moments: recount the
        # statistics from the lines as they finally stand.
        await rebuild(session, settings.east_region_codes, settings.west_region_codes)
    await _seed_targets(session)
    return summary


DEMO_TARGETS_FEN = {"purchased_fen": 60_000_000, "helped_sold_fen": 15_000_000}
"""The demo year's targets: 60 万元 bought by Chun'an, 15 万元 helped to sell."""


async def _seed_targets(session: AsyncSession) -> None:
    """This year's and last year's targets, unless an official has set them already."""
    this_year = shanghai_today().year
    for year in (this_year - 1, this_year):
        if await session.get(StatsTarget, year) is None:
            session.add(StatsTarget(year=year, **DEMO_TARGETS_FEN))
    await session.flush()


class _PasswordHash:
    """argon2id is deliberately slow: hash the demo password once, only if an account is new."""

    _value: str | None = None

    def get(self) -> str:
        if self._value is None:
            self._value = hash_password(DEMO_PASSWORD)
        return self._value


async def _seed_merchants(session: AsyncSession, summary: SeedSummary) -> dict[int, Merchant]:
    by_uscc = {m.uscc: m for m in MERCHANTS}
    existing = {
        m.uscc: m
        for m in await session.scalars(select(Merchant).where(Merchant.uscc.in_(list(by_uscc))))
    }
    added = 0
    result: dict[int, Merchant] = {}
    for seed in MERCHANTS:
        merchant = existing.get(seed.uscc)
        if merchant is None:
            households, poor, monitored = seed.households
            merchant = Merchant(
                name=seed.name,
                kind=seed.kind,
                uscc=seed.uscc,
                legal_representative=seed.legal_representative,
                contact_phone=seed.phone,
                region_code=BATANG,
                township=seed.township,
                address=seed.address,
                households=households,
                poverty_alleviated_households=poor,
                monitored_households=monitored,
                bank_name=seed.bank_name,
                bank_account_name=seed.name,
                bank_account_no=seed.bank_account_no.replace(" ", ""),
                status=seed.status,
                status_reason=seed.status_reason,
                approved_at=(
                    None
                    if seed.status == MerchantStatus.pending
                    else _APPROVED_FROM + timedelta(days=7 * seed.no)
                ),
            )
            session.add(merchant)
            added += 1
        result[seed.no] = merchant
    await session.flush()
    summary.added["merchants"] = added
    summary.present["merchants"] = len(result)
    return result


async def _seed_users(
    session: AsyncSession,
    summary: SeedSummary,
    merchants: dict[int, Merchant],
    password_hash: _PasswordHash,
) -> None:
    wanted = [*_account_users(), *_owner_users(merchants)]
    emails = [user.email for user, _ in wanted]
    existing = set(await session.scalars(select(User.email).where(User.email.in_(emails))))
    added = 0
    for user, merchant in wanted:
        if user.email not in existing:
            session.add(
                User(
                    email=user.email,
                    password_hash=password_hash.get(),
                    display_name=user.display_name,
                    phone=user.phone,
                    region_code=user.region_code,
                    role=user.role,
                    buyer_type=user.buyer_type,
                    merchant_id=merchant.id if merchant else None,
                    merchant_role=MerchantRole.owner if merchant else None,
                )
            )
            added += 1
        summary.accounts.append(DemoAccount(user.email, user.role.value, user.display_name))
    await session.flush()
    summary.added["users"] = added
    summary.present["users"] = len(wanted)


def _account_users() -> Iterable[tuple[UserSeed, Merchant | None]]:
    return ((user, None) for user in USERS)


def _owner_users(merchants: dict[int, Merchant]) -> Iterable[tuple[UserSeed, Merchant]]:
    for seed in MERCHANTS:
        owner = UserSeed(
            seed.owner_email,
            seed.legal_representative,
            Role.merchant,
            BATANG,
            # An owner joined as a buyer and keeps the type (the contract: `buyer_type` stays).
            BuyerType.individual,
            seed.phone,
        )
        yield owner, merchants[seed.no]


async def _seed_products(
    session: AsyncSession, summary: SeedSummary, merchants: dict[int, Merchant]
) -> None:
    ids = [m.id for m in merchants.values()]
    rows = await session.execute(
        select(Product.merchant_id, Product.name).where(Product.merchant_id.in_(ids))
    )
    existing = {(merchant_id, name) for merchant_id, name in rows}
    added = 0
    for number, seed in enumerate(PRODUCTS, start=1):
        merchant = merchants[seed.merchant_no]
        if (merchant.id, seed.name) in existing:
            continue
        cert = seed.certificate
        session.add(
            Product(
                merchant_id=merchant.id,
                name=seed.name,
                description=seed.description,
                category_slug=seed.category,
                unit=seed.unit,
                price_fen=seed.price_fen,
                stock=seed.stock,
                origin_township=seed.township or merchant.township,
                assistance_class=seed.assistance_class,
                cert_scheme=cert.scheme if cert else None,
                cert_no=_certificate_no(cert, number) if cert else None,
                cert_issuer=cert.issuer if cert else None,
                cert_valid_from=cert.valid_from if cert else None,
                cert_valid_to=cert.valid_to if cert else None,
                images=[],
                weight_grams=seed.weight_grams,
                shelf_life_days=seed.shelf_life_days,
                status=seed.status,
                status_reason=seed.status_reason,
            )
        )
        added += 1
    await session.flush()
    summary.added["products"] = added
    summary.present["products"] = (
        await session.scalar(
            select(func.count()).select_from(Product).where(Product.merchant_id.in_(ids))
        )
        or 0
    )


async def _seed_orders(
    session: AsyncSession, summary: SeedSummary, merchants: dict[int, Merchant], settings: Settings
) -> None:
    result = await seed_orders(
        session,
        settings,
        merchants=merchants,
        owner_emails={seed.no: seed.owner_email for seed in MERCHANTS},
        admin_email=ADMIN_EMAIL,
        now=utcnow(),
    )
    summary.added["orders"] = result.added
    summary.present["orders"] = result.present
    summary.orders_by_status = result.by_status
    summary.merchant_orders_by_status = result.merchant_orders_by_status
    summary.added["settlements"] = await seed_settlements(
        session, settings, admin_email=ADMIN_EMAIL, now=utcnow()
    )
    summary.present["settlements"] = int(
        await session.scalar(select(func.count()).select_from(Settlement)) or 0
    )


def _certificate_no(cert: Certificate, number: int) -> str:
    prefix = "XFBF" if cert.scheme == "消费帮扶产品认定" else "FPCP"
    return f"{prefix}-{BATANG}-{cert.year}-{number:04d}"


def print_summary(summary: SeedSummary) -> None:
    """The counts and the demo accounts, for the person who just ran `shanhai seed-demo`."""
    kinds = sorted(summary.present)
    print("Demo data loaded (Batang 513335 sellers, Chun'an 330127 buyers).")
    for kind in kinds:
        print(
            f"  {kind:<10} {summary.present[kind]:>5} in all, {summary.added.get(kind, 0):>5} added"
        )
    if summary.orders_by_status:
        print("  orders by status: " + _counts(summary.orders_by_status))
        print("  merchant orders by status: " + _counts(summary.merchant_orders_by_status))
    if summary.total_added == 0:
        print("  Nothing was missing: the demo data was already there.")
    print()
    print(f"Demo accounts — every one signs in with the password {summary.password!r}:")
    width = max(len(a.email) for a in summary.accounts) if summary.accounts else 10
    print(f"  {'email':<{width}}  {'role':<8}  name")
    for account in summary.accounts:
        print(f"  {account.email:<{width}}  {account.role:<8}  {account.name}")


def _counts(by_status: dict[str, int]) -> str:
    order = ("pending_payment", "paid", "shipped", "completed", "cancelled", "refunded")
    known = [s for s in order if s in by_status]
    return ", ".join(f"{s} {by_status[s]}" for s in known + sorted(set(by_status) - set(known)))
