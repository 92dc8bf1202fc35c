"""Export the JSON Schemas of the two plan levels to `docs/schema/`.

    python -m steerlang.lang.schema [OUTDIR]

The schemas are generated from the pydantic models in `steerlang/plan.py`, so they can never
drift from the code; a test fails when the committed files are out of date.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

from steerlang.files import file_mode

SCHEMA_FILES = {
    "recipe_ir.schema.json": "RecipeIR",
    "intervention_plan.schema.json": "InterventionPlan",
}


def schema_texts() -> dict[str, str]:
    from steerlang import plan

    out = {}
    for filename, model in SCHEMA_FILES.items():
        schema = getattr(plan, model).model_json_schema()
        schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
        out[filename] = json.dumps(schema, indent=2, sort_keys=False) + "\n"
    return out


def export(outdir: str | os.PathLike) -> list[Path]:
    folder = Path(outdir)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for filename, text in schema_texts().items():
        target = folder / filename
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{filename}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, file_mode())
        os.replace(tmp, target)
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    outdir = args[0] if args else str(Path(__file__).resolve().parents[2] / "docs" / "schema")
    for path in export(outdir):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
