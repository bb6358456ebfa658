"""Sending orders to suppliers: the outbox handler and one sender per connection type."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from maintainpro.config import Settings
from maintainpro.core.audit import SYSTEM, set_actor
from maintainpro.core.delivery import Mailer
from maintainpro.core.events import Handler
from maintainpro.supply.edi.outbound import edi_order_sender
from maintainpro.supply.erp_config import with_erp_routing
from maintainpro.supply.order_changes import CHANGED_TOPIC
from maintainpro.supply.order_pdf import PDF_MIME, order_document, render_order_pdf
from maintainpro.supply.purchasing import PoStatus, PurchaseOrder, PurchaseOrderHistory
from maintainpro.supply.suppliers import ConnectionType, Supplier

log = logging.getLogger(__name__)

SENT_TOPIC = "purchase_order.sent"
DISPATCH_TOPICS = (SENT_TOPIC, CHANGED_TOPIC)
# Orders that no longer go anywhere: a change event that arrives after a cancel is not sent on.
_FINISHED = frozenset({PoStatus.CANCELLED, PoStatus.CLOSED, PoStatus.DRAFT, PoStatus.APPROVED})

OrderSender = Callable[[Session, PurchaseOrder, str], str]
"""Sends an order for a topic through one channel; returns the history note; raises to retry."""


class DispatchError(RuntimeError):
    """The order could not be handed to the supplier's channel (the outbox retries)."""


def order_contact(supplier: Supplier) -> str:
    """The address orders go to: the contact with role "ordering", else the first with e-mail."""
    with_mail = [c for c in supplier.contacts if isinstance(c, dict) and c.get("email")]
    for contact in with_mail:
        if str(contact.get("role", "")).strip().lower() == "ordering":
            return str(contact["email"])
    if not with_mail:
        raise DispatchError(f"supplier {supplier.code} has no contact with an e-mail address")
    return str(with_mail[0]["email"])


def email_sender(settings: Settings, *, buyer: str | None = None) -> OrderSender:
    """Send the order as a PDF attachment to the supplier's ordering contact."""
    buyer = buyer or settings.buyer_name

    def send(session: Session, order: PurchaseOrder, topic: str) -> str:
        to = order_contact(order.supplier)
        pdf = render_order_pdf(order_document(session, order, buyer=buyer))
        change = topic == CHANGED_TOPIC
        subject = f"Purchase order {order.number}" + (
            f" revision {order.revision}" if change else ""
        )
        body = (
            f"Dear {order.supplier.legal_name},\n\n"
            + (
                f"please find revision {order.revision} of our purchase order {order.number} "
                "attached; it replaces the earlier version.\n"
                if change
                else f"please find our purchase order {order.number} attached.\n"
            )
            + "Please acknowledge every line (accepted, changed or rejected) quoting the order "
            "number.\n\n" + f"{buyer}\n"
        )
        filename = f"{order.number}" + (f"-rev{order.revision}" if order.revision else "") + ".pdf"
        mailer = Mailer(settings)
        try:
            mailer.send(to, subject, body, attachments=[(filename, PDF_MIME, pdf)])
        finally:
            mailer.close()
        return f"e-mailed to {to}"

    return send


def awaiting_connector(channel: ConnectionType) -> OrderSender:
    """A placeholder for channels whose connector is not there yet: logged and noted."""

    def send(session: Session, order: PurchaseOrder, topic: str) -> str:
        log.info(
            "order waits for a connector",
            extra={"order_id": order.id, "channel": channel.value, "topic": topic},
        )
        return f"awaiting {channel.value} connector"

    return send


def default_senders(settings: Settings) -> dict[ConnectionType, OrderSender]:
    """E-mail and EDI (an 850/860 queued for the partner's transport) work; API and portal
    orders wait for their connectors."""
    senders: dict[ConnectionType, OrderSender] = {
        ConnectionType.EMAIL: email_sender(settings),
        ConnectionType.EDI: edi_order_sender(buyer=settings.buyer_name),
    }
    for channel in (ConnectionType.API, ConnectionType.PORTAL):
        senders[channel] = awaiting_connector(channel)
    # Suppliers an ERP connection serves get their orders through that ERP (supply/erp_config).
    return with_erp_routing(senders, settings)


def _dispatched(order: PurchaseOrder, topic: str) -> bool:
    # The history marks each hand-over, so an event seen again (at-least-once) is not re-sent.
    return any(
        entry.detail
        and any(
            item.get("field") == "dispatch"
            and item.get("topic") == topic
            and item.get("revision") == order.revision
            for item in entry.detail
        )
        for entry in order.history
    )


def dispatch_order(
    session: Session,
    order: PurchaseOrder,
    topic: str,
    senders: Mapping[ConnectionType, OrderSender],
) -> PurchaseOrderHistory | None:
    """Hand the order to its supplier's channel once per topic and revision; None if done."""
    if order.status in _FINISHED or _dispatched(order, topic):
        return None
    channel = order.supplier.connection_type
    sender = senders.get(channel)
    if sender is None:
        raise DispatchError(f"no sender for {channel.value} orders")
    note = sender(session, order, topic)
    entry = PurchaseOrderHistory(
        from_status=order.status,
        to_status=order.status,
        note=note,
        detail=[
            {
                "line": None,
                "field": "dispatch",
                "channel": channel.value,
                "topic": topic,
                "revision": order.revision,
            }
        ],
    )
    order.history.append(entry)
    return entry


def order_dispatch_handlers(
    factory: sessionmaker[Session],
    settings: Settings,
    senders: Mapping[ConnectionType, OrderSender] | None = None,
) -> dict[str, list[Handler]]:
    """Outbox handlers sending sent and changed orders; more channels register in senders."""
    chosen = dict(senders) if senders is not None else default_senders(settings)

    def handle(topic: str, payload: Mapping[str, Any]) -> None:
        try:
            order_id = int(payload["order_id"])
        except (KeyError, TypeError, ValueError):
            log.warning("order event without an order id", extra={"topic": topic})
            return
        with factory() as session, session.begin():
            set_actor(session, SYSTEM)
            order = session.get(PurchaseOrder, order_id, with_for_update=True)
            if order is None:
                return  # deleted since: nothing to send
            dispatch_order(session, order, topic, chosen)

    return {topic: [handle] for topic in DISPATCH_TOPICS}
