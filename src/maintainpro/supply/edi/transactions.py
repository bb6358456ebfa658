"""Map parsed transaction sets to typed documents, dispatching on ST01."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TypeAlias

from maintainpro.supply.edi.carrier_status import CarrierStatus, StatusEvent, read_carrier_status
from maintainpro.supply.edi.catalog import (
    CatalogItem,
    CatalogPrice,
    PriceCatalog,
    read_price_catalog,
)
from maintainpro.supply.edi.errors import UnsupportedTransactionError
from maintainpro.supply.edi.functional_ack import (
    AckStatus,
    ElementError,
    FunctionalAcknowledgement,
    SegmentError,
    SetAcknowledgement,
    acknowledge_group,
    functional_ack_content,
    read_functional_ack,
)
from maintainpro.supply.edi.invoice import Invoice, InvoiceLine, read_invoice
from maintainpro.supply.edi.model import Interchange, TransactionSet
from maintainpro.supply.edi.order_ack import (
    AcknowledgedLine,
    LineAcknowledgement,
    LineSchedule,
    PurchaseOrderAcknowledgement,
    read_purchase_order_acknowledgement,
)
from maintainpro.supply.edi.orders import (
    PurchaseOrder,
    PurchaseOrderChange,
    PurchaseOrderChangeLine,
    PurchaseOrderLine,
    purchase_order_change_content,
    purchase_order_content,
    read_purchase_order,
    read_purchase_order_change,
)
from maintainpro.supply.edi.ship_notice import (
    Shipment,
    ShipNotice,
    ShippedItem,
    ShippedOrder,
    ShippedPack,
    read_ship_notice,
)

TransactionDocument: TypeAlias = (
    PurchaseOrder
    | PurchaseOrderChange
    | PurchaseOrderAcknowledgement
    | ShipNotice
    | Invoice
    | PriceCatalog
    | CarrierStatus
    | FunctionalAcknowledgement
)

__all__ = [
    "AckStatus",
    "AcknowledgedLine",
    "CarrierStatus",
    "CatalogItem",
    "CatalogPrice",
    "ElementError",
    "FunctionalAcknowledgement",
    "Invoice",
    "InvoiceLine",
    "LineAcknowledgement",
    "LineSchedule",
    "PriceCatalog",
    "PurchaseOrder",
    "PurchaseOrderAcknowledgement",
    "PurchaseOrderChange",
    "PurchaseOrderChangeLine",
    "PurchaseOrderLine",
    "SegmentError",
    "SetAcknowledgement",
    "ShipNotice",
    "Shipment",
    "ShippedItem",
    "ShippedOrder",
    "ShippedPack",
    "StatusEvent",
    "TransactionDocument",
    "acknowledge_group",
    "functional_ack_content",
    "purchase_order_change_content",
    "purchase_order_content",
    "read_documents",
    "read_transaction",
]


def read_transaction(transaction_set: TransactionSet) -> TransactionDocument:
    """Map a transaction set to its typed document; raise for unsupported ST01 values."""
    match transaction_set.set_id:
        case "850":
            return read_purchase_order(transaction_set)
        case "860":
            return read_purchase_order_change(transaction_set)
        case "855":
            return read_purchase_order_acknowledgement(transaction_set)
        case "856":
            return read_ship_notice(transaction_set)
        case "810":
            return read_invoice(transaction_set)
        case "832":
            return read_price_catalog(transaction_set)
        case "214":
            return read_carrier_status(transaction_set)
        case "997":
            return read_functional_ack(transaction_set)
        case other:
            raise UnsupportedTransactionError(
                f"no mapping for transaction set {other!r}", transaction_set.header.position
            )


def read_documents(interchange: Interchange) -> Iterator[TransactionDocument]:
    """Map every transaction set of an interchange, in order."""
    for transaction_set in interchange.transaction_sets():
        yield read_transaction(transaction_set)
