"""Hover text for the language's keywords and statistics.

Action, statistic, site, token-scope and setting docs come from the language layer
(`steerlang.lang.known`, re-exported by `steerlang.lang.api`), so `steer explain` and the editor
say the same thing; this module adds what only an editor needs: one line per structural keyword
and the longer definition of each statistic (its table column, range and the data it is
computed on).
"""

from __future__ import annotations

from steerlang.plan import STAT_RANGES

# Structural keywords (actions have their own docs in ACTIONS).
KEYWORD_DOCS: dict[str, str] = {
    "steer": "`steer N`: the language version header every recipe starts with (this steerlang "
    "understands version 1).",
    "recipe": '`recipe NAME "description"`: names the recipe (reports and plans carry the name).',
    "model": "`model REF`: the model to steer: `default` (the embedded zoo CLIP), or a name the "
    "profile (`steer.yaml`) maps to open_clip weights, e.g. "
    '`"openclip:ViT-B-32@datacomp_xl_s13b_b90k"`.',
    "dataset": "`dataset NAME`: the dataset statistics and metrics are computed on; the profile "
    "maps the name to a folder in a known format (waterbirds, celeba, ...).",
    "task": '`task classify COLUMN as ["a", "b"] prompt "a photo of a {}."`: the '
    "zero-shot classification task that is evaluated before and after steering.",
    "classify": "`task classify COLUMN as [...]`: COLUMN holds each image's class index.",
    "as": "`task classify COLUMN as [...]`: the class names, in class-index order.",
    "prompt": '`prompt "..."`: zero-shot prompt templates; `{}` is replaced by the class name.',
    "groups": "`groups COL, ...`: dataset columns whose value combinations define the groups "
    "of per-group and worst-group accuracy.",
    "concept": "`concept NAME = EXPR`: a named binary concept over dataset columns, e.g. "
    "`concept water = place == 1`; statistics such as `corr(NAME)` use it.",
    "param": "`param NAME = VALUE`: a named constant usable in rules; override it at run time "
    "with `--param NAME=VALUE` without editing the recipe.",
    "set": "`set NAME = VALUE`: a recipe setting (splits, pooling, classifier, batch size, "
    "steerability sweep options). In a rule, `set SEL to V` is the same as `clamp SEL to V`.",
    "include": '`include "file.steer"`: inline another recipe file here (paths are relative to '
    "this file); its params, concepts and rules become part of this recipe.",
    "sae": '`sae at layer L [site S] = "REF"`: which sparse autoencoder to use at a site '
    "(a folder, `hf:REPO/PATH` or `zoo:sae/L{layer}/{site}`); the profile gives defaults.",
    "rule": "`rule NAME: at layer ...`: gives a rule a name (for `steer explain`, conflicts and "
    "reports); unnamed rules are called `rule_<n>`.",
    "at": "`at layer L` / `at layers A..B, C`: the transformer blocks a rule acts on (0-based).",
    "layer": "`at layer L`: one block index (0-based).",
    "layers": "`at layers A..B, C`: block ranges (inclusive) and single blocks.",
    "site": "`site KIND`: where in the block the SAE reads and writes: `resid_post` (default), "
    "`resid_pre`, `attn_out` or `mlp_out`.",
    "tokens": "`tokens all|cls|patches|[i, ...]`: which token positions the edit applies to "
    "(default `all`, as in the paper).",
    "to": "`clamp SEL to V` / `add V to SEL`: the value of the action.",
    "by": "`scale SEL by K` multiplies by K; `top K features by E` ranks by the expression E.",
    "features": "`features where P` selects every feature whose statistics satisfy P; "
    "`features 1, 2` lists feature ids.",
    "feature": "`feature N`: one explicit SAE feature id.",
    "top": "`top K features by E [where P]`: the K features with the largest E (after the "
    "optional filter P).",
    "bottom": "`bottom K features by E [where P]`: the K features with the smallest E.",
    "random": "`random K features [where P]`: K features drawn uniformly from those satisfying "
    "P, seeded by `set seed = N` (default 0), the rule's index, the layer and the site, so "
    "every run draws the same ones; the control of a targeted selection.",
    "where": "`where P`: a predicate over per-feature statistics, e.g. `corr(water) > 0.3`.",
    "and": "boolean and (binds tighter than `or`).",
    "or": "boolean or (binds loosest).",
    "not": "boolean negation; `mean(not c)` is the mean activation where concept c does not "
    "hold, and `corr(not c)` = -`corr(c)`.",
    "true": "the boolean constant true.",
    "false": "the boolean constant false.",
}

# The column each statistic reads from the statistics table (steerlang.plan.stat_key).
_STAT_COLUMN: dict[str, str] = {
    "corr": "corr:<concept>",
    "mean": "mean, mean:<concept> or mean_not:<concept>",
    "freq": "freq",
    "max": "max",
    "steerability": "steerability",
    "promotes": "promotes:<word>",
    "top_concept": "top_concept",
    "id": "id",
}


def function_definition(name: str, one_line: str) -> str:
    """Markdown for a function of expressions (`abs`, `min`, `max`, `log`, `quantile`, `rank`)."""
    lines = [f"**{name}** (function)", "", one_line]
    if name in ("quantile", "rank"):
        lines += [
            "",
            "Computed over every feature at the rule's site (not only those passing the rest "
            "of the predicate); not available in concept definitions.",
        ]
    return "\n".join(lines)


def stat_definition(name: str, one_line: str) -> str:
    """Markdown for a statistic function: the language's doc plus where the number comes from."""
    lines = [f"**{name}** (statistic)", "", one_line]
    rng = STAT_RANGES.get(name)
    if rng is not None and rng[1] != float("inf"):
        lines += ["", f"Range: [{rng[0]:g}, {rng[1]:g}]."]
    col = _STAT_COLUMN.get(name)
    if col:
        lines += ["", f"Statistics-table column: `{col}`."]
    if name in ("steerability", "promotes", "top_concept"):
        lines += [
            "",
            "Measured by the steerability sweep: each feature is clamped at strength "
            "`steer_strength` on `steer_images` images and the change of the model's output "
            "distribution over the vocabulary is recorded.",
        ]
    elif name in ("corr", "mean"):
        lines += [
            "",
            "Computed per feature on the **unsteered** model over the recipe's `stats_split` "
            "(default `train`), pooling each image's tokens in scope with `pooling` "
            "(default `mean`).",
        ]
    elif name != "id":
        lines += [
            "",
            "Computed per feature on the **unsteered** model over the recipe's `stats_split` "
            "(default `train`), over the tokens in scope.",
        ]
    return "\n".join(lines)
