"""Validation of OpenLineage events against the vendored JSON schemas, offline.

The core spec (2-0-2) and the facets the hub emits live in ``lineage_schemas/`` (see its NOTICE).
``check_event`` validates a whole event against the core spec (which must match it as a RunEvent)
and every facet in it against that facet's own schema; references between the files resolve
through a ``referencing`` registry, never the network.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource
from referencing.jsonschema import DRAFT202012

HERE: Final = Path(__file__).parent / "lineage_schemas"
CORE_ID: Final = "https://openlineage.io/spec/2-0-2/OpenLineage.json"
RUN_EVENT_URL: Final = CORE_ID + "#/$defs/RunEvent"
# Any core version; older facet files also write ".../OpenLineage.json/$defs/X" (no "#").
_CORE_URI: Final = re.compile(
    r"^https://openlineage\.io/spec/\d+-\d+-\d+/OpenLineage\.json(?:/\$defs/(\w+))?$"
)
_FACET_FILE: Final = re.compile(r"/(\w+Facet)\.json#/\$defs/(\w+)$")


class SpecViolation(AssertionError):
    """An event does not follow the OpenLineage spec."""


def _load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document


@functools.cache
def _core() -> dict[str, Any]:
    return _load(HERE / "OpenLineage.json")


@functools.cache
def facet_schemas() -> dict[str, dict[str, Any]]:
    """The vendored facet schemas by facet name (``SchemaDatasetFacet``)."""
    return {path.stem: _load(path) for path in sorted((HERE / "facets").glob("*.json"))}


def _retrieve(uri: str) -> Resource[Any]:
    # Older facet files name older core versions: their facet base definitions are the ones
    # 2-0-2 has (2-0-2 adds only an optional _deleted flag), so they resolve to the 2-0-2 file.
    match = _CORE_URI.match(uri)
    if match is None:
        raise NoSuchResource(ref=uri)
    core = _core()
    if match.group(1) is None:
        return DRAFT202012.create_resource(core)
    return DRAFT202012.create_resource(
        {"$defs": core["$defs"], "$ref": f"#/$defs/{match.group(1)}"}
    )


@functools.cache
def registry() -> Registry[Any]:
    """Every vendored schema under its own $id; other core versions through ``_retrieve``."""
    resources = [(CORE_ID, DRAFT202012.create_resource(_core()))]
    resources += [(s["$id"], DRAFT202012.create_resource(s)) for s in facet_schemas().values()]
    return Registry(retrieve=_retrieve).with_resources(resources)


def _validator(ref: str) -> Draft202012Validator:
    return Draft202012Validator({"$ref": ref}, registry=registry(), format_checker=FormatChecker())


def _facets(event: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(where, key, facet) of every facet in an event."""
    yield from (("run", k, f) for k, f in event["run"].get("facets", {}).items())
    yield from (("job", k, f) for k, f in event["job"].get("facets", {}).items())
    for side in ("inputs", "outputs"):
        for i, dataset in enumerate(event.get(side, [])):
            for group in ("facets", "inputFacets", "outputFacets"):
                for key, facet in dataset.get(group, {}).items():
                    yield f"{side}[{i}].{group}", key, facet


def problems(event: dict[str, Any]) -> list[str]:
    """What is wrong with an event (empty: it follows the spec and every facet's schema)."""
    found: list[str] = []
    if event.get("schemaURL") != RUN_EVENT_URL:
        found.append(f"schemaURL is {event.get('schemaURL')!r}, not the 2-0-2 RunEvent")
    found += [f"core: {_short(e)}" for e in _errors(RUN_EVENT_URL, event)]
    # The document's root is oneOf RunEvent, DatasetEvent, JobEvent: exactly one must match.
    if not found and _errors(CORE_ID, event):
        found.append("core: the event matches more than one of the spec's event kinds")
    for where, key, facet in _facets(event):
        match = _FACET_FILE.search(str(facet.get("_schemaURL", "")))
        if match is None or match.group(1) not in facet_schemas():
            found.append(f"{where}.{key}: no vendored schema for {facet.get('_schemaURL')!r}")
            continue
        name, definition = match.groups()
        ref = f"{facet_schemas()[name]['$id']}#/$defs/{definition}"
        found += [f"{where}.{key}: {_short(e)}" for e in _errors(ref, facet)]
    return found


def _short(error: ValidationError) -> str:
    where = "/".join(str(p) for p in error.absolute_path)
    return f"{error.message[:200]} (at /{where})"


def _errors(ref: str, instance: Any) -> list[ValidationError]:
    return list(_validator(ref).iter_errors(instance))


def check_event(event: dict[str, Any]) -> None:
    """Raise SpecViolation listing every problem of an event."""
    found = problems(event)
    if found:
        raise SpecViolation("; ".join(found))


def events_in(path: Path) -> list[dict[str, Any]]:
    """The events of a JSON-lines lineage file."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
