"""Fixtures for the ERP connector tests: each local ERP server on a free port."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from supply.erp import fake_bc, fake_fo, fake_oracle, fake_sap
from supply.erp.fakes import serve


@pytest.fixture
def sap_server() -> Iterator[tuple[fake_sap.SapState, str]]:
    """The fake S/4HANA and its base URL."""
    state = fake_sap.SapState()
    with serve(fake_sap.build_app(state)) as url:
        try:
            yield state, url
        finally:
            state.knobs.release.set()


@pytest.fixture
def oracle_server() -> Iterator[tuple[fake_oracle.OracleState, str]]:
    """The fake Oracle Fusion pod and its base URL."""
    state = fake_oracle.OracleState()
    with serve(fake_oracle.build_app(state)) as url:
        yield state, url


@pytest.fixture
def fo_server() -> Iterator[tuple[fake_fo.FoState, str]]:
    """The fake Dynamics 365 Finance & Operations environment and its base URL."""
    state = fake_fo.FoState()
    with serve(fake_fo.build_app(state)) as url:
        yield state, url


@pytest.fixture
def bc_server() -> Iterator[tuple[fake_bc.BcState, str]]:
    """The fake Business Central and its base URL."""
    state = fake_bc.BcState()
    with serve(fake_bc.build_app(state)) as url:
        yield state, url
