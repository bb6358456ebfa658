"""Dashboard fixtures: the two-site warehouse of the cube tests (built by the real ETL)."""

from __future__ import annotations

from analytics.semantic.conftest import built, settings

__all__ = ["built", "settings"]
