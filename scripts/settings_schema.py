"""Write the sidebar's settings schema, labextension/schema/plugin.json, from the run options
(jupyter_medagent/contracts/options.py). tests/lab/test_settings_schema.py fails while it is out of date."""

from __future__ import annotations

import json
from pathlib import Path

from jupyter_medagent.contracts.options import settings_schema

SCHEMA = Path(__file__).resolve().parent.parent / "labextension" / "schema" / "plugin.json"


def schema_text() -> str:
    return json.dumps(settings_schema(), indent=2) + "\n"


if __name__ == "__main__":
    SCHEMA.parent.mkdir(exist_ok=True)
    SCHEMA.write_text(schema_text())
    print(f"wrote {SCHEMA}")
