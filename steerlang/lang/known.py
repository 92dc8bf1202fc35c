"""What the language layer knows about models, datasets, statistics and settings without torch.

These tables let `steer check` catch layer numbers a model does not have and column names a
dataset does not provide, with no model or data on disk. They mirror what the runtime loaders
produce (`steerlang.data.formats`, `steerlang.runtime.model`); tests cross-check them.
"""

from __future__ import annotations

import re

# Number of transformer blocks of the vision tower (layers are 0..depth-1).
MODEL_DEPTHS: dict[str, int] = {
    "default": 12,
    "zoo:tiny-clip": 12,
}

# open_clip vision towers by architecture family (any pretrained tag, -quickgelu, -336, ...).
_OPENCLIP_DEPTHS: list[tuple[str, int]] = [
    (r"ViT-B-(32|16)", 12),
    (r"ViT-L-14", 24),
    (r"ViT-H-14", 32),
    (r"ViT-g-14", 40),
    (r"ViT-bigG-14", 48),
]


def model_depth(ref: str | None) -> int | None:
    """Depth of a model reference, or None when it cannot be known without loading it."""
    if ref is None:
        return MODEL_DEPTHS["default"]
    if ref in MODEL_DEPTHS:
        return MODEL_DEPTHS[ref]
    if ref.startswith("openclip:"):
        name = ref[len("openclip:") :].split("@", 1)[0]
        for pattern, depth in _OPENCLIP_DEPTHS:
            if re.fullmatch(pattern + r"(-[A-Za-z0-9_-]+)?", name):
                return depth
    return None


_CELEBA_ATTRS = (
    "5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose "
    "Black_Hair Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee "
    "Gray_Hair Heavy_Makeup High_Cheekbones Male Mouth_Slightly_Open Mustache Narrow_Eyes "
    "No_Beard Oval_Face Pale_Skin Pointy_Nose Receding_Hairline Rosy_Cheeks Sideburns Smiling "
    "Straight_Hair Wavy_Hair Wearing_Earrings Wearing_Hat Wearing_Lipstick Wearing_Necklace "
    "Wearing_Necktie Young"
).split()

_TYPOGRAPHIC = ("label", "text", "label_name", "text_name")

# Columns each known dataset format provides (as loaded by steerlang.data.formats).
DATASET_COLUMNS: dict[str, tuple[str, ...]] = {
    "waterbirds": (
        "img_id",
        "img_filename",
        "y",
        "split",
        "place",
        "place_filename",
        "species",
    ),
    "celeba": ("image_id", *_CELEBA_ATTRS, "split"),
    "typographic": _TYPOGRAPHIC,
    "rta100": _TYPOGRAPHIC,
    "paint": _TYPOGRAPHIC,
    "disentangling": (*_TYPOGRAPHIC, "file"),
    "imagefolder": ("label", "label_name", "split"),
    "shapes": ("label", "label_name", "split"),  # the zoo's clean shapes, an ImageFolder
}


# Columns the statistics images gain under `set stats_images = "attacked" | "both"`.
ATTACK_COLUMNS: tuple[str, ...] = ("attacked", "attack", "attack_name")


def dataset_columns(ref: str | None) -> tuple[str, ...] | None:
    if ref is None:
        return None
    return DATASET_COLUMNS.get(ref.strip().lower())


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

SITE_DOCS: dict[str, str] = {
    "resid_post": "the residual stream after the block (default; where released SAEs live)",
    "resid_pre": "the residual stream entering the block",
    "attn_out": "the attention sub-layer's output",
    "mlp_out": "the MLP sub-layer's output",
}

TOKEN_SCOPES: dict[str, str] = {
    "all": "every token (default, as in the paper)",
    "cls": "the class token (index 0)",
    "patches": "the patch tokens (indices 1..)",
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
SETTING_MIN: dict[str, float] = {
    "batch_size": 1,
    "stats_limit": 0,
    "eval_limit": 0,
    "steer_strength": 0,
    "steer_threshold": 0,
    "steer_images": 1,
    "logit_scale": 0,
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
    "logit_scale": "readout scale for steerability",
    "vocabulary": 'steerability vocabulary file, or "default"',
    "error_mode": "preserve_error (keep the SAE error term) or reconstruct",
}

# Split names the data layer accepts (steerlang.data.table normalises the aliases).
SPLIT_NAMES: tuple[str, ...] = (
    "train",
    "val",
    "test",
    "training",
    "valid",
    "validation",
    "dev",
    "testing",
)
SPLIT_SETTINGS: tuple[str, ...] = ("stats_split", "eval_split", "probe_split")
