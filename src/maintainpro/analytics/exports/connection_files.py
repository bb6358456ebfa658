"""Connection files that open the OData feed in a BI tool with the right tables.

- Power BI: a ``.pbids`` data source file (JSON, version 0.1, one OData connection in Import
  mode). A .pbids holds a single connection, so it points at the service root (Power BI's
  navigator then lists every entity set) or, when one table is asked for, at that entity set.
- Tableau: a ``.tds`` data source (XML) with one ``odata`` connection per entity set inside a
  federated connection, and the tables as a collection of relations.
- Qlik Sense: a load-script snippet (``.qvs``) for the Qlik REST connector: ``LIB CONNECT TO``
  a REST connection the user creates once, then per table a loop over the feed's pages that
  follows ``@odata.nextLink``.

No file holds a credential: each tool asks for one (user name and an API token as password,
which the feed accepts as HTTP Basic, or the token as a bearer header).
"""

from __future__ import annotations

import enum
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit
from xml.etree import ElementTree as ET

from maintainpro.analytics.odata.model import EntitySet

FEED_PATH: Final = "/odata/"
PBIDS_VERSION: Final = "0.1"
QLIK_CONNECTION: Final = "MaintAInPro OData"
TDS_VERSION: Final = "18.1"


class Tool(enum.StrEnum):
    """A BI tool a connection file is made for."""

    POWER_BI = "powerbi"
    TABLEAU = "tableau"
    QLIK = "qlik"


@dataclass(frozen=True)
class ConnectionFile:
    """A connection file's text, name and media type."""

    text: str
    filename: str
    media_type: str


# The tools by name and by their files' extensions.
TOOL_NAMES: Final[dict[str, Tool]] = {
    "powerbi": Tool.POWER_BI,
    "pbids": Tool.POWER_BI,
    "tableau": Tool.TABLEAU,
    "tds": Tool.TABLEAU,
    "qlik": Tool.QLIK,
    "qvs": Tool.QLIK,
}


def parse_tool(text: str) -> Tool | None:
    """The tool a name or extension stands for, or None."""
    return TOOL_NAMES.get(text.lower())


def feed_url(public_url: str) -> str:
    """The OData service root under the hub's public URL."""
    return public_url.rstrip("/") + FEED_PATH


def entity_set_url(public_url: str, entity_set: EntitySet) -> str:
    """The URL of one entity set."""
    return feed_url(public_url) + entity_set.name


# --------------------------------------------------------------------------- Power BI


def pbids(public_url: str, entity_set: EntitySet | None = None) -> str:
    """A Power BI data source file on the feed (or on one entity set)."""
    url = feed_url(public_url) if entity_set is None else entity_set_url(public_url, entity_set)
    document = {
        "version": PBIDS_VERSION,
        "connections": [
            {
                "details": {"protocol": "odata", "address": {"url": url}},
                "mode": "Import",
            }
        ],
    }
    return json.dumps(document, indent=2) + "\n"


# --------------------------------------------------------------------------- Tableau


def tds(public_url: str, entity_sets: Sequence[EntitySet]) -> str:
    """A Tableau data source with one OData connection and one table per entity set."""
    host = urlsplit(public_url).hostname or "maintainpro"
    root = ET.Element(
        "datasource",
        {
            "formatted-name": "MaintAInPro warehouse",
            "inline": "true",
            "version": TDS_VERSION,
            "xmlns:user": "http://www.tableausoftware.com/xml/user",
        },
    )
    federated = ET.SubElement(root, "connection", {"class": "federated"})
    named = ET.SubElement(federated, "named-connections")
    collection = ET.SubElement(federated, "relation", {"type": "collection"})
    for entity_set in entity_sets:
        connection_name = f"odata.{entity_set.name}"
        holder = ET.SubElement(
            named, "named-connection", {"caption": host, "name": connection_name}
        )
        ET.SubElement(
            holder,
            "connection",
            {
                "class": "odata",
                "dbname": "",
                "server": entity_set_url(public_url, entity_set),
                "username": "",
            },
        )
        ET.SubElement(
            collection,
            "relation",
            {
                "connection": connection_name,
                "name": entity_set.name,
                "table": f"[{entity_set.name}]",
                "type": "table",
            },
        )
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    return "<?xml version='1.0' encoding='utf-8' ?>\n" + body + "\n"


# --------------------------------------------------------------------------- Qlik


def _qlik_field(entity_set: EntitySet, name: str) -> str:
    prop = entity_set.prop(name)
    kind = prop.kind if prop is not None else "string"
    if kind == "datetime":
        # Edm.DateTimeOffset arrives as ISO 8601 text in UTC.
        return f"Timestamp(Timestamp#(Left([{name}], 19), 'YYYY-MM-DDThh:mm:ss')) AS [{name}]"
    if kind == "date":
        return f"Date(Date#([{name}], 'YYYY-MM-DD')) AS [{name}]"
    return f"[{name}]"


def _qlik_table(public_url: str, entity_set: EntitySet) -> str:
    names = [p.name for p in entity_set.properties]
    select = ",\n".join(f'            "{n}"' for n in names)
    load = ",\n".join(f"        {_qlik_field(entity_set, n)}" for n in names)
    url = entity_set_url(public_url, entity_set).replace("'", "''")
    about = " ".join(entity_set.description.split())
    # A Qlik load script, not SQL run here: names come from the model, the URL from settings.
    return f"""// {entity_set.name}: {about}
LET vNext = '{url}';
DO WHILE Len('$(vNext)') > 0
    RestConnectorMasterTable:
    SQL SELECT
        "@odata.nextLink",
        "__KEY_root",
        (SELECT
{select},
            "__FK_value"
        FROM "value" FK "__FK_value")
    FROM JSON (wrap on) "root" PK "__KEY_root"
    WITH CONNECTION (URL "$(vNext)");

    [{entity_set.name}]:
    LOAD
{load}
    RESIDENT RestConnectorMasterTable
    WHERE NOT IsNull([__FK_value]);

    NextPage:
    LOAD Only([@odata.nextLink]) AS NextLink RESIDENT RestConnectorMasterTable;
    LET vNext = Peek('NextLink', 0, 'NextPage');
    DROP TABLES NextPage, RestConnectorMasterTable;
LOOP
"""  # noqa: S608


def qlik_script(public_url: str, entity_sets: Sequence[EntitySet]) -> str:
    """A Qlik Sense load script reading the entity sets through the REST connector."""
    header = f"""// MaintAInPro warehouse for Qlik Sense, from the OData feed {feed_url(public_url)}
//
// Create a REST data connection named '{QLIK_CONNECTION}' once:
//   URL: {feed_url(public_url)}   Method: GET   Response type: JSON
//   Authentication: Basic, with your user name and an API token as the password
//   Pagination: None (this script follows @odata.nextLink itself)
// Then paste this script into the data load editor.

LIB CONNECT TO '{QLIK_CONNECTION}';

"""
    return header + "\n".join(_qlik_table(public_url, s) for s in entity_sets)


# --------------------------------------------------------------------------- any tool


def connection_file(
    tool: Tool, public_url: str, entity_sets: Sequence[EntitySet], *, one_table: bool = False
) -> ConnectionFile:
    """The connection file of a tool for these entity sets.

    A .pbids holds one connection: the service root, or the entity set when ``one_table`` asks
    for exactly one.
    """
    if tool is Tool.POWER_BI:
        single = entity_sets[0] if one_table and len(entity_sets) == 1 else None
        return ConnectionFile(pbids(public_url, single), "maintainpro.pbids", "application/json")
    if tool is Tool.TABLEAU:
        return ConnectionFile(
            tds(public_url, entity_sets), "maintainpro.tds", "application/xml; charset=utf-8"
        )
    return ConnectionFile(
        qlik_script(public_url, entity_sets), "maintainpro.qvs", "text/plain; charset=utf-8"
    )
