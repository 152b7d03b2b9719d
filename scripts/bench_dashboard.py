"""Dashboard page load: `/dashboard` in headless Chromium over a statistics data set.

    python scripts/bench_dashboard.py --database-url URL [--year 2025] [--loads 11]

`URL` is a database filled by `scripts/gen_stats_dataset.py` (1,000,000 order lines for the goal
of issue 11). Creates an official with a random password (`shanhai create-user`, reading it from
standard input), starts `shanhai serve` on a free loopback port, signs in in
Debian's Chromium, then opens the dashboard of the year once per breakdown to warm up and
`--loads` times each, reading the browser's own Navigation Timing: from the start of the
navigation to the end of the `load` event (the HTML with every figure, the server-drawn charts,
the stylesheet). Prints the median and p95 per breakdown and over all loads.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fixtures.live import chrome, live_server  # noqa: E402

BREAKDOWNS = ("merchant", "township", "buyer_type", "category", "product_class")


def create_official(url: str, email: str, password: str) -> None:
    env = {**os.environ, "DATABASE_URL": url}
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "create-user", "--role", "official", "--email", email],
        input=password + "\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"create-user failed: {done.stdout}{done.stderr}")


def load_ms(driver, url: str) -> float:  # type: ignore[no-untyped-def]
    driver.get(url)
    return float(
        driver.execute_script("return performance.getEntriesByType('navigation')[0].loadEventEnd")
    )


def main() -> None:
    from selenium.webdriver.common.by import By

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--year", type=int, default=2025)
    parser.add_argument("--loads", type=int, default=11)
    args = parser.parse_args()
    # Each run signs in as a new official whose password is kept nowhere.
    email = f"bench-official-{secrets.token_hex(4)}@stats.example.cn"
    password = secrets.token_urlsafe(18)
    create_official(args.database_url, email, password)
    results: dict[str, list[float]] = {}
    with (
        tempfile.TemporaryDirectory() as tmp,
        live_server(args.database_url, log_dir=Path(tmp)) as server,
    ):
        driver = chrome(Path(tmp))
        try:
            driver.get(server.base + "/dashboard/login")
            driver.find_element(By.NAME, "username").send_keys(email)
            driver.find_element(By.NAME, "password").send_keys(password)
            driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
            for group_by in BREAKDOWNS:
                url = f"{server.base}/dashboard?year={args.year}&group_by={group_by}"
                load_ms(driver, url)  # warm up
                if "dashboard/login" in driver.current_url:
                    raise SystemExit("sign-in failed")
                results[group_by] = sorted(load_ms(driver, url) for _ in range(args.loads))
        finally:
            driver.quit()
    print(f"/dashboard?year={args.year}, {args.loads} loads each (ms, navigation start → load end)")
    print(f"{'breakdown':<14} {'median':>8} {'p95':>8} {'max':>8}")
    every: list[float] = []
    for group_by, times in results.items():
        every += times
        p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
        print(f"{group_by:<14} {statistics.median(times):>8.1f} {p95:>8.1f} {times[-1]:>8.1f}")
    every.sort()
    p95 = every[min(len(every) - 1, int(len(every) * 0.95))]
    print(f"{'all':<14} {statistics.median(every):>8.1f} {p95:>8.1f} {every[-1]:>8.1f}")


if __name__ == "__main__":
    main()
