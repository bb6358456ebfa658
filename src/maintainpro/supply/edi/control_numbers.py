"""Persistent control numbers per trading partner and envelope level (ISA13, GS06, ST02)."""

from __future__ import annotations

from sqlalchemy import insert, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from maintainpro.supply.edi.envelope import EnvelopeLevel
from maintainpro.supply.edi.partners import EdiControlNumber

MAX_CONTROL_NUMBER = 999_999_999
# Two writers creating a partner's first row at the same moment: the loser retries the update.
_INSERT_ATTEMPTS = 3


def _increment(session: Session, partner_id: int, level: str) -> int | None:
    # One UPDATE ... RETURNING is the row lock and the increment: a concurrent transaction
    # waits for ours to end and then increments the committed value (PostgreSQL re-reads the
    # row after the lock; SQLite has a single writer). Past the maximum X12 allows, wrap to 1.
    row = EdiControlNumber
    statement = (
        update(row)
        .where(row.partner_id == partner_id, row.level == level)
        .values(last_value=(row.last_value % MAX_CONTROL_NUMBER) + 1)
        .returning(row.last_value)
        .execution_options(synchronize_session=False)
    )
    value = session.execute(statement).scalar_one_or_none()
    return None if value is None else int(value)


def next_control_number(session: Session, partner_id: int, level: EnvelopeLevel | str) -> int:
    """Take the next control number for a partner and level; unique until the number wraps.

    The number belongs to the caller's transaction: if it rolls back, the number is taken again
    by the next caller, which is what a resend of the same content wants.
    """
    key = EnvelopeLevel(level).value
    for _ in range(_INSERT_ATTEMPTS):
        value = _increment(session, partner_id, key)
        if value is not None:
            return value
        try:
            with session.begin_nested():
                session.execute(
                    insert(EdiControlNumber).values(partner_id=partner_id, level=key, last_value=1)
                )
        except IntegrityError:
            continue  # another transaction created the row first: increment it instead
        return 1
    raise RuntimeError(f"could not allocate a {key} control number for partner {partner_id}")


class PartnerControlNumbers:
    """The envelope builder's ControlNumbers, backed by a partner's edi_control_numbers rows."""

    def __init__(self, session: Session, partner_id: int) -> None:
        """Allocate in `session` (its transaction holds the row locks until it ends)."""
        self.session = session
        self.partner_id = partner_id
        self.taken: list[tuple[EnvelopeLevel, int]] = []

    def __call__(self, level: EnvelopeLevel, /) -> int:
        """Return the partner's next number for `level`."""
        number = next_control_number(self.session, self.partner_id, level)
        self.taken.append((level, number))
        return number
