"""The $metadata document (CSDL XML, OData 4.0) and the service document, from the entity sets.

Flat entity types only: one EntityType per set with its key and primitive properties, and one
EntityContainer listing the sets. Descriptions travel as Core.Description annotations.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final
from xml.sax.saxutils import escape, quoteattr

from maintainpro.analytics.odata.model import CONTAINER, NAMESPACE, EntitySet, Property

EDMX_NS: Final = "http://docs.oasis-open.org/odata/ns/edmx"
EDM_NS: Final = "http://docs.oasis-open.org/odata/ns/edm"
CORE_VOCABULARY: Final = (
    "https://oasis-tcs.github.io/odata-vocabularies/vocabularies/Org.OData.Core.V1.xml"
)
# Timestamps carry microseconds.
TIMESTAMP_PRECISION: Final = 6


def _description(text: str, indent: str) -> list[str]:
    if not text:
        return []
    return [f'{indent}<Annotation Term="Core.Description" String={quoteattr(text)}/>']


def _property(prop: Property) -> list[str]:
    attributes = [f"Name={quoteattr(prop.name)}", f'Type="{prop.edm_type}"']
    if prop.key:
        attributes.append('Nullable="false"')
    if prop.kind == "decimal":
        attributes.append(f'Precision="{prop.type.precision}" Scale="{prop.type.scale}"')
    if prop.kind == "datetime":
        attributes.append(f'Precision="{TIMESTAMP_PRECISION}"')
    head = f"        <Property {' '.join(attributes)}"
    described = _description(prop.description, "          ")
    if not described:
        return [head + "/>"]
    return [head + ">", *described, "        </Property>"]


def _entity_type(entity_set: EntitySet) -> list[str]:
    lines = [f"      <EntityType Name={quoteattr(entity_set.name)}>", "        <Key>"]
    lines += [f"          <PropertyRef Name={quoteattr(k)}/>" for k in entity_set.key]
    lines.append("        </Key>")
    for prop in entity_set.properties:
        lines += _property(prop)
    lines += _description(entity_set.description, "        ")
    lines.append("      </EntityType>")
    return lines


def metadata_document(entity_sets: Iterable[EntitySet]) -> str:
    """The CSDL XML of these entity sets."""
    published = list(entity_sets)
    lines = [
        '<?xml version="1.0" encoding="utf-8"?>',
        f'<edmx:Edmx xmlns:edmx="{EDMX_NS}" Version="4.0">',
        f'  <edmx:Reference Uri="{escape(CORE_VOCABULARY)}">',
        '    <edmx:Include Namespace="Org.OData.Core.V1" Alias="Core"/>',
        "  </edmx:Reference>",
        "  <edmx:DataServices>",
        f'    <Schema xmlns="{EDM_NS}" Namespace="{NAMESPACE}">',
    ]
    for entity_set in published:
        lines += _entity_type(entity_set)
    # An entity container must hold something: a caller who may read nothing gets none.
    if published:
        lines.append(f'      <EntityContainer Name="{CONTAINER}">')
        for entity_set in published:
            name = quoteattr(entity_set.name)
            kind = quoteattr(f"{NAMESPACE}.{entity_set.name}")
            lines.append(f"        <EntitySet Name={name} EntityType={kind}/>")
        lines.append("      </EntityContainer>")
    lines += [
        "    </Schema>",
        "  </edmx:DataServices>",
        "</edmx:Edmx>",
        "",
    ]
    return "\n".join(lines)


def service_document(service_root: str, entity_sets: Iterable[EntitySet]) -> dict[str, Any]:
    """The JSON service document: every entity set the caller may read."""
    return {
        "@odata.context": f"{service_root}$metadata",
        "value": [
            {"name": s.name, "kind": "EntitySet", "url": s.name, "title": s.description}
            for s in entity_sets
        ],
    }
