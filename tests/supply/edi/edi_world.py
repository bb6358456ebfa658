"""EDI test data: trading partners, sent orders (under chosen ids), and partner-side documents."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from maintainpro.core.events import OutboxEvent
from maintainpro.core.inventory import Part
from maintainpro.core.users import Role
from maintainpro.supply.catalogs import CatalogItem, PriceBreak
from maintainpro.supply.edi.carrier_status import CarrierStatus, StatusEvent
from maintainpro.supply.edi.common import CarrierRouting, DateReference, ProductId
from maintainpro.supply.edi.envelope import (
    EnvelopeSettings,
    PartyId,
    TransactionContent,
    build_interchange,
    sequential_control_numbers,
)
from maintainpro.supply.edi.invoice import Invoice, InvoiceLine
from maintainpro.supply.edi.order_ack import (
    AcknowledgedLine,
    LineAcknowledgement,
    PurchaseOrderAcknowledgement,
)
from maintainpro.supply.edi.partners import EdiTransport, TradingPartner
from maintainpro.supply.edi.ship_notice import Shipment, ShipNotice, ShippedItem, ShippedOrder
from maintainpro.supply.edi.x12 import serialize_interchange
from maintainpro.supply.invoices import SupplierInvoice
from maintainpro.supply.purchasing import (
    ApprovalPolicy,
    PurchaseOrder,
    PurchaseOrderHistory,
    add_line,
    approve_order,
    new_purchase_order,
    send_order,
)
from maintainpro.supply.shipments import Shipment as StoredShipment
from maintainpro.supply.shipments import ShipmentEvent
from maintainpro.supply.suppliers import ConnectionType, Supplier
from supply.procurement_world import TODAY, World

SENT_AT = dt.datetime(2026, 11, 27, 8, 0, tzinfo=dt.UTC)
CREATED = dt.datetime(2026, 11, 28, 9, 30)
OURS = ("ZZ", "MAINTAINPRO")


def trading_partner(
    db: Session,
    supplier: Supplier,
    *,
    sender: tuple[str, str] = ("ZZ", "ACMEEDI"),
    receiver: tuple[str, str] = OURS,
    usage: str = "P",
    transport: EdiTransport = EdiTransport.SFTP,
    documents: Sequence[str] = (),
    **fields: Any,
) -> TradingPartner:
    """A trading partner for the supplier sending as `sender` to us as `receiver`."""
    partner = TradingPartner(
        supplier_id=supplier.id,
        isa_qualifier=sender[0],
        isa_id=sender[1],
        gs_id=fields.pop("gs_id", sender[1]),
        our_isa_qualifier=receiver[0],
        our_isa_id=receiver[1],
        our_gs_id=fields.pop("our_gs_id", receiver[1]),
        usage_indicator=usage,
        transport=transport,
        documents=list(documents),
        settings=fields.pop("settings", {}),
        **fields,
    )
    db.add(partner)
    db.flush()
    return partner


def part_id(world: World, number: str) -> int:
    """The id of our part with this number, created when missing."""
    found = world.db.scalar(select(Part.id).where(Part.number == number))
    return found if found is not None else world.part(number)


def sent_order(
    world: World,
    supplier: Supplier,
    lines: Sequence[tuple[str, str, str]] = (("BRG-1", "10", "9.00"),),
    *,
    order_id: int | None = None,
    catalog: bool = True,
) -> PurchaseOrder:
    """A sent order to the supplier, one line per (our part number, quantity, unit price).

    With `catalog` each part gets a catalogue item whose supplier part number is "S-<part>".
    """
    order = new_purchase_order(
        world.db,
        supplier=supplier,
        currency=supplier.currency,
        base_currency="USD",
        rate=world.fx().rate(supplier.currency, "USD", TODAY),
    )
    if order_id is not None:
        order.id = order_id
    for number, quantity, price in lines:
        part = part_id(world, number)
        item_id = None
        if catalog:
            item = world.db.scalar(
                select(CatalogItem).where(
                    CatalogItem.supplier_id == supplier.id, CatalogItem.part_id == part
                )
            )
            if item is None:
                item = CatalogItem(
                    supplier_id=supplier.id,
                    supplier_part_number=f"S-{number}",
                    part_id=part,
                    currency=supplier.currency,
                    unit="EA",
                    price_breaks=[PriceBreak(min_quantity=Decimal(1), unit_price=Decimal(price))],
                )
                world.db.add(item)
                world.db.flush()
            item_id = item.id
        add_line(
            order,
            part_id=part,
            quantity=Decimal(quantity),
            unit_price=Decimal(price),
            need_by=TODAY + dt.timedelta(days=10),
            catalog_item_id=item_id,
        )
    world.db.flush()
    approve_order(
        world.db, order, approver_id=world.user(), role=Role.ADMIN, policy=ApprovalPolicy()
    )
    send_order(order, now=SENT_AT)
    world.db.flush()
    return order


def edi_supplier(world: World, code: str = "ACME", currency: str = "USD") -> Supplier:
    """An active supplier reached by EDI."""
    supplier = world.supplier(code, currency)
    supplier.connection_type = ConnectionType.EDI
    world.db.flush()
    return supplier


def from_partner(
    partner: TradingPartner,
    *contents: TransactionContent,
    control: int = 1,
    usage: str | None = None,
) -> bytes:
    """An interchange the partner sends us, as bytes on the wire."""
    settings = EnvelopeSettings(
        sender=PartyId(partner.isa_qualifier, partner.isa_id),
        receiver=PartyId(partner.our_isa_qualifier, partner.our_isa_id),
        application_sender=partner.gs_id,
        application_receiver=partner.our_gs_id,
        version=partner.x12_version,
        group_version=partner.gs_version,
        usage_indicator=usage or partner.usage_indicator,
    )
    interchange = build_interchange(
        list(contents), settings, sequential_control_numbers(control), CREATED
    )
    return serialize_interchange(interchange, line_break="\n").encode()


def acknowledgement(
    po_number: str, *answers: tuple[str, str, str, str], kind: str = "AC"
) -> PurchaseOrderAcknowledgement:
    """An 855 answering lines: (line number, ACK code, quantity, unit price)."""
    return PurchaseOrderAcknowledgement(
        purpose="00",
        acknowledgement_type=kind,
        po_number=po_number,
        po_date=TODAY,
        request_reference="",
        seller_order_number="SO-77",
        acknowledgement_date=TODAY,
        currency=None,
        references=(),
        parties=(),
        lines=tuple(
            AcknowledgedLine(
                line_number=line,
                quantity=Decimal(quantity),
                unit="EA",
                unit_price=Decimal(price),
                product_ids=(),
                descriptions=(),
                acknowledgements=(
                    LineAcknowledgement(
                        code,
                        Decimal(0) if code == "IR" else Decimal(quantity),
                        "EA",
                        "068" if code != "IR" else "",
                        TODAY + dt.timedelta(days=12) if code != "IR" else None,
                    ),
                ),
                schedules=(),
            )
            for line, code, quantity, price in answers
        ),
        line_count=len(answers),
    )


def ship_notice(
    number: str,
    po_number: str,
    *items: tuple[str, str],
    tracking: str = "1Z999AA10123456784",
    scac: str = "UPSN",
    shipped: dt.date = TODAY,
) -> ShipNotice:
    """An 856 for one order: items are (line number, quantity shipped)."""
    return ShipNotice(
        purpose="00",
        shipment_id=number,
        notice_date=shipped,
        notice_time=dt.time(9, 0),
        dates=(),
        shipments=(
            Shipment(
                hl_id="1",
                carrier=CarrierRouting("B", "2", scac, "M", "UPS GROUND"),
                tracking_numbers=(tracking,),
                bill_of_lading="",
                references=(),
                dates=(
                    DateReference("011", shipped, dt.time(7, 30)),
                    DateReference("017", shipped + dt.timedelta(days=2)),
                ),
                parties=(),
                packaging_code="CTN25",
                lading_quantity=1,
                gross_weight=Decimal("4.5"),
                weight_unit="LB",
                orders=(
                    ShippedOrder(
                        hl_id="2",
                        po_number=po_number,
                        release_number="",
                        references=(),
                        parties=(),
                        packs=(),
                        items=tuple(
                            ShippedItem(
                                hl_id=str(3 + n),
                                line_number=line,
                                product_ids=(),
                                quantity_shipped=Decimal(quantity),
                                unit="EA",
                                quantity_ordered=None,
                                descriptions=(),
                            )
                            for n, (line, quantity) in enumerate(items)
                        ),
                    ),
                ),
            ),
        ),
        level_count=None,
    )


def invoice(number: str, po_number: str, *lines: tuple[str, str, str], total: str) -> Invoice:
    """An 810: lines are (line number, quantity, unit price); total as TDS01 reads it."""
    return Invoice(
        invoice_number=number,
        invoice_date=TODAY,
        po_number=po_number,
        po_date=TODAY,
        transaction_type="DI",
        currency=None,
        references=(),
        dates=(),
        parties=(),
        lines=tuple(
            InvoiceLine(
                line_number=line,
                quantity=Decimal(quantity),
                unit="EA",
                unit_price=Decimal(price),
                price_basis="",
                product_ids=(ProductId("VP", "UNKNOWN"),),
                descriptions=("Bearing",),
                charges=(),
                parties=(),
            )
            for line, quantity, price in lines
        ),
        total_amount=Decimal(total),
        amounts=(),
        charges=(),
        line_count=len(lines),
    )


def carrier_status(
    reference: str, *events: tuple[str, dt.date, dt.time | None, str], scac: str = "UPSN"
) -> CarrierStatus:
    """A 214 for a tracking number: events are (AT701 code, date, time, AT707 time code)."""
    return CarrierStatus(
        reference=reference,
        shipment_id="",
        scac=scac,
        references=(),
        parties=(),
        events=tuple(
            StatusEvent(
                status_code=code,
                reason_code="NS",
                appointment_code="",
                appointment_reason="",
                date=day,
                time=at,
                time_code=zone,
                city="MEMPHIS",
                state="TN",
                country="",
                equipment_owner="",
                equipment_number="",
            )
            for code, day, at, zone in events
        ),
    )


def counts(db: Session) -> dict[str, int]:
    """Rows of what inbound EDI may create, to prove that nothing was applied."""
    tables: dict[str, Any] = {
        "shipments": StoredShipment,
        "events": ShipmentEvent,
        "invoices": SupplierInvoice,
        "history": PurchaseOrderHistory,
        "catalog": CatalogItem,
    }
    return {
        name: db.scalar(select(func.count()).select_from(model)) or 0
        for name, model in tables.items()
    }


def events(db: Session, topic: str) -> list[dict[str, Any]]:
    """Payloads of the outbox events of a topic, oldest first."""
    return [
        dict(e.payload)
        for e in db.scalars(
            select(OutboxEvent).where(OutboxEvent.topic == topic).order_by(OutboxEvent.id)
        )
    ]
