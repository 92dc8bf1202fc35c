"""What the language layer knows about models, datasets, statistics and settings without torch.

These tables let `steer check` catch layer numbers a model does not have and column names a
dataset does not provide, with no model or data on disk. They mirror what the runtime loaders
produce (`steerlang.data.formats`, `steerlang.model.clip`); tests cross-check them.
"""

from __future__ import annotations

from steerlang.facts import (
    ATTACK_COLUMNS,
    DATASET_COLUMNS,
    MODEL_DEPTHS,
    SITE_DOCS,
    SPLIT_ALIASES,
    TOKEN_SCOPES,
    dataset_columns,
    model_depth,
)
from steerlang.facts import SPLIT_NAMES as _SPLITS

# The language side reads these facts through this module; their one home is steerlang/facts.py.
__all__ = [
    "ACTIONS",
    "ATTACK_COLUMNS",
    "DATASET_COLUMNS",
    "MODEL_DEPTHS",
    "SETTING_CHOICES",
    "SETTING_DOCS",
    "SETTING_MIN",
    "SETTING_WORDS",
    "SITE_DOCS",
    "SPLIT_NAMES",
    "SPLIT_SETTINGS",
    "FUNCTIONS",
    "STAT_FUNCTIONS",
    "TOKEN_SCOPES",
    "dataset_columns",
    "model_depth",
]

# Statistic functions: name -> (arity description, one-line doc). Keys equal plan.StatFn.
STAT_FUNCTIONS: dict[str, str] = {
    "corr": "corr(c): Pearson correlation of the feature's pooled per-image activation with "
    "binary concept c, in [-1, 1]",
    "mean": "mean(), mean(c), mean(not c): mean pooled activation over all images, over "
    "images where concept c holds, or where it does not",
    "freq": "freq(): firing frequency, the fraction of tokens in scope where the feature is "
    "active (> 0), in [0, 1]",
    "max": "max(): maximum activation of the feature over the tokens in scope",
    "steerability": "steerability(): S_f, how much clamping the feature moves the model's "
    "output distribution over the vocabulary, in [0, 2] (needs a steerability sweep)",
    "promotes": 'promotes("word"): mean change of the probability of `word` when the feature '
    "is clamped, in [-1, 1] (needs a steerability sweep)",
    "top_concept": "top_concept(): the vocabulary word the feature promotes most (a string; "
    "needs a steerability sweep)",
    "id": "id(): the feature's index in the SAE",
}

# Functions of expressions: name -> one-line doc (steerlang/lang/compiler/functions.py checks
# them; `max()` without arguments is the statistic above).
FUNCTIONS: dict[str, str] = {
    "abs": "abs(E): the absolute value of E, feature by feature",
    "min": "min(A, B): the smaller of A and B, feature by feature (NaN if either is NaN)",
    "max": "max(A, B): the larger of A and B, feature by feature (NaN if either is NaN); "
    "max() with no argument is the statistic",
    "log": "log(E): the natural logarithm of E; NaN where E <= 0 (every comparison with NaN is false)",
    "quantile": "quantile(E, q): the q-quantile of E over every feature at the rule's site "
    "(q a number in [0, 1]; linear interpolation, NaN left out)",
    "rank": "rank(E): E's rank among every feature at the rule's site, 1 for the largest, "
    "ties broken by the lower feature id",
}

# Action words -> one-line doc (the IR op is in parentheses when it differs).
ACTIONS: dict[str, str] = {
    "suppress": "suppress SEL: set the selected features' activations to 0",
    "clamp": "clamp SEL to V: set the selected features' activations to V",
    "set": "set SEL to V: the same as `clamp SEL to V`",
    "scale": "scale SEL by K: multiply the selected features' activations by K",
    "add": "add V to SEL: add V to the selected features' activations",
    "mean-ablate": "mean-ablate SEL: set the selected features to their mean activation on "
    "the statistics split",
}

# Allowed values and bounds for settings the language can validate without the runtime.
SETTING_CHOICES: dict[str, tuple[str, ...]] = {
    "classifier": ("zero_shot", "linear_probe"),
    "pooling": ("mean", "max"),
    "attack": ("none", "typographic"),
    "attack_style": ("auto", "dp", "note"),
    "stats_images": ("clean", "attacked", "both"),
    "error_mode": ("preserve_error", "reconstruct"),
}
# Numeric settings that also take one of these words (a string) in place of a number.
SETTING_WORDS: dict[str, tuple[str, ...]] = {
    "logit_scale": ("model",),  # the model's own exp(logit_scale) instead of a fixed number
}
SETTING_MIN: dict[str, float] = {
    "batch_size": 1,
    "stats_limit": 0,
    "eval_limit": 0,
    "steer_strength": 0,
    "steer_threshold": 0,
    "steer_images": 1,
    "logit_scale": 0,
    "gallery_k": 0,
    "gallery_cards": 0,
}

SETTING_DOCS: dict[str, str] = {
    "stats_split": "split the feature statistics are computed on (unsteered model)",
    "eval_split": "split baseline and steered metrics are reported on",
    "probe_split": "split a linear probe is trained on (classifier = linear_probe)",
    "classifier": "zero_shot (prompts) or linear_probe",
    "pooling": "how token activations pool to one value per image: mean or max",
    "batch_size": "images per forward pass",
    "seed": "random seed for sampling and probes",
    "stats_limit": "at most this many images for statistics (0 = the whole split)",
    "eval_limit": "at most this many images for evaluation (0 = the whole split)",
    "attack": "none, or typographic: write a wrong class word on every evaluation image",
    "attack_style": "how the attack draws the word: auto (note on zoo datasets, else dp), dp, note",
    "stats_images": "images the statistics see: clean, attacked, or both (each image twice)",
    "steer_strength": "clamp strength s of the steerability sweep",
    "steer_threshold": "S_f above which a feature counts as steerable",
    "steer_images": "number of images for the steerability readout",
    "logit_scale": "readout scale for steerability: a number (the authors' fixed 100) or "
    '"model" (the model\'s own exp(logit_scale))',
    "vocabulary": 'steerability vocabulary file, or "default"',
    "steer_curve": 'strengths for the report\'s steerability curve, e.g. "5,10,20,50,150" '
    '(SAE features, neurons and push-matched neurons at each; "" = none)',
    "error_mode": "preserve_error (keep the SAE error term) or reconstruct",
    "gallery_k": "images per feature card: the statistics pass keeps each feature's k strongest "
    "(0 = no images)",
    "gallery_cards": "feature cards per rule and site in the report, strongest first",
}

# Every split name a recipe may write: the canonical names, then the aliases the data layer maps.
SPLIT_NAMES: tuple[str, ...] = (*_SPLITS, *(a for a in SPLIT_ALIASES if a not in _SPLITS))
SPLIT_SETTINGS: tuple[str, ...] = ("stats_split", "eval_split", "probe_split")
