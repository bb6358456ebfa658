"""Supplier connectivity on the supply pages: connection status per supplier, shipments on their
way, catalogue synchronisation, the EDI archive with its error queue and reprocessing; escaping
of hostile values and who may see and do what."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.app import create_app
from maintainpro.config import Settings
from maintainpro.core.db import utcnow
from maintainpro.core.users import Role, User
from maintainpro.supply.edi.acks import mark_overdue
from maintainpro.supply.edi.archive import (
    Direction,
    DocumentStatus,
    EdiDocument,
    EdiInterchange,
    InterchangeStatus,
)
from maintainpro.supply.edi.carrier_status_out import carrier_status_content
from maintainpro.supply.edi.inbound import receive_interchanges
from maintainpro.supply.edi.order_ack_out import order_ack_content
from maintainpro.supply.edi.outbound import queue_purchase_order
from maintainpro.supply.edi.partners import EdiTransport
from maintainpro.supply.edi.ship_notice_out import ship_notice_content
from maintainpro.supply.erp_records import ErpSyncState
from maintainpro.supply.rates import ExchangeRate
from maintainpro.supply.suppliers import ConnectionType, Supplier
from supply.edi.edi_world import (
    acknowledgement,
    carrier_status,
    edi_supplier,
    from_partner,
    sent_order,
    ship_notice,
    trading_partner,
)
from supply.procurement_world import EUR_USD, TODAY, World
from support import plant
from web.test_supply_pages import csrf_of, sign_in_as

MakeUser = Callable[..., tuple[User, str]]
HTML = {"Accept": "text/html"}
HOSTILE = '<script>alert("pwn")</script>'
ESCAPED = "&lt;script&gt;alert(&#34;pwn&#34;)&lt;/script&gt;"
LATE_TRACKING = "1ZLATE<b>x</b>"
ERP = [
    {"name": "s4", "system": "sap", "suppliers": ["ACME"]},
    {"name": "bc", "system": "business_central", "suppliers": ["QUIET"]},
]


@pytest.fixture
def client(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    """The app (jobs off) with two ERP connections configured."""
    with TestClient(create_app(settings.model_copy(update={"erp_connections": ERP}))) as http:
        yield http


def _receive(session: Session, raw: bytes) -> EdiInterchange:
    (result,) = receive_interchanges(session, raw)
    return result.interchange


@pytest.fixture
def scene(session_factory: sessionmaker[Session]) -> dict[str, int]:
    """ACME on EDI (AS2, test mode, an SFTP folder) with archive, queue, shipments, 832, ERP."""
    now = utcnow()
    with session_factory() as session, session.begin():
        session.add(ExchangeRate(day=TODAY, currency="USD", per_eur=EUR_USD, source="ECB"))
        world = World(session, plant(session))
        acme = edi_supplier(world, "ACME")
        quiet = world.supplier("QUIET", "USD")
        quiet.connection_type = ConnectionType.EMAIL
        partner = trading_partner(
            session,
            acme,
            transport=EdiTransport.AS2,
            usage="T",
            sftp_host="sftp.acme.example",
            sftp_username="maintainpro",
        )
        order = sent_order(world, acme)
        answered = _receive(
            session,
            from_partner(
                partner,
                order_ack_content(acknowledgement(order.number, ("1", "IA", "10", "9.00"))),
                control=1,
            ),
        )
        late = ship_notice(
            "ASN-LATE",
            order.number,
            ("1", "10"),
            tracking=LATE_TRACKING,
            shipped=now.date() - dt.timedelta(days=10),
        )
        _receive(session, from_partner(partner, ship_notice_content(late), control=2))
        delivered_order = sent_order(world, acme)
        done = ship_notice("ASN-DONE", delivered_order.number, ("1", "10"), tracking="1ZDONE")
        _receive(session, from_partner(partner, ship_notice_content(done), control=3))
        _receive(
            session,
            from_partner(
                partner,
                carrier_status_content(
                    carrier_status("1ZDONE", ("D1", now.date(), dt.time(0, 1), "UT"))
                ),
                control=4,
            ),
        )
        failed = _receive(
            session,
            from_partner(
                partner,
                ship_notice_content(ship_notice("ASN-X", HOSTILE, ("1", "1"), tracking="1ZX")),
                control=5,
            ),
        )
        # A catalogue: the 832 reader's parsed form lists its items.
        catalog = EdiInterchange(
            partner_id=partner.id,
            direction=Direction.INBOUND,
            transport="as2",
            control_number=6,
            raw=b"ISA...",
            status=InterchangeStatus.APPLIED,
            errors=[],
        )
        catalog.documents.append(
            EdiDocument(
                set_id="832",
                status=DocumentStatus.APPLIED,
                parsed={"items": [{"line_number": str(n)} for n in range(3)]},
                errors=[],
                attempts=1,
                processed_at=now,
            )
        )
        session.add(catalog)
        third = sent_order(world, acme)
        queued = queue_purchase_order(session, third, "purchase_order.sent", now=now)
        mark_overdue(session, now=now + dt.timedelta(days=1))
        # Newest inbound: cut short, filed under ACME by its ISA header.
        cut = from_partner(partner, order_ack_content(acknowledgement(third.number)), control=7)
        rejected = _receive(session, cut[:150])
        session.add_all(
            [
                ErpSyncState(
                    connector="s4",
                    system="sap",
                    last_run_at=now,
                    last_success_at=now,
                    rows=5,
                    detail={"counts": {"item.applied": 5, "vendor.applied": 1}},
                ),
                ErpSyncState(connector="bc", system="business_central", last_error=HOSTILE),
            ]
        )
        session.flush()
        (failed_document,) = failed.documents
        return {
            "partner": partner.id,
            "order": order.id,
            "answered": answered.id,
            "failed": failed.id,
            "failed_document": failed_document.id,
            "queued": queued.id,
            "rejected": rejected.id,
        }


def rows(page: httpx.Response, table_class: str) -> list[str]:
    """The body rows of a table as whitespace-collapsed text."""
    table = re.search(rf'<table class="{table_class}">(.*?)</table>', page.text, re.S)
    assert table is not None, f"no table {table_class}"
    body = table.group(1).split("</thead>", 1)[-1]
    return [
        re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).strip()
        for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)
    ]


def row_of(page: httpx.Response, table_class: str, needle: str) -> str:
    for row in rows(page, table_class):
        if needle in row:
            return row
    raise AssertionError(f"no row with {needle} in {table_class}")


# --- the dashboard -------------------------------------------------------------------------------


def test_dashboard_shows_each_suppliers_connection(
    client: TestClient, make_user: MakeUser, scene: dict[str, int]
) -> None:
    sign_in_as(client, make_user, Role.PROCUREMENT)
    page = client.get("/supply")
    assert page.status_code == 200
    acme = row_of(page, "connections", "ACME")
    assert acme.startswith("ACME edi AS2 test")
    # Newest received: the cut-short one; newest sent: the 850, queued, its 997 overdue.
    assert re.search(r"UTC rejected .* UTC queued 997 overdue", acme), acme
    overdue, queue = re.search(r"overdue (\d+) (\d+)", acme).groups()  # type: ignore[union-attr]
    assert (overdue, queue) == ("1", "1")
    assert "s4 · synced" in acme
    assert acme.endswith("not polling (background jobs off)")
    quiet = row_of(page, "connections", "QUIET")
    assert quiet.split()[:3] == ["QUIET", "email", "—"]
    assert "bc failing" in quiet


def test_dashboard_tracks_shipments_on_their_way(
    client: TestClient, make_user: MakeUser, scene: dict[str, int]
) -> None:
    sign_in_as(client, make_user, Role.ANALYST)
    page = client.get("/supply")
    (late,) = rows(page, "in-transit")  # the delivered shipment is not on its way any more
    assert late.startswith(f"ASN-LATE PO-{scene['order']:06d} ACME UPSN 1ZLATE&lt;b&gt;x&lt;/b&gt;")
    assert late.endswith("late")
    assert "info received" in late or "in transit" in late


def test_dashboard_shows_catalogue_synchronisation(
    client: TestClient, make_user: MakeUser, scene: dict[str, int]
) -> None:
    sign_in_as(client, make_user, Role.PROCUREMENT)
    page = client.get("/supply")
    acme = row_of(page, "catalog-sync", "ACME")
    assert "applied · 3 items" in acme
    assert "s4 ·" in acme
    assert "5 items updated" in acme
    assert acme.endswith(" 1")  # the order's catalogue item, loaded today
    quiet = row_of(page, "catalog-sync", "QUIET")
    assert quiet.split() == ["QUIET", "—", "bc", "·", "not", "synced", "yet", "—", "0"]


def test_hostile_values_are_escaped(
    client: TestClient, make_user: MakeUser, scene: dict[str, int]
) -> None:
    connectivity = client.app.state.supplier_connectivity
    connectivity.sftp.problems[scene["partner"]] = f"the SFTP settings: {HOSTILE}"
    sign_in_as(client, make_user, Role.PROCUREMENT)
    for path in ("/supply", "/supply/edi"):
        page = client.get(path)
        assert page.status_code == 200
        assert HOSTILE not in page.text, path
        assert "<b>x</b>" not in page.text, path
        assert ESCAPED in page.text, path


# --- the EDI page --------------------------------------------------------------------------------


def test_edi_page_lists_the_archive_with_filters_and_the_error_queue(
    client: TestClient, make_user: MakeUser, scene: dict[str, int]
) -> None:
    sign_in_as(client, make_user, Role.ANALYST)
    page = client.get("/supply/edi")
    listed = rows(page, "interchanges")
    assert listed[0].startswith(f"{scene['rejected']} ")
    assert "inbound ACME manual — — rejected — syntax:" in listed[0]
    by_id = {int(r.split()[0]): r for r in listed}
    assert "inbound ACME manual 000000001 855 applied" in by_id[scene["answered"]]
    queued = by_id[scene["queued"]]
    assert "outbound ACME as2" in queued
    assert queued.endswith("850 queued overdue")
    (queue,) = rows(page, "error-queue")
    assert f"{scene['failed_document']} (interchange {scene['failed']}) ACME 856" in queue
    assert "apply: no purchase order" in queue
    assert "Reprocess" not in page.text  # an analyst reads, but does not reprocess
    outbound = rows(client.get("/supply/edi?direction=outbound"), "interchanges")
    assert outbound
    assert all(" outbound " in r for r in outbound)
    rejected = rows(client.get("/supply/edi?status=rejected"), "interchanges")
    assert [r.split()[0] for r in rejected] == [str(scene["rejected"])]
    # Unknown filter values are ignored rather than failing.
    everything = client.get("/supply/edi?direction=sideways&status=%3Cx%3E")
    assert everything.status_code == 200
    assert rows(everything, "interchanges") == listed


def test_reprocess_after_the_fix_applies_the_document(
    client: TestClient,
    make_user: MakeUser,
    session_factory: sessionmaker[Session],
) -> None:
    with session_factory() as session, session.begin():
        session.add(ExchangeRate(day=TODAY, currency="USD", per_eur=EUR_USD, source="ECB"))
        ids = plant(session)
        partner = trading_partner(session, edi_supplier(World(session, ids), "ACME"))
        supplier_id = partner.supplier_id
        notice = ship_notice("ASN-7", "PO-000777", ("1", "10"))
        failed = _receive(session, from_partner(partner, ship_notice_content(notice)))
        (document,) = failed.documents
        document_id = document.id
    assert document.status is DocumentStatus.FAILED
    sign_in_as(client, make_user, Role.PROCUREMENT)
    page = client.get("/supply/edi")
    assert f'action="/supply/edi/documents/{document_id}/reprocess"' in page.text
    path = f"/supply/edi/documents/{document_id}/reprocess"
    too_early = client.post(path, data={"csrf_token": csrf_of(page)}, follow_redirects=True)
    assert "still failed" in too_early.text
    assert "no purchase order" in too_early.text
    # The fix: the order the ship notice names now exists.
    with session_factory() as session, session.begin():
        supplier = session.get(Supplier, supplier_id)
        assert supplier is not None
        sent_order(World(session, ids), supplier, order_id=777)
    done = client.post(path, data={"csrf_token": csrf_of(too_early)}, follow_redirects=True)
    assert done.status_code == 200
    assert f"Reprocessed 856 document {document_id}: applied." in done.text
    assert "The error queue is empty." in done.text
    with session_factory() as session:
        stored = session.get(EdiDocument, document_id)
        assert stored is not None
        assert (stored.status, stored.attempts) == (DocumentStatus.APPLIED, 3)


def test_reprocessing_needs_the_write_right_and_the_form_token(
    client: TestClient,
    make_user: MakeUser,
    scene: dict[str, int],
    session_factory: sessionmaker[Session],
) -> None:
    path = f"/supply/edi/documents/{scene['failed_document']}/reprocess"
    sign_in_as(client, make_user, Role.ANALYST)
    page = client.get("/supply/edi")
    assert client.post(path, data={"csrf_token": csrf_of(page)}, headers=HTML).status_code == 403
    client.cookies.clear()
    sign_in_as(client, make_user, Role.PROCUREMENT)
    assert client.post(path, data={"csrf_token": "forged"}, headers=HTML).status_code == 403
    with session_factory() as session:
        stored = session.get(EdiDocument, scene["failed_document"])
        assert stored is not None
        assert (stored.status, stored.attempts) == (DocumentStatus.FAILED, 1)


@pytest.mark.parametrize("role", [Role.TECHNICIAN, Role.SUPPLIER])
def test_roles_without_supply_read_cannot_open_the_edi_page(
    client: TestClient, make_user: MakeUser, scene: dict[str, int], role: Role
) -> None:
    sign_in_as(client, make_user, role)
    page = client.get("/supply/edi", headers=HTML)
    assert page.status_code == 403
    assert "cannot open this page" in page.text
    assert "ACME" not in page.text
