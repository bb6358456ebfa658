"""Take screenshots of the main pages of a running demo for the README (docs/screenshots/).

Usage: python scripts/screenshots.py http://127.0.0.1:8000 admin PASSWORD
Drives Debian's Chromium (/usr/bin/chromium) through Playwright; no browser is downloaded.
"""

from __future__ import annotations

import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

PAGES = (
    ("overview", "/"),
    ("assets", "/assets"),
    ("asset", "/assets/15"),
    ("work-orders", "/work-orders"),
    ("work-order", "/work-orders/2"),
    ("plant", "/plant"),
)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


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
            page.wait_for_load_state("networkidle")
            page.screenshot(path=str(out / f"{name}.png"), full_page=False)
            print(f"wrote {out / name}.png")
        browser.close()


if __name__ == "__main__":
    main(*sys.argv[1:4])
