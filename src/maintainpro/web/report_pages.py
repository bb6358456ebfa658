"""Pages for scheduled reports: schedules, their runs, failures and a run-now button."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
