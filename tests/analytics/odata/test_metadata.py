"""$metadata against the OASIS CSDL XML schemas (vendored in schemas/), and what it declares:
keys, EDM types with decimal precision and scale, one entity set per published table."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import xmlschema

from maintainpro.analytics import schema
from maintainpro.analytics.odata.csdl import EDM_NS, EDMX_NS, metadata_document, service_document
from maintainpro.analytics.odata.model import NAMESPACE, EntitySet, edm_type, entity_sets
from maintainpro.analytics.odata.rollups import ROLLUPS

SCHEMAS = Path(__file__).parent / "schemas"
NS = {"edmx": EDMX_NS, "edm": EDM_NS}


@pytest.fixture(scope="module")
def csdl() -> xmlschema.XMLSchema:
    """The EDMX schema, which imports the EDM schema beside it."""
    return xmlschema.XMLSchema(str(SCHEMAS / "edmx.xsd"))


def test_the_metadata_of_every_set_validates_against_the_oasis_schemas(
    csdl: xmlschema.XMLSchema,
) -> None:
    document = metadata_document(entity_sets().values())
    csdl.validate(document)  # raises with the first violation's location
    assert csdl.is_valid(document)
    assert document.count("<EntitySet ") == len(entity_sets())


def test_the_metadata_of_a_subset_validates_too(csdl: xmlschema.XMLSchema) -> None:
    sets = entity_sets()
    for chosen in ([sets["dim_site"], sets["rollup_sensor_day"]], []):
        document = metadata_document(chosen)
        csdl.validate(document)  # raises with the first violation's location
        assert csdl.is_valid(document)
        assert document.count("<EntitySet ") == len(chosen)


def test_the_schemas_catch_a_broken_document(csdl: xmlschema.XMLSchema) -> None:
    # The check above can fail: a property without a type is refused.
    broken = metadata_document([entity_sets()["dim_site"]]).replace(' Type="Edm.String"', "", 1)
    assert not csdl.is_valid(broken)


def _types(document: str) -> dict[str, ET.Element]:
    root = ET.fromstring(document)  # noqa: S314 - our own document
    return {
        t.attrib["Name"]: t
        for t in root.iterfind("edmx:DataServices/edm:Schema/edm:EntityType", NS)
    }


def test_each_set_declares_its_key_and_column_types() -> None:
    sets = entity_sets()
    types = _types(metadata_document(sets.values()))
    assert set(types) == set(sets)
    for name, entity_set in sets.items():
        element = types[name]
        keys = [r.attrib["Name"] for r in element.iterfind("edm:Key/edm:PropertyRef", NS)]
        assert keys == list(entity_set.key)
        declared = {p.attrib["Name"]: p.attrib for p in element.iterfind("edm:Property", NS)}
        assert list(declared) == [p.name for p in entity_set.properties]
        for prop in entity_set.properties:
            attributes = declared[prop.name]
            assert attributes["Type"] == prop.edm_type
            assert (attributes.get("Nullable") == "false") == prop.key


def test_types_follow_the_warehouse_schema() -> None:
    types = _types(metadata_document(entity_sets().values()))
    po_line = {
        p.attrib["Name"]: p.attrib for p in types["fact_po_line"].iterfind("edm:Property", NS)
    }
    assert po_line["line_total"]["Type"] == "Edm.Decimal"
    assert (po_line["line_total"]["Precision"], po_line["line_total"]["Scale"]) == ("18", "4")
    assert (po_line["unit_price"]["Precision"], po_line["unit_price"]["Scale"]) == ("18", "6")
    assert po_line["po_line_key"]["Type"] == "Edm.Int64"
    assert po_line["line_no"]["Type"] == "Edm.Int32"
    assert po_line["need_by"]["Type"] == "Edm.Date"
    assert po_line["ordered_at"]["Type"] == "Edm.DateTimeOffset"
    alert = {p.attrib["Name"]: p.attrib for p in types["fact_alert"].iterfind("edm:Property", NS)}
    assert alert["minutes_to_clear"]["Type"] == "Edm.Double"
    date = {p.attrib["Name"]: p.attrib for p in types["dim_date"].iterfind("edm:Property", NS)}
    assert date["is_weekend"]["Type"] == "Edm.Boolean"
    assert date["month_name"]["Type"] == "Edm.String"
    for table in (*schema.DIMENSIONS, *schema.FACTS):
        for column in table.columns:
            edm_type(column.type)  # every warehouse column has a flat EDM type


def test_every_dimension_fact_and_rollup_is_published_in_the_container() -> None:
    root = ET.fromstring(metadata_document(entity_sets().values()))  # noqa: S314 - ours
    container = root.find("edmx:DataServices/edm:Schema/edm:EntityContainer", NS)
    assert container is not None
    published = {s.attrib["Name"]: s.attrib["EntityType"] for s in container}
    expected = [t.name for t in (*schema.DIMENSIONS, *schema.FACTS)] + [
        r.table.name for r in ROLLUPS
    ]
    assert sorted(published) == sorted(expected)
    assert all(kind == f"{NAMESPACE}.{name}" for name, kind in published.items())


def test_the_service_document_lists_sets_by_name() -> None:
    sets: list[EntitySet] = list(entity_sets().values())[:2]
    document = service_document("https://bi.example/odata/", sets)
    assert document["@odata.context"] == "https://bi.example/odata/$metadata"
    assert [(e["name"], e["kind"], e["url"]) for e in document["value"]] == [
        (s.name, "EntitySet", s.name) for s in sets
    ]
