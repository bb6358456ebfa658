"""The ORDERS05 IDoc export: control record, segment order, values."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from defusedxml import ElementTree

from maintainpro.supply.erp.base import ErpPurchaseOrder, ErpPurchaseOrderLine
from maintainpro.supply.erp.sap_idoc import IdocControl, orders05_xml

CONTROL = IdocControl(
    sender_port="MAINTPRO",
    sender_partner="MAINTPRO01",
    receiver_port="SAPS4H",
    receiver_partner="S4HCLNT100",
    client="100",
)
ORDER = ErpPurchaseOrder(
    number="PO-000042",
    vendor_number="17300001",
    currency="EUR",
    order_date=dt.date(2026, 3, 2),
    lines=(
        ErpPurchaseOrderLine(
            1, "BRG-1", "Bearing 6205 & seal <2RS>", Decimal("5.000"), "EA", Decimal("12.50")
        ),
        ErpPurchaseOrderLine(
            2, "SEAL-7", "Shaft seal", Decimal("2.5"), "M", Decimal("3.125"), dt.date(2026, 3, 20)
        ),
    ),
)


def _idoc() -> bytes:
    return orders05_xml(
        ORDER,
        control=CONTROL,
        docnum=4711,
        created=dt.datetime(2026, 3, 2, 9, 30, 5, tzinfo=dt.UTC),
        organisation=[("014", "1710"), ("009", "001")],
        sold_to="C-100234",
    )


def test_segments_come_in_the_basic_type_s_order() -> None:
    idoc = ElementTree.fromstring(_idoc()).find("IDOC")
    assert idoc is not None
    assert [child.tag for child in idoc] == [
        "EDI_DC40",
        "E1EDK01",
        "E1EDK14",
        "E1EDK14",
        "E1EDK03",
        "E1EDKA1",
        "E1EDKA1",
        "E1EDP01",
        "E1EDP01",
    ]
    first, second = idoc.findall("E1EDP01")
    assert [child.tag for child in first] == [
        "POSEX",
        "MENGE",
        "MENEE",
        "VPREI",
        "PEINH",
        "NETWR",
        "E1EDP19",
    ]
    assert [child.tag for child in second][-2:] == ["E1EDP20", "E1EDP19"]


def test_control_record_and_values() -> None:
    root = ElementTree.fromstring(_idoc())
    assert root.tag == "ORDERS05"
    control = root.find("IDOC/EDI_DC40")
    assert control is not None
    assert control.findtext("DOCNUM") == "0000000000004711"
    assert (control.findtext("IDOCTYP"), control.findtext("MESTYP")) == ("ORDERS05", "ORDERS")
    assert (control.findtext("SNDPRN"), control.findtext("RCVPRN")) == ("MAINTPRO01", "S4HCLNT100")
    assert (control.findtext("CREDAT"), control.findtext("CRETIM")) == ("20260302", "093005")
    assert root.findtext("IDOC/E1EDK01/BELNR") == "PO-000042"
    assert root.findtext("IDOC/E1EDK03/DATUM") == "20260302"
    partners = {p.findtext("PARVW"): p.findtext("PARTN") for p in root.iterfind("IDOC/E1EDKA1")}
    assert partners == {"AG": "C-100234", "LF": "17300001"}
    first, second = root.iterfind("IDOC/E1EDP01")
    assert (first.findtext("POSEX"), first.findtext("MENGE"), first.findtext("NETWR")) == (
        "000010",
        "5",
        "62.50",
    )
    # Markup in a description is escaped, not interpreted.
    assert first.findtext("E1EDP19/KTEXT") == "Bearing 6205 & seal <2RS>"
    assert second.findtext("NETWR") == "7.81"  # 2.5 x 3.125 = 7.8125, rounded half up
    assert second.findtext("E1EDP20/EDATU") == "20260320"


@pytest.mark.parametrize("docnum", [0, 10**16])
def test_idoc_numbers_must_fit_sixteen_digits(docnum: int) -> None:
    with pytest.raises(ValueError, match="16 digits"):
        orders05_xml(ORDER, control=CONTROL, docnum=docnum, created=dt.datetime.now(dt.UTC))
