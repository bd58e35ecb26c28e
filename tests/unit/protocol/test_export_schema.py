"""The account export's JSON Schema file agrees with the document the server writes."""

from __future__ import annotations

import json
from pathlib import Path

from protocol.export import AccountExportDocument, export_schema, schema_text

SCHEMA = Path(__file__).parents[3] / "docs" / "schemas" / "account-export.schema.json"


def test_the_schema_file_is_generated_from_protocol_export() -> None:
    """The schema file is exactly what ``python -m protocol.export`` prints."""
    assert SCHEMA.read_text() == schema_text()


def test_the_schema_names_every_section_and_forbids_unknown_fields() -> None:
    """Every section is required; rows and the document reject fields the schema does not name."""
    schema = export_schema()
    export = schema["$defs"]["AccountExport"]
    assert set(export["required"]) == set(export["properties"])
    assert set(schema["$defs"]["AccountExportDocument"]["required"]) == set(
        AccountExportDocument.__struct_fields__
    )
    assert all(
        definition.get("additionalProperties") is False
        for name, definition in schema["$defs"].items()
        if name.startswith(("Export", "Account"))
    )
    assert json.loads(SCHEMA.read_text())["$ref"] == "#/$defs/AccountExportDocument"
