"""The dashboard in a real browser: headless Chromium against `shanhai serve` over the demo data.

An official signs in, reads the year against its targets and a breakdown, checks every figure
against the JSON API for the same range, switches the breakdown, downloads the XLSX and opens it,
and signs out; a buyer is refused.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import pytest

from app.seed.demo import ADMIN_EMAIL, DEMO_PASSWORD
from tests.fixtures.live import LiveServer, chrome, fresh_database_url, live_server, shanhai

OFFICIAL = "official@chunan.demo"

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    logs = tmp_path_factory.mktemp("live")
    with fresh_database_url() as url:
        shanhai(url, "migrate")
        shanhai(url, "seed-demo")
        with live_server(url, log_dir=logs, extra_env={"SIGNUPS_PER_HOUR_PER_ADDRESS": "0"}) as s:
            yield s


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    driver = chrome(tmp_path)
    driver.download_dir = tmp_path
    try:
        yield driver
    finally:
        driver.quit()


def _api(server: LiveServer, email: str) -> httpx.Client:
    client = httpx.Client(base_url=server.base + "/api/v1", timeout=30)
    token = client.post("/auth/token", data={"username": email, "password": DEMO_PASSWORD})
    assert token.status_code == 200, token.text
    client.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
    return client


def _sign_in(driver: Any, server: LiveServer, email: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(server.base + "/dashboard")
    assert driver.current_url.endswith("/dashboard/login")
    driver.find_element(By.NAME, "username").send_keys(email)
    driver.find_element(By.NAME, "password").send_keys(DEMO_PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    _wait_for_url(driver, "/dashboard")


def _table(driver: Any) -> dict[str, int]:
    from selenium.webdriver.common.by import By

    cells = driver.find_elements(By.CSS_SELECTOR, "#breakdown tbody tr[data-key]")
    return {
        row.get_attribute("data-key"): int(
            row.find_element(By.CSS_SELECTOR, "td[data-fen]").get_attribute("data-fen")
        )
        for row in cells
    }


def _wait_for_url(driver: Any, suffix: str, seconds: float = 20) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, seconds).until(lambda d: d.current_url.endswith(suffix))


def _wait_for_file(folder: Path, suffix: str, seconds: float = 20) -> Path:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        done = [p for p in folder.iterdir() if p.suffix == suffix]
        if done:
            return done[0]
        time.sleep(0.2)
    raise AssertionError(f"no {suffix} file was downloaded into {folder}")


def test_an_official_reads_the_year_and_the_figures_equal_the_api(
    demo_server: LiveServer, browser: Any
) -> None:
    from selenium.webdriver.common.by import By

    _sign_in(browser, demo_server, OFFICIAL)
    assert browser.current_url.endswith("/dashboard")
    api = _api(demo_server, OFFICIAL)

    # the year against its targets
    year = int(
        browser.find_element(By.CSS_SELECTOR, "select[name=year] option[selected]").get_attribute(
            "value"
        )
    )
    progress = api.get("/stats/assistance/progress", params={"year": year}).json()
    for indicator in progress["indicators"]:
        card = browser.find_element(
            By.CSS_SELECTOR, f".indicator[data-indicator={indicator['indicator']}]"
        )
        shown = card.find_element(By.CSS_SELECTOR, ".actual").get_attribute("data-fen")
        assert int(shown) == indicator["actual_fen"]
        assert (
            int(card.find_element(By.CSS_SELECTOR, ".target").get_attribute("data-fen"))
            == (indicator["target_fen"])
        )
    assert sum(i["actual_fen"] for i in progress["indicators"]) > 0  # the demo year is not empty

    # the breakdown by merchant, then by township: the same rows as the API's
    date_from = browser.find_element(By.NAME, "from").get_attribute("value")
    date_to = browser.find_element(By.NAME, "to").get_attribute("value")
    for group_by in ("merchant", "township"):
        if group_by != "merchant":
            browser.find_element(By.CSS_SELECTOR, f".tabs a[data-group={group_by}]").click()
            assert "group_by=township" in browser.current_url
        stats = api.get(
            "/stats/assistance", params={"from": date_from, "to": date_to, "group_by": group_by}
        ).json()
        assert _table(browser) == {row["key"]: row["amount_fen"] for row in stats["rows"]}
        total = browser.find_element(By.CSS_SELECTOR, "#breakdown tfoot td[data-fen]")
        assert int(total.get_attribute("data-fen")) == stats["totals"]["amount_fen"]

    # the XLSX of what is shown opens, and its 元 column sums to the API's total
    browser.find_element(By.CSS_SELECTOR, ".downloads a[href*='format=xlsx']").click()
    sheet = openpyxl.load_workbook(
        io.BytesIO(_wait_for_file(browser.download_dir, ".xlsx").read_bytes())
    ).active
    rows = list(sheet.iter_rows(values_only=True))

    def is_yuan(cell: object) -> bool:
        return isinstance(cell, str) and "元" in cell and "万" not in cell

    header = next(
        i for i, r in enumerate(rows) if sum(c is not None for c in r) > 2 and any(map(is_yuan, r))
    )
    yuan_col = next(j for j, h in enumerate(rows[header]) if is_yuan(h))
    body = [r for r in rows[header + 1 :] if r[0] and r[0] != "合计"]
    assert (
        sum(Decimal(str(r[yuan_col])) for r in body) == Decimal(stats["totals"]["amount_fen"]) / 100
    )

    # signing out ends the session
    browser.find_element(By.CSS_SELECTOR, "form.signout button").click()
    _wait_for_url(browser, "/dashboard/login")
    browser.get(demo_server.base + "/dashboard")
    assert browser.current_url.endswith("/dashboard/login")


def test_a_buyer_is_refused(demo_server: LiveServer, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    api = httpx.Client(base_url=demo_server.base + "/api/v1", timeout=30)
    email = "dashboard-buyer@example.cn"
    created = api.post(
        "/auth/register",
        json={
            "email": email,
            "password": DEMO_PASSWORD,
            "display_name": "王芳",
            "region_code": "330127",
        },
    )
    assert created.status_code == 201, created.text
    _sign_in(browser, demo_server, email)
    assert "无权访问" in browser.find_element(By.TAG_NAME, "h1").text
    page = httpx.get(demo_server.base + "/dashboard", cookies=browser_cookies(browser))
    assert page.status_code == 403


def test_an_admin_sees_the_page_too(demo_server: LiveServer, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    _sign_in(browser, demo_server, ADMIN_EMAIL)
    assert browser.find_elements(By.CSS_SELECTOR, "#progress .indicator")


def browser_cookies(driver: Any) -> dict[str, str]:
    return {c["name"]: c["value"] for c in driver.get_cookies()}
