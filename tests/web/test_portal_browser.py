"""The supplier portal in a real browser: a supplier answers a line with another date and
announces a shipment; the buyer's order page then shows both."""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import Page, expect

from maintainpro.core.db import utcnow
from maintainpro.supply.purchasing import LineAckStatus, PoStatus, PurchaseOrder
from maintainpro.supply.rates import ExchangeRate
from supply.portal_world import PASSWORD, seed_portal
from supply.procurement_world import EUR_USD, TODAY, World

if TYPE_CHECKING:
    from browser_support import LiveApp

pytest_plugins = ["browser_support"]
pytestmark = pytest.mark.integration


def test_supplier_answers_and_ships_and_the_buyer_sees_it(page: Page, live_app: LiveApp) -> None:
    with live_app.factory() as session, session.begin():
        session.add(ExchangeRate(day=TODAY, currency="USD", per_eur=EUR_USD, source="ECB"))
        session.flush()
        two = seed_portal(World(session, dict(live_app.ids)))
    number = f"PO-{two.a.order:06d}"
    promised = (utcnow() + dt.timedelta(days=21)).date().isoformat()

    page.goto("/portal/orders")
    expect(page).to_have_url(re.compile(r"/portal/login\?next=/portal/orders$"))
    page.fill("#username", two.a.username)
    page.fill("#password", PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/portal/orders$"))
    page.get_by_role("link", name=number, exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(number)

    page.get_by_label("Answer for line 1").select_option("accept")
    page.get_by_label("Answer for line 2").select_option("change")
    page.get_by_label("Date promised for line 2").fill(promised)
    page.get_by_label("Note or reason for line 2").fill("next production run")
    page.get_by_role("button", name="Send answer").click()
    expect(page.get_by_role("status")).to_have_text(
        f"Your answer on {number} was sent to the buyer."
    )

    page.get_by_role("link", name="Create ship notice").click()
    page.get_by_label("Your shipment number").fill("ACME-ASN-1")
    page.get_by_label("Carrier SCAC").fill("FDEG")
    page.get_by_label("Carrier name").fill("FedEx Ground")
    page.get_by_label("Tracking numbers (one per line)").fill("794699999999")
    page.get_by_label("Quantity of line 1 in this shipment").fill("10")
    page.get_by_role("button", name="Record ship notice").click()
    expect(page.get_by_role("status")).to_have_text("Ship notice ACME-ASN-1 recorded.")
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/portal/login$"))

    live_app.sign_in(page, f"/supply/orders/{two.a.order}")
    expect(page.get_by_role("heading", level=1)).to_contain_text(number)
    lines = page.locator("table.po-lines")
    expect(lines).to_contain_text(f"changed 4 at 20.00 USD · promised {promised}")
    expect(lines).to_contain_text("next production run")
    shipments = page.get_by_role("table").filter(has_text="Tracking")
    expect(shipments).to_contain_text("ACME-ASN-1")
    expect(shipments).to_contain_text("794699999999")
    expect(shipments).to_contain_text("FedEx Ground")
    with live_app.factory() as session:
        order = session.get(PurchaseOrder, two.a.order)
        assert order is not None
        assert order.status is PoStatus.PARTIALLY_SHIPPED
        assert [line.ack_status for line in order.lines] == [
            LineAckStatus.ACCEPTED,
            LineAckStatus.CHANGED,
        ]
