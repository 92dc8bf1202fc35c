"""The published JSON Schemas in docs/schema/ match the pydantic models in steerlang/plan.py."""

from __future__ import annotations

import json
from pathlib import Path

from steerlang.lang.schema import SCHEMA_FILES, export, schema_texts

DOCS = Path(__file__).resolve().parents[2] / "docs" / "schema"


def test_committed_schemas_are_up_to_date() -> None:
    for filename, text in schema_texts().items():
        path = DOCS / filename
        assert path.exists(), f"run `python -m steerlang.lang.schema` to create {path}"
        assert path.read_text(encoding="utf-8") == text, (
            f"{path} is out of date: run `python -m steerlang.lang.schema`"
        )


def test_schemas_describe_the_models(tmp_path: Path) -> None:
    written = export(tmp_path)
    assert sorted(p.name for p in written) == sorted(SCHEMA_FILES)
    ir = json.loads((tmp_path / "recipe_ir.schema.json").read_text())
    assert ir["title"] == "RecipeIR"
    assert {"rules", "params", "concepts", "settings", "saes", "source_hash"} <= set(
        ir["properties"]
    )
    plan = json.loads((tmp_path / "intervention_plan.schema.json").read_text())
    assert plan["title"] == "InterventionPlan" and "sites" in plan["properties"]
