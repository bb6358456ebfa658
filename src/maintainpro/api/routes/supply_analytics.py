"""Supplier performance scorecards and spend analytics."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["supply"])
