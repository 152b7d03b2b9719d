"""Screenshots of the officials' dashboard on the demo data, for the README and docs/.

Starts `shanhai serve` over a fresh SQLite database loaded with `shanhai seed-demo`, signs in as
the demo official in headless Chromium (Debian's `chromium` and `chromium-driver`, and
`fonts-noto-cjk` for the Chinese text), and writes docs/dashboard-*.png.

    .venv/bin/python scripts/dashboard_screenshots.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.seed.demo import DEMO_PASSWORD  # noqa: E402
from tests.fixtures.live import chrome, fresh_database_url, live_server, shanhai  # noqa: E402

DOCS = ROOT / "docs"


def main() -> None:
    from selenium.webdriver.common.by import By

    with tempfile.TemporaryDirectory() as tmp, fresh_database_url() as url:
        shanhai(url, "migrate")
        shanhai(url, "seed-demo")
        with live_server(url, log_dir=Path(tmp)) as server:
            driver = chrome(Path(tmp), width=1100, height=900)
            try:
                driver.get(server.base + "/dashboard/login")
                driver.save_screenshot(str(DOCS / "dashboard-login.png"))
                driver.find_element(By.NAME, "username").send_keys("official@chunan.demo")
                driver.find_element(By.NAME, "password").send_keys(DEMO_PASSWORD)
                driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
                for group_by in ("merchant", "township"):
                    driver.get(f"{server.base}/dashboard?group_by={group_by}")
                    height = driver.execute_script("return document.body.scrollHeight")
                    driver.set_window_size(1100, height + 40)
                    driver.save_screenshot(str(DOCS / f"dashboard-{group_by}.png"))
            finally:
                driver.quit()
    print("wrote", ", ".join(sorted(p.name for p in DOCS.glob("dashboard-*.png"))))


if __name__ == "__main__":
    main()
