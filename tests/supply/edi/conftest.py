"""Shared fixtures for the X12 tests: the real sample files written by other systems."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

SAMPLES = Path(__file__).parents[3].parent / "shared" / "edi-samples"


@pytest.fixture
def sample() -> Callable[[str], bytes]:
    """Return a loader for a sample file, skipping when the samples folder is absent."""
    if not SAMPLES.is_dir():
        pytest.skip(f"X12 sample folder {SAMPLES} is absent (see shared/edi-samples/SOURCES.md)")

    def load(name: str) -> bytes:
        return (SAMPLES / name).read_bytes()

    return load
