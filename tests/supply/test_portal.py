"""The portal's data layer: every PortalScope query and write sees one supplier only, and the
attachment rules (file names, types, content, size, download headers)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from maintainpro.supply.acknowledgements import LineAck
from maintainpro.supply.catalogs import PriceChange
from maintainpro.supply.invoices import SupplierInvoice
from maintainpro.supply.invoicing import InvoiceIn, InvoiceLineIn
from maintainpro.supply.matching import Tolerances
from maintainpro.supply.performance import Period, ScorecardRules
from maintainpro.supply.portal import (
    MessageError,
    PortalNotFound,
    PortalScope,
    check_attachment,
    download_headers,
    safe_filename,
    supplier_of_user,
)
from maintainpro.supply.portal_records import OrderMessage
from maintainpro.supply.purchasing import LineAckStatus, PoStatus, PurchaseOrder
from maintainpro.supply.shipments import DocumentSource, Shipment
from maintainpro.supply.shipping import ShipNotice, ShipNoticeLine
from supply.lifecycle_world import SENT_AT
from supply.portal_world import PDF, PortalWorld, seed_portal
from supply.procurement_world import TODAY, World

PORTAL = DocumentSource.PORTAL


@pytest.fixture
def two(world: World) -> PortalWorld:
    return seed_portal(world)


def _scopes(world: World, two: PortalWorld) -> tuple[PortalScope, PortalScope]:
    return PortalScope(world.db, two.a.supplier), PortalScope(world.db, two.b.supplier)


def test_lists_hold_only_the_suppliers_own_rows(world: World, two: PortalWorld) -> None:
    a, b = _scopes(world, two)
    assert [o.id for o in a.orders()] == [two.a.order]  # the draft is not shown
    assert [o.id for o in b.orders()] == [two.b.order]
    assert [o.id for o in a.orders_awaiting_answer()] == [two.a.order]
    assert a.shipments() == []
    assert a.invoices() == []
    assert [s.id for s in b.shipments()] == [two.b.shipment]
    assert [i.id for i in b.invoices()] == [two.b.invoice]
    assert [i.id for i in a.catalog_items()] == [two.a.item]
    assert [i.id for i in b.catalog_items()] == [two.b.item]
    assert a.message_counts([two.a.order, two.b.order]) == {}
    assert b.message_counts([two.a.order, two.b.order]) == {two.b.order: 2}
    assert a.supplier().id == two.a.supplier
    assert supplier_of_user(world.db, two.a.user) == two.a.supplier
    assert supplier_of_user(world.db, world.user()) is None


def test_another_suppliers_ids_are_not_found(world: World, two: PortalWorld) -> None:
    a, _ = _scopes(world, two)
    assert two.a.draft is not None
    assert two.b.shipment
    assert two.b.invoice
    assert two.b.message
    lookups = [
        lambda: a.order(two.b.order),
        lambda: a.order(two.a.draft or 0),
        lambda: a.order(two.b.order, lock=True),
        lambda: a.shipment(two.b.shipment or 0),
        lambda: a.invoice(two.b.invoice or 0),
        lambda: a.catalog_item(two.b.item),
        lambda: a.price_changes(two.b.item),
        lambda: a.messages(two.b.order),
        lambda: a.message(two.b.order, two.b.message or 0),
        lambda: a.message(two.a.order, two.b.message or 0),
        lambda: a.shipments(two.b.order),
        lambda: a.invoices(two.b.order),
        lambda: a.order(999_999),
    ]
    for lookup in lookups:
        with pytest.raises(PortalNotFound):
            lookup()


def test_line_ids_of_another_order_are_refused(world: World, two: PortalWorld) -> None:
    a, _ = _scopes(world, two)
    order = a.order(two.a.order)
    assert a.line_numbers(order, two.a.lines) == {two.a.lines[0]: 1, two.a.lines[1]: 2}
    with pytest.raises(PortalNotFound):
        a.line_numbers(order, [two.a.lines[0], two.b.lines[0]])


def _state(world: World) -> tuple[object, ...]:
    world.db.expire_all()
    orders = world.db.scalars(select(PurchaseOrder).order_by(PurchaseOrder.id)).all()
    return (
        [(o.status, [(ln.ack_status, ln.shipped_quantity) for ln in o.lines]) for o in orders],
        world.db.scalar(select(func.count()).select_from(Shipment)),
        world.db.scalar(select(func.count()).select_from(SupplierInvoice)),
        world.db.scalar(select(func.count()).select_from(OrderMessage)),
        world.db.scalar(select(func.count()).select_from(PriceChange)),
    )


def test_writes_to_another_suppliers_objects_change_nothing(world: World, two: PortalWorld) -> None:
    a, _ = _scopes(world, two)
    actor = two.a.user
    before = _state(world)
    notice = ShipNotice("A-1", [ShipNoticeLine(1, Decimal(1))], SENT_AT)
    invoice = InvoiceIn(
        "A-INV", TODAY, "USD", Decimal(7), [InvoiceLineIn(1, Decimal(1), Decimal(7))]
    )
    writes = [
        lambda: a.acknowledge(two.b.order, [LineAck(1, LineAckStatus.ACCEPTED)], actor_id=actor),
        lambda: a.ship(two.b.order, notice, tolerance_pct=Decimal(0), actor_id=actor),
        lambda: a.invoice_order(two.b.order, invoice, tolerances=Tolerances(), actor_id=actor),
        lambda: a.set_price_breaks(two.b.item, [(Decimal(1), Decimal(1))], actor_id=actor),
        lambda: a.post_message(two.b.order, "hello", author_id=actor),
    ]
    for write in writes:
        with pytest.raises(PortalNotFound):
            write()
    assert _state(world) == before


def test_own_writes_go_through_the_domain(world: World, two: PortalWorld) -> None:
    a, _ = _scopes(world, two)
    actor = two.a.user
    promised = TODAY + dt.timedelta(days=20)
    a.acknowledge(
        two.a.order,
        [
            LineAck(1, LineAckStatus.ACCEPTED),
            LineAck(2, LineAckStatus.CHANGED, quantity=Decimal(3), promised_date=promised),
        ],
        actor_id=actor,
    )
    order = a.order(two.a.order)
    assert order.status is PoStatus.ACKNOWLEDGED
    assert [ln.ack_status for ln in order.lines] == [LineAckStatus.ACCEPTED, LineAckStatus.CHANGED]
    assert order.lines[1].ack_quantity == 3
    assert order.lines[1].promised_date == promised
    assert "(portal)" in order.history[-1].note
    outcome = a.ship(
        two.a.order,
        ShipNotice(
            "A-SHIP", [ShipNoticeLine(1, Decimal(10))], SENT_AT, source=DocumentSource.PORTAL
        ),
        tolerance_pct=Decimal(0),
        actor_id=actor,
    )
    assert outcome.created
    assert outcome.shipment.supplier_id == two.a.supplier
    changes = a.set_price_breaks(
        two.a.item, [(Decimal(1), Decimal("9.50")), (Decimal(10), Decimal("8.50"))], actor_id=actor
    )
    assert [(c.old_price, c.new_price) for c in changes] == [(Decimal("9.00"), Decimal("9.50"))]
    message = a.post_message(two.a.order, "  ready  ", author_id=actor)
    assert message.from_supplier
    assert message.body == "ready"
    card = a.scorecard(Period(TODAY, TODAY + dt.timedelta(days=1)), rules=ScorecardRules())
    assert card.supplier_id == two.a.supplier


def test_catalog_import_applies_to_the_scope_supplier_only(world: World, two: PortalWorld) -> None:
    a, _ = _scopes(world, two)
    data = b"supplier_part_number,part_number,unit_price\nNEW-1,BRG-1,4.25\n"
    report = a.import_catalog(data, file_format="csv", actor_id=two.a.user)
    assert report.applied
    assert report.items_created == 1
    assert sorted(i.supplier_part_number for i in a.catalog_items()) == ["ACME-1", "NEW-1"]
    bad = b"supplier_part_number,part_number,unit_price\nNEW-2,BRG-1,4\nNEW-3,NOPE,x\n"
    report = a.import_catalog(bad, file_format="csv", actor_id=two.a.user)
    assert not report.applied
    assert {e.line for e in report.errors} == {3}
    assert "NEW-2" not in [i.supplier_part_number for i in a.catalog_items()]


# --- attachments ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("report.pdf", "report.pdf"),
        ("../../etc/passwd.pdf", "passwd.pdf"),
        ("C:\\Users\\x\\Desktop\\Plan B.PDF", "Plan B.pdf"),
        ('<script>alert("x")</script>.pdf', "script.pdf"),
        ("Prüfbericht ÄÖÜ.pdf", "Prufbericht AOU.pdf"),
        ("...hidden.txt", "hidden.txt"),
        ("résumé\r\n\x00.txt", "resume.txt"),
        ("", "attachment"),
        ("a" * 300 + ".pdf", "a" * 96 + ".pdf"),
    ],
)
def test_file_names_are_made_safe(given: str, expected: str) -> None:
    assert safe_filename(given) == expected


def test_allowed_files_get_their_canonical_type() -> None:
    pdf = check_attachment("plan.pdf", "application/octet-stream", PDF)
    assert (pdf.name, pdf.content_type) == ("plan.pdf", "application/pdf")
    csv = check_attachment("x.csv", "application/vnd.ms-excel", b"a,b\n1,2\n")
    assert csv.content_type == "text/csv"
    png = check_attachment("p.png", "image/png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 10)
    assert png.content_type == "image/png"


@pytest.mark.parametrize(
    ("name", "declared", "data", "reason"),
    [
        ("page.html", "text/html", b"<html></html>", "cannot be attached"),
        ("run.exe", "", b"MZ\x90\x00", "cannot be attached"),
        ("noext", "", b"data", "cannot be attached"),
        ("fake.pdf", "application/pdf", b"<script>alert(1)</script>", "not a PDF"),
        ("fake.png", "image/png", PDF, "not a PNG"),
        ("x.pdf", "text/html", PDF, "declared type"),
        ("bin.txt", "text/plain", b"\xff\xfe\x00", "UTF-8"),
        ("nul.csv", "text/csv", b"a\x00b", "NUL"),
        ("empty.pdf", "application/pdf", b"", "empty"),
    ],
)
def test_refused_files(name: str, declared: str, data: bytes, reason: str) -> None:
    with pytest.raises(MessageError, match=reason):
        check_attachment(name, declared, data)


def test_size_limit() -> None:
    assert check_attachment("a.txt", "text/plain", b"x" * 100, max_bytes=100).data
    with pytest.raises(MessageError, match="at most"):
        check_attachment("a.txt", "text/plain", b"x" * 101, max_bytes=100)


def test_download_headers_force_a_download() -> None:
    headers = download_headers('evil"\r\nSet-Cookie: x=1.pdf')
    assert headers["Content-Disposition"] == 'attachment; filename="evil_Set-Cookie_ x_1.pdf"'
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in headers["Content-Security-Policy"]
