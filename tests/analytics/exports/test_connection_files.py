"""The BI tools' connection files: a .pbids in Power BI's published shape, a well-formed .tds
with an OData connection per table, a Qlik load script through the REST connector; all pointing
at the feed under the public URL and listing the tables asked for."""

from __future__ import annotations

import json

import defusedxml.ElementTree as SafeET

from maintainpro.analytics.exports.connection_files import (
    QLIK_CONNECTION,
    Tool,
    connection_file,
    parse_tool,
    pbids,
    qlik_script,
    tds,
)
from maintainpro.analytics.odata.model import entity_sets

PUBLIC = "https://cmms.example.com:8443/"
FEED = "https://cmms.example.com:8443/odata/"
SETS = entity_sets()
CHOSEN = [SETS["fact_work_order"], SETS["dim_asset"], SETS["rollup_sensor_day"]]


def test_pbids_follows_power_bis_shape_and_points_at_the_feed() -> None:
    document = json.loads(pbids(PUBLIC))
    assert document == {
        "version": "0.1",
        "connections": [
            {"details": {"protocol": "odata", "address": {"url": FEED}}, "mode": "Import"}
        ],
    }
    one = json.loads(pbids(PUBLIC, SETS["fact_alert"]))
    assert one["connections"][0]["details"]["address"]["url"] == FEED + "fact_alert"


def test_tds_is_well_formed_with_an_odata_connection_per_table() -> None:
    root = SafeET.fromstring(tds(PUBLIC, CHOSEN))
    assert root.tag == "datasource"
    federated = root.find("connection")
    assert federated is not None
    assert federated.get("class") == "federated"
    connections = federated.findall("named-connections/named-connection/connection")
    assert [c.get("class") for c in connections] == ["odata"] * 3
    assert [c.get("server") for c in connections] == [FEED + s.name for s in CHOSEN]
    relations = federated.findall("relation[@type='collection']/relation")
    assert [r.get("name") for r in relations] == [s.name for s in CHOSEN]
    named = {n.get("name") for n in federated.findall("named-connections/named-connection")}
    assert {r.get("connection") for r in relations} == named
    assert all(r.get("type") == "table" for r in relations)


def test_the_qlik_script_loads_every_table_page_by_page() -> None:
    script = qlik_script(PUBLIC, CHOSEN)
    assert f"LIB CONNECT TO '{QLIK_CONNECTION}';" in script
    for entity_set in CHOSEN:
        assert f"LET vNext = '{FEED}{entity_set.name}';" in script
        assert f"[{entity_set.name}]:" in script
        for prop in entity_set.properties:
            assert f'"{prop.name}"' in script
    assert script.count("DO WHILE Len('$(vNext)') > 0") == 3
    assert script.count("LOOP") == 3
    assert 'WITH CONNECTION (URL "$(vNext)")' in script
    assert "[@odata.nextLink]" in script
    # Times come as ISO text and become Qlik timestamps; dates become dates.
    assert "Timestamp(Timestamp#(Left([created_at], 19)" in script
    assert "Date(Date#([day], 'YYYY-MM-DD')) AS [day]" in script
    assert "mpt_" not in script  # no credential in the file


def test_a_quote_in_the_public_url_cannot_end_a_qlik_string() -> None:
    script = qlik_script("https://o'brien.example.com", [SETS["dim_site"]])
    assert "LET vNext = 'https://o''brien.example.com/odata/dim_site';" in script


def test_tools_by_name_or_extension() -> None:
    assert parse_tool("PowerBI") is Tool.POWER_BI
    assert parse_tool("pbids") is Tool.POWER_BI
    assert parse_tool("tds") is Tool.TABLEAU
    assert parse_tool("qvs") is Tool.QLIK
    assert parse_tool("excel") is None
    made = connection_file(Tool.QLIK, PUBLIC, CHOSEN)
    assert made.filename == "maintainpro.qvs"
    assert made.media_type.startswith("text/plain")
    single = connection_file(Tool.POWER_BI, PUBLIC, CHOSEN[:1], one_table=True)
    assert json.loads(single.text)["connections"][0]["details"]["address"]["url"].endswith(
        "/odata/fact_work_order"
    )
    everything = connection_file(Tool.POWER_BI, PUBLIC, CHOSEN[:1])
    assert json.loads(everything.text)["connections"][0]["details"]["address"]["url"] == FEED
