"""Hostile input, property based: random edits of interchanges only ever raise X12Error."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from maintainpro.supply.edi.errors import X12Error
from maintainpro.supply.edi.transactions import read_documents
from maintainpro.supply.edi.x12 import parse_interchange

SAMPLES = Path(__file__).parents[3].parent / "shared" / "edi-samples"
BASE = (
    b"ISA*00*          *00*          *ZZ*SENDER         *ZZ*RECEIVER       "
    b"*240102*1230*U*00401*000000042*0*P*>~GS*PO*SENDER*RECEIVER*20240102*1230*7*X*004010~"
    b"ST*850*0001~BEG*00*SA*PO-1**20240102~N1*ST*X~N4*A*B*1~PO1*1*5*EA*2.5**VN*A1~"
    b"PID*F****THING~CTT*1~AMT*TT*12.5~SE*9*0001~GE*1*7~IEA*1*000000042~"
)


def corpus() -> list[bytes]:
    """The built-in interchange plus every sample file that is available."""
    files = sorted(SAMPLES.glob("*.edi")) if SAMPLES.is_dir() else []
    return [BASE, *(path.read_bytes() for path in files)]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A corpus document with a few random deletions, insertions and replacements."""
    data = bytearray(draw(st.sampled_from(corpus())))
    for _ in range(draw(st.integers(1, 6))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        action = draw(st.sampled_from(["delete", "insert", "replace", "cut"]))
        noise = draw(st.binary(min_size=1, max_size=4) | st.sampled_from([b"*", b"~", b">", b"\n"]))
        if action == "delete":
            del data[at : at + len(noise)]
        elif action == "insert":
            data[at:at] = noise
        elif action == "replace":
            data[at : at + len(noise)] = noise
        else:
            del data[at:]
    return bytes(data)


@given(mutated())
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_mutations_raise_only_x12_errors(data: bytes) -> None:
    """Mutations raise only X12 errors."""
    with contextlib.suppress(X12Error):
        result = parse_interchange(data)
        for _ in read_documents(result.interchange):
            pass


@pytest.mark.parametrize("size", [0, 1, 3, 4, 105, 106])
def test_short_prefixes_of_an_isa(size: int) -> None:
    """Short prefixes of an ISA."""
    with pytest.raises(X12Error):
        parse_interchange(BASE[:size])
