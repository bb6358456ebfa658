"""The ERP connectors applied to our data: push a stored purchase order."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from sqlalchemy.orm import Session

from maintainpro.supply.erp.base import ErpConnector
from maintainpro.supply.erp.mapping import erp_purchase_order
from maintainpro.supply.purchasing import PurchaseOrder


def push_stored_order(
    session: Session,
    order_id: int,
    connector: ErpConnector,
    *,
    vendor_number: str | None = None,
    item_numbers: Mapping[int, str] | None = None,
) -> str:
    """Send a stored order to the ERP; return the ERP's id (the same id on every repeat).

    Safe to call again after a crash or a timeout, as the outbox does: the connector finds the
    order created earlier by our number instead of creating a second one.
    """
    order = session.get(PurchaseOrder, order_id)
    if order is None:
        raise LookupError(f"purchase order {order_id} does not exist")
    document = erp_purchase_order(order, vendor_number=vendor_number, item_numbers=item_numbers)
    return connector.push_purchase_order(document)


def erp_order_sender(
    connector: ErpConnector, *, vendor_numbers: Mapping[str, str] | None = None
) -> Callable[[Session, PurchaseOrder, str], str]:
    """An order sender for the dispatch map: pushes the order, returns the history note.

    ``vendor_numbers`` maps our supplier codes to the ERP's vendor numbers where they differ.
    Errors propagate, so the outbox retries: a permanent refusal (an unknown vendor, say) goes
    through once the ERP's master data is fixed; its message is in the outbox's last error.
    """
    numbers = dict(vendor_numbers or {})

    def send(session: Session, order: PurchaseOrder, topic: str) -> str:
        document = erp_purchase_order(order, vendor_number=numbers.get(order.supplier.code))
        external_id = connector.push_purchase_order(document)
        return f"in {connector.name} as {external_id}"

    return send
