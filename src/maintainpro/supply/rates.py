"""Exchange rates kept in the database (EUR-based, like the ECB's) and a converter over them."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal

from sqlalchemy import Date, Numeric, String, UniqueConstraint, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from maintainpro.core.db import Base, UTCDateTime, utcnow
from maintainpro.supply.fx import (
    DEFAULT_MAX_STALENESS,
    FxConverter,
    Publication,
    RateTable,
)


class ExchangeRate(Base):
    """Units of a currency per 1 EUR on one day, from one source (ECB, bank, manual)."""

    __tablename__ = "exchange_rates"
    __table_args__ = (UniqueConstraint("day", "currency", "source"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, index=True)
    currency: Mapped[str] = mapped_column(String(3))
    per_eur: Mapped[Decimal] = mapped_column(Numeric(24, 10))
    source: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


def stored_rate_table(session: Session) -> RateTable | None:
    """The stored rates as one EUR-based table (one publication per day), or None if empty."""
    by_day: dict[dt.date, dict[str, Decimal]] = defaultdict(dict)
    sources: dict[dt.date, str] = {}
    rows = session.scalars(select(ExchangeRate).order_by(ExchangeRate.day, ExchangeRate.id))
    for row in rows:
        # One publication per day: a later row for the same day and currency wins.
        by_day[row.day][row.currency] = row.per_eur
        sources.setdefault(row.day, row.source)
    if not by_day:
        return None
    return RateTable(
        tuple(Publication(day, rates, sources[day]) for day, rates in sorted(by_day.items()))
    )


def stored_converter(
    session: Session, *, max_staleness: dt.timedelta | None = DEFAULT_MAX_STALENESS
) -> FxConverter:
    """A converter over the stored rates; an empty store still converts a currency to itself."""
    table = stored_rate_table(session)
    if table is None:
        # RateTable refuses to be empty; a same-currency lookup never reaches the table.
        table = RateTable((Publication(dt.date(1999, 1, 4), {}, "none"),))
    return FxConverter(table, (), max_staleness)


def store_rate_table(session: Session, table: RateTable) -> tuple[int, int]:
    """Store every rate of a table (e.g. an ECB file) not stored yet; (added, already there).

    A rate is the same when its day, currency and source match: importing a file twice adds
    nothing, and a file never overwrites a rate from another source.
    """
    existing = {
        (day, currency, source)
        for day, currency, source in session.execute(
            select(ExchangeRate.day, ExchangeRate.currency, ExchangeRate.source)
        )
    }
    added = skipped = 0
    for pub in table.publications:
        for currency, rate in pub.rates.items():
            key = (pub.day, currency, pub.source)
            if key in existing:
                skipped += 1
                continue
            session.add(
                ExchangeRate(day=pub.day, currency=currency, per_eur=rate, source=pub.source)
            )
            existing.add(key)
            added += 1
    session.flush()
    return added, skipped
