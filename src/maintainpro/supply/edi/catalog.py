"""832 price/sales catalog: BCT header, LIN items with PID descriptions and CTP/CUR prices."""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal

from maintainpro.supply.edi.common import (
    Party,
    ProductId,
    read_descriptions,
    read_parties,
    read_product_ids,
    require_segment,
    require_set,
    split_loops,
)
from maintainpro.supply.edi.model import Segment, TransactionSet
from maintainpro.supply.edi.values import (
    first_component,
    optional_decimal,
    optional_int,
    required_text,
    text,
)


@dataclass(frozen=True, slots=True)
class CatalogPrice:
    """A CTP price: price type (CTP02, e.g. RES, UCP), unit price and its currency."""

    price_type: str
    unit_price: Decimal | None
    quantity: Decimal | None
    unit: str
    currency: str | None
    class_of_trade: str = ""


@dataclass(frozen=True, slots=True)
class CatalogItem:
    """A LIN item of the catalog."""

    line_number: str
    product_ids: tuple[ProductId, ...]
    descriptions: tuple[str, ...]
    prices: tuple[CatalogPrice, ...]
    currency: str | None


@dataclass(frozen=True, slots=True)
class PriceCatalog:
    """An 832 catalog; `purpose` is BCT01 (e.g. RC resale catalog, PS price schedule)."""

    purpose: str
    catalog_number: str
    catalog_version: str
    transaction_purpose: str
    currency: str | None
    parties: tuple[Party, ...]
    items: tuple[CatalogItem, ...]
    line_count: int | None


def _currency(segment: Segment) -> str | None:
    return text(segment, 2) or None


def _read_item(loop: list[Segment], default_currency: str | None) -> CatalogItem:
    lin = loop[0]
    prices: list[CatalogPrice] = []
    item_currency: str | None = None
    for segment in loop[1:]:
        if segment.tag == "CTP":
            prices.append(
                CatalogPrice(
                    price_type=text(segment, 2),
                    unit_price=optional_decimal(segment, 3),
                    quantity=optional_decimal(segment, 4),
                    unit=first_component(text(segment, 5)),
                    currency=item_currency or default_currency,
                    class_of_trade=text(segment, 1),
                )
            )
        elif segment.tag == "CUR":
            item_currency = _currency(segment)
            # A CUR following a CTP states that price's currency.
            if prices:
                prices[-1] = replace(prices[-1], currency=item_currency)
    return CatalogItem(
        line_number=text(lin, 1),
        product_ids=read_product_ids(lin, 2),
        descriptions=read_descriptions(loop),
        prices=tuple(prices),
        currency=item_currency or default_currency,
    )


def read_price_catalog(transaction_set: TransactionSet) -> PriceCatalog:
    """Map an 832 transaction set to a PriceCatalog."""
    require_set(transaction_set, "832")
    head, loops, summary = split_loops(transaction_set.segments, "LIN", ("CTT",))
    bct = require_segment(transaction_set, head, "BCT")
    currencies = [_currency(s) for s in head if s.tag == "CUR"]
    currency = currencies[0] if currencies else None
    counts = [optional_int(s, 1) for s in summary if s.tag == "CTT"]
    return PriceCatalog(
        purpose=required_text(bct, 1),
        catalog_number=text(bct, 2),
        catalog_version=text(bct, 3),
        transaction_purpose=text(bct, 10),
        currency=currency,
        parties=read_parties(head),
        items=tuple(_read_item(loop, currency) for loop in loops),
        line_count=counts[0] if counts else None,
    )
