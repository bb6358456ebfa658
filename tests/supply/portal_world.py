"""Two suppliers with portal users, sent orders, catalogue items, a shipment, an invoice and a
message each where it matters, so every portal test can try one supplier's ids on the other."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.core.users import Role, User, hash_password
from maintainpro.supply.invoicing import InvoiceIn, InvoiceLineIn, record_invoice
from maintainpro.supply.matching import Tolerances
from maintainpro.supply.portal import Attachment, post_order_message
from maintainpro.supply.portal_records import SupplierUser
from maintainpro.supply.purchasing import PurchaseOrder, add_line, new_purchase_order
from maintainpro.supply.rates import ExchangeRate
from maintainpro.supply.shipping import ShipNotice, ShipNoticeLine, record_shipment
from maintainpro.supply.suppliers import Supplier
from supply.lifecycle_world import SENT_AT, build_order
from supply.procurement_world import EUR_USD, TODAY, World
from support import plant

PASSWORD = "correct horse battery"
PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
HTML = {"Accept": "text/html"}


@dataclass
class Side:
    """One supplier's ids."""

    supplier: int
    user: int
    username: str
    order: int
    lines: list[int]
    item: int
    shipment: int | None = None
    invoice: int | None = None
    message: int | None = None
    draft: int | None = None


@dataclass
class PortalWorld:
    """Supplier A (ACME, two lines) and supplier B (BETA) with a shipment, invoice, message."""

    a: Side
    b: Side


def portal_user(world: World, supplier: Supplier, username: str) -> User:
    """A supplier-role user linked to the supplier, with the test password."""
    user = User(
        username=username,
        role=Role.SUPPLIER,
        password_hash=hash_password(PASSWORD),
        full_name=f"{supplier.code} clerk",
    )
    world.db.add(user)
    world.db.flush()
    world.db.add(SupplierUser(user_id=user.id, supplier_id=supplier.id))
    world.db.flush()
    return user


def _draft(world: World, supplier: Supplier) -> PurchaseOrder:
    order = new_purchase_order(
        world.db,
        supplier=supplier,
        currency=supplier.currency,
        base_currency="USD",
        rate=world.fx().rate(supplier.currency, "USD", TODAY),
    )
    add_line(order, part_id=world.ids["part"], quantity=Decimal(3), unit_price=Decimal("9.00"))
    world.db.flush()
    return order


def seed_portal(world: World) -> PortalWorld:
    """Both suppliers' data (committed by the caller)."""
    order_a = build_order(world, (("10", "9.00"), ("4", "20.00")), code="ACME")
    order_b = build_order(world, (("5", "7.00"),), code="BETA")
    supplier_a, supplier_b = order_a.supplier, order_b.supplier
    user_a = portal_user(world, supplier_a, "acme-clerk")
    user_b = portal_user(world, supplier_b, "beta-clerk")
    item_a = world.item(supplier_a, [("1", "9.00"), ("10", "8.50")])
    item_b = world.item(supplier_b, [("1", "7.00")])
    shipment = record_shipment(
        world.db,
        order_b,
        ShipNotice(
            shipment_number="BETA-SHIP-1",
            lines=[ShipNoticeLine(1, Decimal(5))],
            shipped_at=SENT_AT + dt.timedelta(hours=4),
            carrier_scac="UPSN",
            tracking_number="1ZBETA0001",
        ),
    ).shipment
    invoice = record_invoice(
        world.db,
        order_b,
        InvoiceIn(
            invoice_number="BETA-INV-1",
            invoice_date=TODAY,
            currency="USD",
            total=Decimal("35.00"),
            lines=[InvoiceLineIn(1, Decimal(5), Decimal("7.00"))],
        ),
        tolerances=Tolerances(),
    )
    message = post_order_message(
        world.db,
        order_b,
        body="Beta's private note",
        author_id=user_b.id,
        from_supplier=True,
        attachment=None,
    )
    with_file = post_order_message(
        world.db,
        order_b,
        body="drawing",
        author_id=user_b.id,
        from_supplier=True,
        attachment=Attachment("drawing.pdf", "application/pdf", PDF),
    )
    draft = _draft(world, supplier_a)
    world.db.flush()
    a = Side(
        supplier=supplier_a.id,
        user=user_a.id,
        username=user_a.username,
        order=order_a.id,
        lines=[line.id for line in order_a.lines],
        item=item_a.id,
        draft=draft.id,
    )
    b = Side(
        supplier=supplier_b.id,
        user=user_b.id,
        username=user_b.username,
        order=order_b.id,
        lines=[line.id for line in order_b.lines],
        item=item_b.id,
        shipment=shipment.id,
        invoice=invoice.id,
        message=with_file.id,
    )
    assert message.id != with_file.id
    return PortalWorld(a, b)


def seeded(factory: sessionmaker[Session]) -> PortalWorld:
    """A plant, the EUR/USD rate and both suppliers' data, committed for an app to see."""
    with factory() as session, session.begin():
        ids = plant(session)
        session.add(ExchangeRate(day=TODAY, currency="USD", per_eur=EUR_USD, source="ECB"))
        session.flush()
        return seed_portal(World(session, ids))


def csrf_of(html: str) -> str:
    """The CSRF token of a page's form."""
    match = CSRF.search(html)
    assert match is not None, "the page has no CSRF token"
    return match.group(1)


def portal_sign_in(client: TestClient, username: str, next_path: str = "/portal") -> None:
    """Sign a test client in through the portal's login form."""
    token = csrf_of(client.get("/portal/login").text)
    response = client.post(
        "/portal/login",
        data={"username": username, "password": PASSWORD, "csrf_token": token, "next": next_path},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == next_path
