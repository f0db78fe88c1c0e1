"""JSON Schemas of agreement and network files for editors; `python -m app.policy.schema_export` rewrites them."""

import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from app.policy.documents import AgreementDocument, NetworkDocument

POLICIES = Path(__file__).resolve().parents[2] / "policies"
SCHEMA_PATH = POLICIES / "agreement.schema.json"
NETWORK_SCHEMA_PATH = POLICIES / "network.schema.json"


def _schema(model: type[BaseModel], name: str) -> dict[str, Any]:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://casebridge.example/schemas/{name}",
        **model.model_json_schema(),
    }


def _text(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def agreement_json_schema() -> dict[str, Any]:
    return _schema(AgreementDocument, SCHEMA_PATH.name)


def agreement_json_schema_text() -> str:
    return _text(agreement_json_schema())


def network_json_schema() -> dict[str, Any]:
    """The schema of a network file, `policies/networks/<id>.yaml`."""
    return _schema(NetworkDocument, NETWORK_SCHEMA_PATH.name)


def network_json_schema_text() -> str:
    return _text(network_json_schema())


def main(argv: list[str] | None = None) -> int:
    """Write both schemas into a folder (default: policies/)."""
    args = sys.argv[1:] if argv is None else argv
    folder = Path(args[0]) if args else POLICIES
    for name, text in (
        (SCHEMA_PATH.name, agreement_json_schema_text()),
        (NETWORK_SCHEMA_PATH.name, network_json_schema_text()),
    ):
        target = folder / name
        target.write_text(text, encoding="utf-8")
        print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
