"""What a run report is made from, handed over by the pipeline as plain data.

The report package never imports the pipeline: the pipeline fills a RunRecord at the end of a
run (the recipe, the selection, what was bound, the cache keys, the steerability results, the
statistics table each rule read) and every report file is rendered from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from steerlang.plan import RecipeIR


@dataclass
class RunRecord:
    ir: RecipeIR
    # The selection: `.plan` (InterventionPlan), `.per_rule` (each rule's outcome per site),
    # `.warnings` and `.explain_json()`.
    selection: Any
    model_ref: str
    model_hash: str
    device: str
    sae_refs: dict[str, str]  # "layer:site" -> the reference the SAE was loaded from
    sae_hashes: dict[str, str]  # "layer:site" -> the SAE's content hash
    dataset: dict[str, Any] | None  # the profile's dataset entry (DatasetSpec.to_dict())
    data_root: str | None  # the folder the dataset was read from
    attack_style: str  # `attack_style` with "auto" resolved
    stats_keys: dict[str, str]  # "layer:site:tokens" -> statistics cache key
    stats_cached: list[str]
    stats_computed: list[str]
    # "layer:site" -> SteerabilityResult (`.summary()`, `.steerability`, `.units`, `.kind`,
    # `.threshold`, `.key`)
    steerability: dict[str, Any]
    # (rule, layer, site) -> the statistics table the rule read there, for the histograms
    rule_tables: dict[tuple[str, int, str], Any]
    profile: dict[str, Any] | None
    timings: dict[str, float] = field(default_factory=dict)
    # One steerlang.report.cards.FeatureCard per edited feature shown (strongest first per
    # rule and site, at most `gallery_cards` each), with its strongest statistics images.
    feature_cards: list[Any] = field(default_factory=list)
    # predictions.csv as columns (steerlang/pipeline/per_image.py), None without a task
    predictions: dict[str, list[Any]] | None = None
    # the example images the report shows: {"fixed_broken": [...], "attack_pairs": [...]}
    examples: dict[str, Any] | None = None
