"""The supplier portal's pages: sign-in, dashboard, answering lines, ship notices, invoices,
catalogue maintenance, scorecard, messages with attachments, CSRF and escaping."""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from openpyxl import Workbook
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.app import create_app
from maintainpro.config import Settings
from maintainpro.core.db import utcnow
from maintainpro.core.users import Role, User
from maintainpro.supply.catalogs import CatalogItem, PriceChange
from maintainpro.supply.invoices import InvoiceStatus, SupplierInvoice
from maintainpro.supply.portal_records import OrderMessage
from maintainpro.supply.purchasing import LineAckStatus, PoStatus, PurchaseOrder
from maintainpro.supply.receiving import receive
from maintainpro.supply.shipments import DocumentSource, Shipment
from maintainpro.supply.suppliers import Supplier
from supply.portal_world import HTML, PASSWORD, PDF, PortalWorld, csrf_of, portal_sign_in, seeded
from web.supply_world import HOSTILE

PAGE = re.compile(r"\s+")


@pytest.fixture
def two(session_factory: sessionmaker[Session]) -> PortalWorld:
    return seeded(session_factory)


@pytest.fixture
def acme(client: TestClient, two: PortalWorld) -> TestClient:
    """The client signed in as supplier A's clerk."""
    portal_sign_in(client, two.a.username)
    return client


def text(page: httpx.Response) -> str:
    return PAGE.sub(" ", re.sub(r"<[^>]+>", " ", page.text))


def post(client: TestClient, path: str, data: dict[str, Any], **kw: Any) -> httpx.Response:
    """A form post with the session's CSRF token."""
    token = csrf_of(client.get("/portal/account").text)
    return client.post(path, data={**data, "csrf_token": token}, headers=HTML, **kw)


def load_order(factory: sessionmaker[Session], order_id: int) -> PurchaseOrder:
    with factory() as session:
        order = session.get(PurchaseOrder, order_id)
        assert order is not None
        _ = [line.ack_status for line in order.lines]
        session.expunge_all()
        return order


def count(factory: sessionmaker[Session], table: type[Any]) -> int:
    with factory() as session:
        return int(session.scalar(select(func.count()).select_from(table)) or 0)


# --- sign-in ------------------------------------------------------------------------------------


def test_supplier_signs_in_and_sees_the_dashboard(client: TestClient, two: PortalWorld) -> None:
    portal_sign_in(client, two.a.username, next_path="/portal/orders")
    dashboard = client.get("/portal")
    assert dashboard.status_code == 200
    assert "ACME Ltd" in dashboard.text
    assert "Orders waiting for your answer" in dashboard.text
    assert f"/portal/orders/{two.a.order}" in dashboard.text


def test_wrong_password_and_foreign_next_targets(client: TestClient, two: PortalWorld) -> None:
    token = csrf_of(client.get("/portal/login").text)
    wrong = client.post(
        "/portal/login",
        data={"username": two.a.username, "password": "nope-nope-nope", "csrf_token": token},
    )
    assert wrong.status_code == 401
    assert "Wrong username or password." in wrong.text
    for target in ("//evil.example/portal", "https://evil.example", "/supply", "/portalx"):
        response = client.post(
            "/portal/login",
            data={
                "username": two.a.username,
                "password": PASSWORD,
                "csrf_token": token,
                "next": target,
            },
            follow_redirects=False,
        )
        assert response.status_code == 303
        assert response.headers["location"] == "/portal"
        token = csrf_of(client.get("/portal/login").text)


def test_the_supplier_is_refused_on_staff_pages_after_portal_sign_in(
    acme: TestClient, two: PortalWorld
) -> None:
    for path in ("/", "/supply", f"/supply/orders/{two.a.order}", "/assets"):
        page = acme.get(path, headers=HTML, follow_redirects=False)
        assert page.status_code == 403, path
        assert "suppliers use the portal at /portal" in page.text


def test_sign_out_ends_the_session(acme: TestClient) -> None:
    response = post(acme, "/portal/logout", {}, follow_redirects=False)
    assert response.headers["location"] == "/portal/login"
    assert acme.get("/portal", follow_redirects=False).status_code == 303


def test_password_change(acme: TestClient, client: TestClient, two: PortalWorld) -> None:
    wrong = post(acme, "/portal/account/password", {"current": "x", "new": "y", "repeat": "y"})
    assert wrong.status_code == 422
    assert "current password is wrong" in wrong.text
    short = post(
        acme, "/portal/account/password", {"current": PASSWORD, "new": "short", "repeat": "short"}
    )
    assert short.status_code == 422
    new = "a much longer passphrase"
    done = post(acme, "/portal/account/password", {"current": PASSWORD, "new": new, "repeat": new})
    assert done.status_code == 200
    assert "Your password was changed." in done.text
    client.cookies.clear()
    token = csrf_of(client.get("/portal/login").text)
    signed = client.post(
        "/portal/login",
        data={"username": two.a.username, "password": new, "csrf_token": token},
        follow_redirects=False,
    )
    assert signed.status_code == 303


# --- acknowledgement ----------------------------------------------------------------------------


def test_lines_are_accepted_and_changed_and_the_buyer_sees_it(
    acme: TestClient,
    session_factory: sessionmaker[Session],
    two: PortalWorld,
    make_user: Any,
    settings: Settings,
) -> None:
    one, two_ = two.a.lines
    promised = (utcnow() + dt.timedelta(days=30)).date()
    response = post(
        acme,
        f"/portal/orders/{two.a.order}/acknowledgement",
        {
            "line": [str(one), str(two_)],
            f"decision_{one}": "accept",
            f"decision_{two_}": "change",
            f"quantity_{two_}": "3",
            f"date_{two_}": promised.isoformat(),
            f"note_{two_}": "only 3 in stock",
        },
    )
    assert response.status_code == 200
    assert "was sent to the buyer" in response.text
    order = load_order(session_factory, two.a.order)
    assert order.status is PoStatus.ACKNOWLEDGED
    assert [line.ack_status for line in order.lines] == [
        LineAckStatus.ACCEPTED,
        LineAckStatus.CHANGED,
    ]
    assert order.lines[1].ack_quantity == Decimal(3)
    assert order.lines[1].promised_date == promised
    assert order.lines[1].ack_note == "only 3 in stock"
    # The buyer's order page shows the supplier's answer.
    with TestClient(create_app(settings)) as staff:
        user, _ = make_user(Role.PROCUREMENT)
        token = csrf_of(staff.get("/login").text)
        staff.post(
            "/login", data={"username": user.username, "password": PASSWORD, "csrf_token": token}
        )
        page = text(staff.get(f"/supply/orders/{two.a.order}"))
    assert "changed 3 at 20.00 USD · promised " + promised.isoformat() in page
    assert "acknowledged (portal): 1 accepted, 1 changed" in page


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"decision": "reject"}, "give the reason for the rejection"),
        ({"decision": "accept", "quantity": "2"}, "choose &#39;propose a change&#39;"),
        ({"decision": "change"}, "needs a quantity, unit price or promised date"),
        ({"decision": "change", "quantity": "-1"}, "must be a number from 0"),
        ({"decision": "change", "date": "31.12.2026"}, "not a date"),
        ({"decision": "maybe"}, "choose accept, propose a change or reject"),
        ({}, "answer at least one line"),
    ],
)
def test_a_refused_answer_changes_nothing(
    acme: TestClient,
    session_factory: sessionmaker[Session],
    two: PortalWorld,
    fields: dict[str, str],
    message: str,
) -> None:
    line = two.a.lines[0]
    data: dict[str, Any] = {"line": str(line)}
    data.update({f"{key}_{line}": value for key, value in fields.items()})
    response = post(acme, f"/portal/orders/{two.a.order}/acknowledgement", data)
    assert response.status_code == 422
    assert message in response.text
    order = load_order(session_factory, two.a.order)
    assert order.status is PoStatus.SENT
    assert {line.ack_status for line in order.lines} == {LineAckStatus.PENDING}


def test_a_rejection_with_its_reason(
    acme: TestClient, session_factory: sessionmaker[Session], two: PortalWorld
) -> None:
    line = two.a.lines[1]
    response = post(
        acme,
        f"/portal/orders/{two.a.order}/acknowledgement",
        {"line": str(line), f"decision_{line}": "reject", f"note_{line}": "discontinued"},
    )
    assert response.status_code == 200
    order = load_order(session_factory, two.a.order)
    assert order.lines[1].ack_status is LineAckStatus.REJECTED
    assert order.lines[1].ack_note == "discontinued"


# --- ship notices -------------------------------------------------------------------------------


def test_a_ship_notice_with_carrier_and_tracking_numbers(
    acme: TestClient, session_factory: sessionmaker[Session], two: PortalWorld
) -> None:
    one, two_ = two.a.lines
    form = acme.get(f"/portal/orders/{two.a.order}/ship")
    assert form.status_code == 200
    response = post(
        acme,
        f"/portal/orders/{two.a.order}/shipments",
        {
            "line": [str(one), str(two_)],
            f"ship_{one}": "10",
            f"ship_{two_}": "",
            "shipment_number": "ASN-7",
            "carrier_scac": "upsn",
            "carrier_name": "UPS",
            "tracking_numbers": "1Z999AA10123456784\n1Z999AA10123456785",
        },
    )
    assert response.status_code == 200
    assert "Ship notice ASN-7 recorded." in response.text
    with session_factory() as session:
        shipment = session.scalar(select(Shipment).where(Shipment.shipment_number == "ASN-7"))
        assert shipment is not None
        assert shipment.supplier_id == two.a.supplier
        assert shipment.source is DocumentSource.PORTAL
        assert (shipment.carrier_scac, shipment.carrier_name) == ("UPSN", "UPS")
        assert shipment.tracking_number == "1Z999AA10123456784"
        assert [(line.line.line_no, line.quantity) for line in shipment.lines] == [(1, 10)]
        assert "1Z999AA10123456785" in shipment.events[0].note
        order = session.get(PurchaseOrder, two.a.order)
        assert order is not None
        assert order.status is PoStatus.PARTIALLY_SHIPPED
    assert "1Z999AA10123456785" in response.text


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"shipment_number": ""}, "shipment number: required"),
        ({"carrier_scac": "TOOLONG"}, "carrier SCAC: two to four letters"),
        ({"carrier_name": "<b>x</b>"}, "markup is not allowed"),
        ({"tracking_numbers": "ok-1 bad/2"}, "tracking numbers: letters"),
        ({"ship": "11"}, "exceeds the limit"),
        ({"ship": ""}, "at least one line"),
        ({"shipped_on": "2999-01-01"}, "cannot be in the future"),
    ],
)
def test_a_refused_ship_notice_records_nothing(
    acme: TestClient,
    session_factory: sessionmaker[Session],
    two: PortalWorld,
    fields: dict[str, str],
    message: str,
) -> None:
    line = two.a.lines[0]
    data = {"line": str(line), f"ship_{line}": "5", "shipment_number": "ASN-1"}
    for key, value in fields.items():
        data[f"ship_{line}" if key == "ship" else key] = value
    before = count(session_factory, Shipment)
    response = post(acme, f"/portal/orders/{two.a.order}/shipments", data)
    assert response.status_code == 422
    assert message in response.text
    assert count(session_factory, Shipment) == before
    assert load_order(session_factory, two.a.order).status is PoStatus.SENT


def test_a_shipment_number_used_twice_is_a_conflict(acme: TestClient, two: PortalWorld) -> None:
    line = two.a.lines[0]
    data = {"line": str(line), f"ship_{line}": "2", "shipment_number": "ASN-2"}
    assert post(acme, f"/portal/orders/{two.a.order}/shipments", data).status_code == 200
    data[f"ship_{line}"] = "3"
    again = post(acme, f"/portal/orders/{two.a.order}/shipments", data)
    assert again.status_code == 409
    assert "different ship notice under this shipment number" in again.text


# --- invoices -----------------------------------------------------------------------------------


def _receive_all(factory: sessionmaker[Session], order_id: int) -> None:
    with factory() as session, session.begin():
        order = session.get(PurchaseOrder, order_id)
        assert order is not None
        for line in order.lines:
            receive(session, line, quantity=line.quantity)


def test_an_invoice_typed_in_matches(
    acme: TestClient, session_factory: sessionmaker[Session], two: PortalWorld
) -> None:
    _receive_all(session_factory, two.a.order)
    one, two_ = two.a.lines
    form = acme.get(f"/portal/orders/{two.a.order}/invoice")
    assert 'value="9"' in form.text  # the ordered price is offered
    response = post(
        acme,
        f"/portal/orders/{two.a.order}/invoices",
        {
            "line": [str(one), str(two_)],
            "invoice_number": "INV-100",
            f"invqty_{one}": "10",
            f"invprice_{one}": "9.00",
            f"invqty_{two_}": "4",
            f"invprice_{two_}": "20.00",
        },
    )
    assert response.status_code == 200
    assert "matched the order and receipts" in response.text
    with session_factory() as session:
        invoice = session.scalar(
            select(SupplierInvoice).where(SupplierInvoice.invoice_number == "INV-100")
        )
        assert invoice is not None
        assert invoice.status is InvoiceStatus.MATCHED
        assert invoice.total == Decimal("170.00")
        assert invoice.source is DocumentSource.PORTAL
        order = session.get(PurchaseOrder, two.a.order)
        assert order is not None
        assert order.status is PoStatus.INVOICED


def test_an_invoice_from_csv_shows_its_exceptions(
    acme: TestClient, session_factory: sessionmaker[Session], two: PortalWorld
) -> None:
    csv = b"line,quantity,unit_price,description\n1,10,9.50,bearings\n7,1,5.00,freight\n"
    response = post(
        acme,
        f"/portal/orders/{two.a.order}/invoices",
        {"line": [str(i) for i in two.a.lines], "invoice_number": "INV-200", "tax": "1.00"},
        files={"lines_file": ("lines.csv", csv, "text/csv")},
    )
    assert response.status_code == 200
    page = text(response)
    assert "exception(s); the buyer will review them" in page
    with session_factory() as session:
        invoice = session.scalar(
            select(SupplierInvoice).where(SupplierInvoice.invoice_number == "INV-200")
        )
        assert invoice is not None
        assert invoice.status is InvoiceStatus.EXCEPTION
        assert invoice.total == Decimal("101.00")
        kinds = {e["kind"] for e in invoice.exceptions}
    assert {"not_received", "price_variance", "unknown_line"} <= kinds
    for item in invoice.exceptions:
        assert str(item["message"]).replace("'", "&#39;") in response.text


@pytest.mark.parametrize(
    ("fields", "csv", "message"),
    [
        ({"invoice_number": ""}, None, "invoice number: required"),
        ({}, None, "enter the quantity billed on at least one line"),
        ({"qty": "1"}, b"line,quantity,unit_price\n1,1,9\n", "not both"),
        ({}, b"line,qty\n1,1\n", "missing column(s): quantity, unit_price"),
        ({}, b"line,quantity,unit_price\nx,1,9\n", "CSV line 2: line must be"),
        ({}, b"line,quantity,unit_price\n1,abc,9\n", "CSV line 2 quantity: not a number"),
        ({}, b"\xff\xfe", "not UTF-8"),
        ({"total": "1.001"}, None, "more decimals than USD allows"),
    ],
)
def test_a_refused_invoice_records_nothing(
    acme: TestClient,
    session_factory: sessionmaker[Session],
    two: PortalWorld,
    fields: dict[str, str],
    csv: bytes | None,
    message: str,
) -> None:
    line = two.a.lines[0]
    data: dict[str, Any] = {"line": str(line), "invoice_number": "INV-9"}
    for key, value in fields.items():
        data[f"invqty_{line}" if key == "qty" else key] = value
    if "qty" not in fields and csv is None and fields.get("total"):
        data[f"invqty_{line}"] = "1"
    data.setdefault(f"invprice_{line}", "9")
    files = {"lines_file": ("x.csv", csv, "text/csv")} if csv is not None else None
    response = post(acme, f"/portal/orders/{two.a.order}/invoices", data, files=files)
    assert response.status_code == 422
    assert message in response.text
    assert count(session_factory, SupplierInvoice) == 1  # BETA's only


# --- catalogue ----------------------------------------------------------------------------------


def test_price_breaks_are_edited_with_history(
    acme: TestClient, session_factory: sessionmaker[Session], two: PortalWorld
) -> None:
    page = acme.get(f"/portal/catalog/{two.a.item}")
    assert page.status_code == 200
    response = post(
        acme,
        f"/portal/catalog/{two.a.item}/prices",
        {"min_quantity": ["10", "1", "", "50"], "unit_price": ["8.00", "9.25", "", "7.5"]},
    )
    assert response.status_code == 200
    assert "3 price(s) changed." in response.text
    with session_factory() as session:
        item = session.get(CatalogItem, two.a.item)
        assert item is not None
        assert [(b.min_quantity, b.unit_price) for b in item.price_breaks] == [
            (1, Decimal("9.25")),
            (10, Decimal("8.00")),
            (50, Decimal("7.5")),
        ]
        changes = session.scalars(select(PriceChange)).all()
        assert {c.changed_by_id for c in changes} == {two.a.user}


@pytest.mark.parametrize(
    ("minimums", "prices", "message"),
    [
        (["2"], ["9"], "must start at one pack"),
        (["1", "1"], ["9", "8"], "ascend without repeats"),
        (["1", "5"], ["9", ""], "give both the minimum quantity and the unit price"),
        (["1"], ["0"], "must be more than 0"),
        ([""], [""], "at least one price break"),
    ],
)
def test_refused_price_breaks_change_nothing(
    acme: TestClient,
    session_factory: sessionmaker[Session],
    two: PortalWorld,
    minimums: list[str],
    prices: list[str],
    message: str,
) -> None:
    response = post(
        acme,
        f"/portal/catalog/{two.a.item}/prices",
        {"min_quantity": minimums, "unit_price": prices},
    )
    assert response.status_code == 422
    assert message in response.text
    with session_factory() as session:
        item = session.get(CatalogItem, two.a.item)
        assert item is not None
        assert [(b.min_quantity, b.unit_price) for b in item.price_breaks] == [
            (1, Decimal("9.00")),
            (10, Decimal("8.50")),
        ]
    assert count(session_factory, PriceChange) == 0


def _xlsx(rows: list[list[object]]) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def test_catalogue_upload_applies_a_valid_file(
    acme: TestClient, session_factory: sessionmaker[Session], two: PortalWorld
) -> None:
    data = _xlsx(
        [
            ["supplier_part_number", "part_number", "unit_price", "min_quantity"],
            ["ACME-NEW", "BRG-1", 4.5, 1],
            ["ACME-NEW", "BRG-1", 4.0, 100],
        ]
    )
    response = post(
        acme,
        "/portal/catalog/import",
        {},
        files={"catalog_file": ("prices.xlsx", data, "application/octet-stream")},
    )
    assert response.status_code == 200
    assert "1 item(s) added" in response.text
    with session_factory() as session:
        item = session.scalar(
            select(CatalogItem).where(CatalogItem.supplier_part_number == "ACME-NEW")
        )
        assert item is not None
        assert item.supplier_id == two.a.supplier
        assert len(item.price_breaks) == 2


def test_catalogue_upload_with_errors_reports_every_line_and_applies_nothing(
    acme: TestClient, session_factory: sessionmaker[Session], two: PortalWorld
) -> None:
    csv = (
        "supplier_part_number,part_number,unit_price\n"
        "ACME-1,BRG-1,1.00\n"
        f"ACME-X,{HOSTILE},2\n"
        "ACME-Y,BRG-1,abc\n"
    ).encode()
    response = post(
        acme,
        "/portal/catalog/import",
        {},
        files={"catalog_file": ("prices.csv", csv, "text/csv")},
    )
    assert response.status_code == 422
    page = text(response)
    assert "Nothing was applied: 2 problem(s) in 3 row(s)" in page
    assert "3 part_number part_number: no part" in page
    assert "4 unit_price unit_price: &#39;abc&#39; is not a number" in page
    assert "<script>" not in response.text
    with session_factory() as session:
        item = session.get(CatalogItem, two.a.item)
        assert item is not None
        assert item.price_breaks[0].unit_price == Decimal("9.00")
    assert count(session_factory, PriceChange) == 0


def test_catalogue_upload_needs_a_csv_or_xlsx_file(acme: TestClient) -> None:
    response = post(
        acme,
        "/portal/catalog/import",
        {},
        files={"catalog_file": ("prices.pdf", PDF, "application/pdf")},
    )
    assert response.status_code == 422
    assert "choose a .csv or .xlsx file" in response.text


# --- scorecard ----------------------------------------------------------------------------------


def test_scorecard_page(
    acme: TestClient, session_factory: sessionmaker[Session], two: PortalWorld
) -> None:
    _receive_all(session_factory, two.a.order)
    page = text(acme.get("/portal/scorecard"))
    assert "Your scorecard" in page
    assert "on time delivery" in page
    assert "quality 100.0%" in page


# --- messages -----------------------------------------------------------------------------------


def test_messages_with_attachments_both_ways(
    acme: TestClient,
    session_factory: sessionmaker[Session],
    two: PortalWorld,
    make_user: Any,
    settings: Settings,
) -> None:
    response = post(
        acme,
        f"/portal/orders/{two.a.order}/messages",
        {"body": "Drawing attached"},
        files={"attachment": ("../../Zeichnung <1>.PDF", PDF, "application/pdf")},
    )
    assert response.status_code == 200
    with session_factory() as session:
        message = session.scalar(
            select(OrderMessage).where(OrderMessage.purchase_order_id == two.a.order)
        )
        assert message is not None
        assert message.attachment_name == "Zeichnung _1.pdf"
        assert message.from_supplier
        message_id = message.id
    download = acme.get(f"/portal/orders/{two.a.order}/messages/{message_id}/attachment")
    assert download.status_code == 200
    assert download.content == PDF
    assert download.headers["content-type"] == "application/pdf"
    assert download.headers["content-disposition"] == 'attachment; filename="Zeichnung _1.pdf"'
    assert download.headers["x-content-type-options"] == "nosniff"
    # The buyer reads it through the API and answers with a file of their own.
    _, token = make_user(Role.PROCUREMENT)
    auth = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(settings)) as api:
        listed = api.get(f"/api/v1/purchase-orders/{two.a.order}/messages", headers=auth)
        assert listed.status_code == 200
        assert listed.json()[0]["attachment_name"] == "Zeichnung _1.pdf"
        assert listed.json()[0]["author"] == two.a.username
        answer = api.post(
            f"/api/v1/purchase-orders/{two.a.order}/messages",
            headers=auth,
            data={"body": "Thanks, see the corrected list"},
            files={"attachment": ("list.csv", b"part,qty\nBRG-1,10\n", "text/csv")},
        )
        assert answer.status_code == 201
    page = acme.get(f"/portal/orders/{two.a.order}")
    assert "Thanks, see the corrected list" in page.text
    assert "Buyer" in text(page)
    buyer_file = acme.get(answer.json()["attachment_url"].replace("/api/v1/purchase-", "/portal/"))
    assert buyer_file.status_code == 200
    assert buyer_file.headers["content-type"].startswith("text/csv")


@pytest.mark.parametrize(
    ("name", "content", "declared", "message"),
    [
        ("page.html", b"<html><script>alert(1)</script>", "text/html", "cannot be attached"),
        ("fake.pdf", b"<script>alert(1)</script>", "application/pdf", "not a PDF file"),
        ("x.pdf", PDF, "text/html", "declared type does not match"),
    ],
)
def test_refused_attachments_store_nothing(
    acme: TestClient,
    session_factory: sessionmaker[Session],
    two: PortalWorld,
    name: str,
    content: bytes,
    declared: str,
    message: str,
) -> None:
    response = post(
        acme,
        f"/portal/orders/{two.a.order}/messages",
        {"body": "see file"},
        files={"attachment": (name, content, declared)},
    )
    assert response.status_code == 422
    assert message in response.text
    assert count(session_factory, OrderMessage) == 2  # BETA's two


@pytest.fixture
def roomy_client(settings: Settings, engine: Any) -> Iterator[TestClient]:
    """A client of an app whose request limit lets a too-large attachment reach the check."""
    with TestClient(create_app(settings.model_copy(update={"max_body_bytes": 4 << 20}))) as app:
        yield app


def test_attachments_over_the_limit_are_refused(
    roomy_client: TestClient, session_factory: sessionmaker[Session], two: PortalWorld
) -> None:
    portal_sign_in(roomy_client, two.a.username)
    big = PDF + b"0" * (1024 * 1024)
    response = post(
        roomy_client,
        f"/portal/orders/{two.a.order}/messages",
        {"body": ""},
        files={"attachment": ("big.pdf", big, "application/pdf")},
    )
    assert response.status_code == 422
    assert "at most 1024 KiB" in response.text
    assert count(session_factory, OrderMessage) == 2


def test_an_empty_message_is_refused(acme: TestClient, two: PortalWorld) -> None:
    response = post(acme, f"/portal/orders/{two.a.order}/messages", {"body": "   "})
    assert response.status_code == 422
    assert "write a message or attach a file" in response.text


# --- CSRF and escaping --------------------------------------------------------------------------


def test_every_portal_form_needs_the_csrf_token(
    acme: TestClient, session_factory: sessionmaker[Session], two: PortalWorld
) -> None:
    line = two.a.lines[0]
    forms = {
        f"/portal/orders/{two.a.order}/acknowledgement": {
            "line": str(line),
            f"decision_{line}": "accept",
        },
        f"/portal/orders/{two.a.order}/shipments": {
            "line": str(line),
            f"ship_{line}": "1",
            "shipment_number": "C1",
        },
        f"/portal/orders/{two.a.order}/invoices": {
            "line": str(line),
            f"invqty_{line}": "1",
            f"invprice_{line}": "9",
            "invoice_number": "C1",
        },
        f"/portal/orders/{two.a.order}/messages": {"body": "hi"},
        f"/portal/catalog/{two.a.item}/prices": {"min_quantity": "1", "unit_price": "1"},
        "/portal/catalog/import": {},
        "/portal/account/password": {"current": PASSWORD, "new": "x" * 12, "repeat": "x" * 12},
        "/portal/logout": {},
        "/portal/login": {"username": two.a.username, "password": PASSWORD},
    }
    for path, data in forms.items():
        for token in (None, "forged"):
            sent = data if token is None else {**data, "csrf_token": token}
            response = acme.post(path, data=sent, headers=HTML, follow_redirects=False)
            assert response.status_code == 403, (path, token)
    order = load_order(session_factory, two.a.order)
    assert order.status is PoStatus.SENT
    for table in (Shipment, SupplierInvoice, PriceChange):
        assert count(session_factory, table) == (1 if table is not PriceChange else 0)
    assert count(session_factory, OrderMessage) == 2
    assert acme.get("/portal").status_code == 200  # still signed in


def test_hostile_strings_are_escaped(
    acme: TestClient, session_factory: sessionmaker[Session], two: PortalWorld
) -> None:
    with session_factory() as session, session.begin():
        supplier = session.get(Supplier, two.a.supplier)
        assert supplier is not None
        supplier.legal_name = HOSTILE
        user = session.get(User, two.a.user)
        assert user is not None
        user.full_name = HOSTILE
    line = two.a.lines[1]
    post(
        acme,
        f"/portal/orders/{two.a.order}/acknowledgement",
        {"line": str(line), f"decision_{line}": "reject", f"note_{line}": HOSTILE},
    )
    post(acme, f"/portal/orders/{two.a.order}/messages", {"body": HOSTILE})
    for path in ("/portal", f"/portal/orders/{two.a.order}", "/portal/account"):
        page = acme.get(path)
        assert page.status_code == 200
        assert "<script>alert" not in page.text
        assert "&lt;script&gt;alert(&#34;pwn&#34;)&lt;/script&gt; &amp; Co" in page.text
    refused = post(
        acme,
        f"/portal/orders/{two.a.order}/shipments",
        {"line": str(line), f"ship_{line}": "1", "shipment_number": HOSTILE},
    )
    assert refused.status_code == 422
    assert "<script>alert" not in refused.text
