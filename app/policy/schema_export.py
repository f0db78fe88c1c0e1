"""JSON Schema of agreement files for editors; `python -m app.policy.schema_export` rewrites it."""

import json
import sys
from pathlib import Path
from typing import Any

from app.policy.documents import AgreementDocument

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "policies" / "agreement.schema.json"


def agreement_json_schema() -> dict[str, Any]:
    schema = AgreementDocument.model_json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://casebridge.example/schemas/agreement.schema.json",
        **schema,
    }


def agreement_json_schema_text() -> str:
    return json.dumps(agreement_json_schema(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    target = Path(args[0]) if args else SCHEMA_PATH
    target.write_text(agreement_json_schema_text(), encoding="utf-8")
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
