"""Chinese display names for the keys of the statistics."""

from __future__ import annotations

INDICATOR_LABELS = {"purchased": "采购", "helped_sold": "帮助销售"}
BUYER_TYPE_LABELS = {
    "individual": "个人",
    "budget_unit": "预算单位",
    "union": "工会",
    "enterprise": "企业",
    "public_institution": "事业单位",
    "social_org": "社会组织",
}
PRODUCT_CLASS_LABELS = {"agricultural": "农畜牧产品", "handicraft": "特色手工艺品"}
REGION_LABELS = {
    "330127": "浙江省杭州市淳安县",
    "513335": "四川省甘孜藏族自治州巴塘县",
    "330100": "浙江省杭州市",
    "330102": "浙江省杭州市上城区",
    "330105": "浙江省杭州市拱墅区",
    "330106": "浙江省杭州市西湖区",
    "330108": "浙江省杭州市滨江区",
    "330109": "浙江省杭州市萧山区",
    "330110": "浙江省杭州市余杭区",
    "330111": "浙江省杭州市富阳区",
    "330112": "浙江省杭州市临安区",
    "330113": "浙江省杭州市临平区",
    "330114": "浙江省杭州市钱塘区",
    "330122": "浙江省杭州市桐庐县",
    "330182": "浙江省杭州市建德市",
}


def period_label(key: str) -> str:
    """`2026` → 2026年, `2026-Q1` → 2026年第1季度, `2026-03` → 2026年3月."""
    if "-Q" in key:
        year, quarter = key.split("-Q")
        return f"{year}年第{quarter}季度"
    if "-" in key:
        year, month = key.split("-")
        return f"{year}年{int(month)}月"
    return f"{key}年"
