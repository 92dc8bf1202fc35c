"""Facts that both sides of steerlang need: the language checks recipes against them without a
model or data on disk, and the runtime builds hooks, tables and errors from the same values.

One home for each: the site kinds and their order inside a block, the token scopes, the model
depths the checker can know without loading weights, the columns each dataset format provides
(and the ones the typographic attack adds), and the split names. This module imports nothing
from the package, so every layer can use it; `tests/test_facts.py` cross-checks the tables
against the loaders that produce the real things.
"""

from __future__ import annotations

import re
from typing import Literal, get_args

# Hook sites of a transformer block; the canonical hook name is `blocks.{layer}.hook_{kind}`.
SiteKind = Literal["resid_post", "resid_pre", "attn_out", "mlp_out"]
SITE_KINDS: tuple[str, ...] = get_args(SiteKind)
# The order in which a block computes them (sorting hooks by where they fire).
SITE_ORDER: tuple[str, ...] = ("resid_pre", "attn_out", "mlp_out", "resid_post")
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
    (r"ViT-L-16", 24),
    (r"ViT-SO400M-(14|16)", 27),
]
# Hugging Face repo names that embed an open_clip architecture (hf-hub:/open-clip: aliases,
# e.g. laion/CLIP-ViT-B-32-DataComp.XL-s13B-b90K), and transformers CLIP/SigLIP repos.
_HUB_DEPTHS: list[tuple[str, int]] = [
    (r"ViT-B-(32|16)|vit-base-patch(32|16)|siglip2?-base-patch16", 12),
    (r"ViT-L-14|vit-large-patch14|siglip2?-large-patch16", 24),
    (r"ViT-H-14", 32),
    (r"ViT-g-14", 40),
    (r"ViT-bigG-14", 48),
    (r"so400m", 27),
]


def model_depth(ref: str | None) -> int | None:
    """Depth of a model reference, or None when it cannot be known without loading it."""
    if ref is None:
        return MODEL_DEPTHS["default"]
    if ref in MODEL_DEPTHS:
        return MODEL_DEPTHS[ref]
    if ref.startswith("openclip:") and not ref.startswith("openclip:hf-hub:"):
        name = ref[len("openclip:") :].split("@", 1)[0]
        for pattern, depth in _OPENCLIP_DEPTHS:
            if re.fullmatch(pattern + r"(-[A-Za-z0-9_-]+)?", name):
                return depth
    if ref.startswith(("hf:", "hf-hub:", "open-clip:", "openclip:hf-hub:")):
        for pattern, depth in _HUB_DEPTHS:
            if re.search(pattern, ref, flags=re.IGNORECASE):
                return depth
    return None


def model_has_cls(ref: str | None) -> bool | None:
    """Whether a model's vision tower has a CLS token at index 0, or None when it cannot be known
    without loading it. SigLIP / SigLIP 2 towers have none (they pool the patch tokens with an
    attention head), so `tokens cls` means nothing there and `tokens patches` is every token;
    the runtime's answer for a loaded model is `ClipHandle.has_cls`."""
    if ref is None or ref in MODEL_DEPTHS:
        return True
    if re.search(r"siglip", ref, flags=re.IGNORECASE):
        return False
    if ref.startswith("openclip:") and model_depth(ref) is not None:
        return True  # open_clip's own ViT towers all prepend a class token
    if ref.startswith(("hf:", "hf-hub:", "open-clip:")) and re.search(r"clip", ref, re.I):
        return True
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


# Canonical split names (steerlang.data.table maps aliases such as "validation" onto them).
SPLIT_NAMES: tuple[str, ...] = ("train", "val", "test")
SPLIT_ALIASES: dict[str, str] = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "dev": "val",
    "test": "test",
    "testing": "test",
}
