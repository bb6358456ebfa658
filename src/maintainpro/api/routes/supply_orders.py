"""Purchase-order lifecycle: acknowledgements, changes, ship notices, invoices, three-way match."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["supply"])
