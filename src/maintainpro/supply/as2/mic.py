"""Message integrity checks (RFC 4130 §7.3.1): digest names, computing and comparing MICs."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

# micalg names (RFC 5751 §3.4.3.2) mapped to hashlib names; MD5 is deliberately absent.
MIC_ALGORITHMS: dict[str, str] = {
    "sha-1": "sha1",
    "sha-224": "sha224",
    "sha-256": "sha256",
    "sha-384": "sha384",
    "sha-512": "sha512",
}
# What we sign with: SHA-1 is accepted in a partner's MIC request, never used for our signatures.
SIGNING_ALGORITHMS = ("sha-256", "sha-384", "sha-512")
DEFAULT_ALGORITHM = "sha-256"


def normalise_algorithm(name: str) -> str | None:
    """The micalg spelling of a digest name (`SHA256`, `sha-256` -> `sha-256`); None if unknown."""
    compact = name.strip().strip('"').lower().replace("-", "").replace("_", "")
    if not compact.startswith("sha") or not compact[3:].isdigit():
        return None
    spelled = f"sha-{compact[3:]}"
    return spelled if spelled in MIC_ALGORITHMS else None


def choose_algorithm(requested: Iterable[str], fallback: str = DEFAULT_ALGORITHM) -> str:
    """The first requested digest we support, else the fallback."""
    for name in requested:
        algorithm = normalise_algorithm(name)
        if algorithm is not None:
            return algorithm
    return fallback


@dataclass(frozen=True, slots=True)
class Mic:
    """A base64 digest and its micalg name, as carried by Received-Content-MIC."""

    digest: str
    algorithm: str

    def __str__(self) -> str:
        """The Received-Content-MIC field value: `<base64>, <micalg>`."""
        return f"{self.digest}, {self.algorithm}"


def compute_mic(data: bytes, algorithm: str) -> Mic:
    """The MIC of exactly these bytes."""
    name = normalise_algorithm(algorithm)
    if name is None:
        raise ValueError("unsupported MIC algorithm")
    digest = hashlib.new(MIC_ALGORITHMS[name], data).digest()
    return Mic(base64.b64encode(digest).decode("ascii"), name)


def parse_mic(text: str) -> Mic | None:
    """Read a Received-Content-MIC value; None when it is not `<base64>, <known algorithm>`."""
    digest, sep, algorithm = text.partition(",")
    name = normalise_algorithm(algorithm) if sep else None
    if name is None or not digest.strip():
        return None
    return Mic(digest.strip(), name)
