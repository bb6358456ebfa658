"""Take screenshots of the main pages of a running demo for the README (docs/screenshots/).

Usage: python scripts/screenshots.py http://127.0.0.1:8000 admin PASSWORD
Drives Debian's Chromium (/usr/bin/chromium) through Playwright; no browser is downloaded.
Run it a few minutes after `maintainpro demo` started, once the P-101 fault has raised an alert.
"""

from __future__ import annotations

import sys
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

# Pages reached by a fixed path; the asset and the threshold preview are found by name below.
PAGES = (
    ("overview", "/"),
    ("plant", "/plant"),
    ("devices", "/devices"),
    ("alerts", "/alerts?status=any"),
    ("work-orders", "/work-orders"),
    ("supply", "/supply"),
)
ASSET_TAG = "P-101"
SENSOR_LABEL = "demo-p101/vibration"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Live pages keep an EventSource open, so "network idle" never comes: wait for the load event
# and give plotly and the first live updates this long to draw.
SETTLE_MS = 2500


def shoot(page: Page, out: Path, name: str, *, full_page: bool = False) -> None:
    """Let the page settle and write its screenshot."""
    page.wait_for_load_state("load")
    page.wait_for_timeout(SETTLE_MS)
    page.screenshot(path=str(out / f"{name}.png"), full_page=full_page)
    print(f"wrote {out / name}.png")


def main(base: str, username: str, password: str) -> None:
    """Sign in and capture each page at desktop width."""
    out = Path(__file__).resolve().parents[1] / "docs" / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        page.goto(f"{base}/login")
        page.fill("#username", username)
        page.fill("#password", password)
        page.click("button[type=submit]")
        page.wait_for_url(f"{base}/")
        for name, path in PAGES:
            page.goto(f"{base}{path}")
            shoot(page, out, name)
        page.goto(f"{base}/assets?q={ASSET_TAG}")
        page.get_by_role("link", name=ASSET_TAG, exact=True).first.click()
        shoot(page, out, "asset", full_page=True)
        page.goto(f"{base}/alerts?status=any")
        link = page.get_by_role("link", name=SENSOR_LABEL, exact=True).first
        if link.count():
            href = link.get_attribute("href") or ""
            sensor_id = href.split("/")[2]
            page.goto(f"{base}/trends?sensor_id={sensor_id}&range_key=1h")
            shoot(page, out, "trends")
            page.goto(f"{base}{href}")
            page.get_by_role("button", name="Preview last 7 days").click()
            page.wait_for_selector("#preview-summary")
            shoot(page, out, "thresholds", full_page=True)
        else:
            print(f"no alert on {SENSOR_LABEL} yet: trends and threshold preview not captured")
        browser.close()


if __name__ == "__main__":
    main(*sys.argv[1:4])
