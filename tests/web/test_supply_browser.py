"""The supply-chain dashboard in a real browser: the chart draws, and an order is a click away."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import Page, expect

from maintainpro.core.db import utcnow
from maintainpro.supply.purchasing import PoStatus, PurchaseOrder
from web.supply_world import seed_supply_shop

if TYPE_CHECKING:
    from browser_support import LiveApp

pytest_plugins = ["browser_support"]
pytestmark = pytest.mark.integration


def test_dashboard_chart_draws_and_a_draft_is_approved_from_its_page(
    page: Page, live_app: LiveApp
) -> None:
    with live_app.factory() as session, session.begin():
        shop = seed_supply_shop(session, live_app.ids, utcnow())
    number = f"PO-{shop['draft']:06d}"
    live_app.sign_in(page, "/supply")
    expect(page.get_by_role("heading", level=1)).to_have_text("Supply chain")
    chart = page.locator("#orders-by-state")
    # plotly.js replaces the empty area with its SVG once it has drawn the figure.
    expect(chart.locator("svg.main-svg").first).to_be_visible()
    expect(chart.locator(".xtick", has_text="draft")).to_have_count(1)
    page.get_by_role("link", name="draft", exact=True).click()
    expect(page).to_have_url(re.compile(r"/supply/orders\?status=draft$"))
    page.get_by_role("link", name=number, exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(number)
    page.get_by_role("button", name="Approve").click()
    expect(page.get_by_role("status")).to_have_text(f"Approved {number}.")
    expect(page.get_by_role("button", name="Send to supplier")).to_be_visible()
    with live_app.factory() as session:
        order = session.get(PurchaseOrder, shop["draft"])
        assert order is not None
        assert order.status is PoStatus.APPROVED
        assert order.approved_by_id == live_app.ids["user"]
