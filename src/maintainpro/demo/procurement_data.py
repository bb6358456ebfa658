"""The procurement demo's data: suppliers, catalogue, contract prices, past orders, today's work.

Pure tables (no database); ``maintainpro.demo.procurement`` seeds them. Days are counted back
from the day of seeding so the demo always looks current.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from maintainpro.core.work_orders import Priority, WorkOrderType
from maintainpro.supply.suppliers import ConnectionType, SupplierStatus


@dataclass(frozen=True)
class SupplierSeed:
    """One demo supplier."""

    code: str
    legal_name: str
    country: str
    currency: str
    connection: ConnectionType
    status: SupplierStatus
    preferred: bool
    payment_terms: str
    incoterms: str
    capabilities: tuple[str, ...]
    contact: tuple[str, str, str]


CT = ConnectionType
SS = SupplierStatus
SUPPLIERS: Final = (
    SupplierSeed(
        "NORDLAGER",
        "Nordlager Industriebedarf GmbH",
        "DE",
        "EUR",
        CT.EDI,
        SS.ACTIVE,
        True,
        "NET30",
        "DAP",
        ("catalog", "pricing", "inventory", "ordering", "tracking"),
        ("Jana Albers", "orders@nordlager.example", "+49 40 555 0101"),
    ),
    SupplierSeed(
        "RHEINTECH",
        "Rheintechniek B.V.",
        "NL",
        "EUR",
        CT.EMAIL,
        SS.ACTIVE,
        False,
        "NET30",
        "DAP",
        ("catalog", "pricing", "ordering"),
        ("Pieter de Vries", "verkoop@rheintechniek.example", "+31 20 555 0182"),
    ),
    SupplierSeed(
        "KSK",
        "Kompressoren-Service Kuhn GmbH",
        "DE",
        "EUR",
        CT.PORTAL,
        SS.ACTIVE,
        False,
        "NET45",
        "FCA",
        ("catalog", "pricing", "ordering", "tracking"),
        ("Markus Kuhn", "service@ksk-kompressoren.example", "+49 711 555 0144"),
    ),
    SupplierSeed(
        "GBS",
        "Global Bearing Supply Inc.",
        "US",
        "USD",
        CT.API,
        SS.ACTIVE,
        False,
        "NET60",
        "CIF",
        ("catalog", "pricing", "inventory", "ordering", "tracking"),
        ("Dana Whitfield", "eu-orders@globalbearing.example", "+1 312 555 0199"),
    ),
    SupplierSeed(
        "MWI",
        "MidWest Industrial Supply LLC",
        "US",
        "USD",
        CT.EMAIL,
        SS.BLOCKED,
        False,
        "NET30",
        "EXW",
        ("catalog", "ordering"),
        ("Rick Olsen", "sales@mwi-supply.example", "+1 614 555 0123"),
    ),
    SupplierSeed(
        "KLEBSUED",
        "Klebstoffwerk Süd AG",
        "DE",
        "EUR",
        CT.PORTAL,
        SS.PENDING,
        False,
        "NET30",
        "DAP",
        ("catalog", "pricing", "ordering"),
        ("Eva Brandl", "vertrieb@klebstoffwerk-sued.example", "+49 89 555 0177"),
    ),
)


# Spares the buyers look after beyond the plant's core list: (number, name, category, unit cost in
# EUR, on hand, reorder point, maximum), all kept in the main storeroom.
MORE_PARTS: Final = (
    ("KIT-FV12", "Filler valve seal kit (12 valves)", "seals", "61.00", 10, 12, 36),
    ("OIL-GB220", "Gear oil ISO VG 220, 20 l", "lubricants", "118.00", 1, 1, 4),
    ("PRX-M18", "Inductive proximity sensor M18", "instruments", "36.00", 1, 2, 8),
    ("CYL-5010", "Pneumatic cylinder 50 x 100 mm", "pneumatics", "182.00", 0, 1, 3),
    ("FUS-10A", "Fuse link gG 10 A 10x38", "electrical", "1.40", 8, 10, 40),
)
STOREROOM: Final = "ST"


@dataclass(frozen=True)
class ItemSeed:
    """One catalogue item: whose, for which part, pack, lead time, price breaks and age."""

    supplier: str
    part: str
    number: str
    pack: str
    lead_days: int
    landed_pct: str
    breaks: str  # "min@price min@price ..."
    # When the price was loaded (days before today) and, when set, when it stopped being valid.
    loaded_days_ago: int
    expired_days_ago: int | None = None


CATALOG: Final = (
    ItemSeed("NORDLAGER", "BRG-6205", "NL-6205-2RS", "10", 3, "2", "10@7.90 50@7.20", 40),
    ItemSeed("NORDLAGER", "BRG-6308", "NL-6308-2Z", "2", 3, "2", "2@20.50 10@18.90", 75),
    ItemSeed("NORDLAGER", "SEAL-M37", "NL-MS35-EPDM", "1", 7, "2", "1@139.00 5@131.00", 40),
    ItemSeed("NORDLAGER", "BELT-XPA", "NL-XPA1250", "5", 4, "2", "5@16.40 25@14.90", 120),
    ItemSeed("NORDLAGER", "GRS-EP2", "NL-EP2-400", "12", 3, "2", "12@9.10 48@8.40", 120),
    ItemSeed("NORDLAGER", "KIT-FV12", "NL-FV12-KIT", "6", 7, "2", "6@58.00 24@54.50", 40),
    ItemSeed("NORDLAGER", "OIL-GB220", "NL-CLP220-20", "1", 4, "2", "1@112.00", 40),
    ItemSeed("NORDLAGER", "CHN-08B", "NL-08B1-5M", "1", 5, "2", "1@51.00 5@47.50", 75),
    ItemSeed("RHEINTECH", "SNS-PT100", "RT-PT100-A", "1", 6, "0", "1@84.00 10@79.00", 150),
    ItemSeed("RHEINTECH", "CNT-3RT", "RT-3RT2026-1BB40", "1", 4, "0", "1@71.50 5@66.00", 150),
    ItemSeed("RHEINTECH", "PRX-M18", "RT-IME18-08", "1", 3, "0", "1@36.50 10@33.90", 150),
    ItemSeed("RHEINTECH", "CYL-5010", "RT-DSBC-50-100", "1", 5, "0", "1@179.00", 150),
    ItemSeed("RHEINTECH", "FUS-10A", "RT-GG10-10X38", "10", 2, "0", "10@1.35 100@1.10", 150),
    ItemSeed("RHEINTECH", "BRG-6205", "RT-6205", "1", 2, "0", "1@8.60", 150),
    ItemSeed("RHEINTECH", "BELT-XPA", "RT-XPA-1250", "1", 2, "0", "1@17.90", 200, 12),
    ItemSeed("KSK", "FLT-AIR37", "KSK-1613740700", "1", 5, "0", "1@61.00", 95),
    ItemSeed("KSK", "FLT-OIL37", "KSK-1613610500", "1", 5, "0", "1@37.20", 95),
    ItemSeed("KSK", "OIL-RS8K", "KSK-RIF-20L", "1", 7, "0", "1@305.00", 95),
    ItemSeed("GBS", "BRG-6205", "GBS-6205-2RSH", "50", 21, "12", "50@6.95", 60),
    ItemSeed("GBS", "BRG-6308", "GBS-6308-2ZR", "10", 21, "12", "10@19.40", 60, 3),
    ItemSeed("GBS", "SNS-PT100", "GBS-RTD-PT100-6", "1", 14, "10", "1@82.00 10@76.00", 60),
    ItemSeed("GBS", "PRX-M18", "GBS-PRX18-NO", "1", 12, "12", "1@31.00", 60),
    ItemSeed("GBS", "CNT-3RT", "GBS-3RT2026", "1", 10, "18", "1@69.00", 60),
    ItemSeed("MWI", "CNT-3RT", "MWI-CT-3RT26", "1", 12, "15", "1@64.00", 300),
    ItemSeed("MWI", "GLU-LB", "MWI-HM-25", "1", 12, "15", "1@98.00", 300),
    ItemSeed("KLEBSUED", "GLU-LB", "KS-ETIK-25", "1", 5, "0", "1@112.00", 20),
)
# Price changes the catalogue history shows: (supplier, part, days ago, old, new).
PRICE_CHANGES: Final = (
    ("NORDLAGER", "SEAL-M37", 40, "134.00", "139.00"),
    ("NORDLAGER", "BRG-6205", 40, "7.60", "7.90"),
    ("KSK", "OIL-RS8K", 95, "289.00", "305.00"),
    ("GBS", "SNS-PT100", 7, "79.50", "82.00"),
)
CONTRACT_NUMBER: Final = "CTR-2026-014"
CONTRACT_PRICES: Final = (("FLT-AIR37", "55.80"), ("FLT-OIL37", "33.90"), ("OIL-RS8K", "279.00"))


@dataclass(frozen=True)
class Delivery:
    """A receipt of one order line: days after sending, quantity (None: the rest), rejected."""

    line: int
    after_days: int
    quantity: str | None = None
    rejected: str = "0"
    reason: str | None = None


@dataclass(frozen=True)
class PastOrder:
    """Requisitions raised some days ago, sourced automatically, and what became of the order.

    ``fate`` is the last state reached: approved, sent, acknowledged, shipped,
    partially_received, received, invoiced, closed or cancelled. Acknowledged orders promise
    each line ``promise_days`` after sending (per line when given).
    """

    days_ago: int
    lines: tuple[tuple[str, str, int | None], ...]  # part, quantity, need by (days after)
    fate: str
    deliveries: tuple[Delivery, ...] = ()
    promise_days: tuple[int, ...] = ()


PAST_ORDERS: Final = (
    PastOrder(
        86,
        (("BRG-6205", "40", None), ("GRS-EP2", "24", None), ("BELT-XPA", "10", None)),
        "closed",
        (Delivery(1, 3), Delivery(2, 3), Delivery(3, 3)),
        (4, 4, 4),
    ),
    PastOrder(
        80,
        (("FLT-AIR37", "4", 10), ("FLT-OIL37", "4", 10), ("OIL-RS8K", "2", 10)),
        "closed",
        (Delivery(1, 9), Delivery(2, 9), Delivery(3, 9)),
        (5, 5, 7),
    ),
    PastOrder(71, (("SNS-PT100", "4", None),), "closed", (Delivery(1, 13),), (14,)),
    PastOrder(70, (("CNT-3RT", "3", 12),), "invoiced", (Delivery(1, 8),), (4,)),
    PastOrder(
        55,
        (("SEAL-M37", "3", 10), ("CHN-08B", "4", 10)),
        "received",
        (Delivery(1, 6), Delivery(2, 12)),
        (7, 5),
    ),
    PastOrder(
        41,
        (("BRG-6308", "10", None), ("BELT-XPA", "10", None)),
        "invoiced",
        (
            Delivery(1, 3, "8", "2", "two bearings with damaged shields"),
            Delivery(1, 10, "2"),
            Delivery(2, 3),
        ),
        (3, 4),
    ),
    PastOrder(
        30,
        (("FLT-OIL37", "4", None), ("OIL-RS8K", "2", None)),
        "received",
        (Delivery(1, 5), Delivery(2, 6)),
        (5, 7),
    ),
    PastOrder(21, (("SNS-PT100", "5", None),), "received", (Delivery(1, 17),), (14,)),
    PastOrder(
        9,
        (("GRS-EP2", "24", None), ("CHN-08B", "2", None)),
        "partially_received",
        (Delivery(1, 3),),
        (3, 14),
    ),
    PastOrder(5, (("BRG-6308", "4", None), ("BELT-XPA", "10", None)), "shipped", (), (3, 4)),
    PastOrder(3, (("SNS-PT100", "2", 9),), "sent"),
    PastOrder(2, (("BRG-6205", "100", None),), "cancelled"),
)


@dataclass(frozen=True)
class WorkSeed:
    """A work order opened today whose parts are partly short."""

    asset: str
    title: str
    type: WorkOrderType
    priority: Priority
    due_days: int
    parts: tuple[tuple[str, str], ...]


TODAYS_WORK: Final = (
    WorkSeed(
        "AC-301",
        "Compressor 2,000 h service: filters and fluid",
        WorkOrderType.PREVENTIVE,
        Priority.MEDIUM,
        12,
        (("FLT-AIR37", "2"), ("FLT-OIL37", "2"), ("OIL-RS8K", "2")),
    ),
    WorkSeed(
        "AC-302",
        "Standby compressor service before summer load",
        WorkOrderType.PREVENTIVE,
        Priority.MEDIUM,
        20,
        (("FLT-AIR37", "2"), ("FLT-OIL37", "2"), ("OIL-RS8K", "2")),
    ),
    WorkSeed(
        "F-101",
        "Filler valve overhaul: seals and drive bearings",
        WorkOrderType.PREVENTIVE,
        Priority.HIGH,
        9,
        (("SEAL-M37", "4"), ("BRG-6308", "4"), ("KIT-FV12", "12")),
    ),
    WorkSeed(
        "CV-101",
        "Infeed conveyor chain stretched, replace",
        WorkOrderType.CORRECTIVE,
        Priority.URGENT,
        1,
        (("CHN-08B", "6"),),
    ),
    WorkSeed(
        "CH-301",
        "Chiller supply temperature readings drift",
        WorkOrderType.CORRECTIVE,
        Priority.HIGH,
        16,
        (("SNS-PT100", "4"),),
    ),
    WorkSeed(
        "CV-201",
        "Case conveyor drive belts glazed",
        WorkOrderType.CORRECTIVE,
        Priority.MEDIUM,
        6,
        (("BELT-XPA", "6"),),
    ),
    WorkSeed(
        "M-101",
        "Pump motor bearings noisy, replace both",
        WorkOrderType.CORRECTIVE,
        Priority.HIGH,
        8,
        (("BRG-6205", "8"),),
    ),
    WorkSeed(
        "LB-201",
        "Labeller bottle-present sensors fail intermittently",
        WorkOrderType.CORRECTIVE,
        Priority.HIGH,
        4,
        (("PRX-M18", "3"),),
    ),
    WorkSeed(
        "PL-201",
        "Palletiser gripper cylinder leaking",
        WorkOrderType.CORRECTIVE,
        Priority.MEDIUM,
        7,
        (("CYL-5010", "1"),),
    ),
)
# Stock on hand after the history (what maintenance used since the last deliveries).
STOCK_NOW: Final = {
    "BRG-6205": "6",
    "BRG-6308": "6",
    "SEAL-M37": "3",
    "BELT-XPA": "3",
    "FLT-AIR37": "2",
    "FLT-OIL37": "4",
    "OIL-RS8K": "2",
    "GRS-EP2": "9",
    "CHN-08B": "4",
    "SNS-PT100": "2",
    "CNT-3RT": "0",
    "GLU-LB": "1",
}
