"""The embedded default: SynthWorld, the tiny CLIP trained on it, and its SAEs.

No weights or datasets can be downloaded at run time, so steerlang ships a tiny CLIP in
open_clip's own architecture (12 vision blocks, so ViT-B-32 layer numbers carry over), trained
on a procedural world that holds the paper's phenomena (a background shortcut, text written in
images, a hair-colour/gender correlation), plus an SAE per layer. `docs/zoo.md` is the model
card.

This module imports neither torch nor open_clip; the functions import them when called.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from steerlang.facts import SITE_KINDS
from steerlang.zoo.datasets import ZOO_DATASETS, materialize_dataset
from steerlang.zoo.model import CLIP_WEIGHTS_FILE, N_LAYERS, WEIGHTS_DIR, ZOO_MODEL_NAME

__all__ = [
    "ZOO_DATASETS",
    "ZOO_MODEL_NAME",
    "load_zoo_clip",
    "materialize_dataset",
    "sae_subdir",
    "zoo_clip_path",
    "zoo_sae_dir",
    "zoo_weights_dir",
]


def zoo_weights_dir() -> Path:
    """The folder holding the shipped weights (`tiny_clip.safetensors`, `sae/L{l}/{site}/`)."""
    return WEIGHTS_DIR


def zoo_clip_path() -> Path:
    return WEIGHTS_DIR / CLIP_WEIGHTS_FILE


def sae_subdir(layer: int, site: str = "resid_post") -> Path:
    """The SAE folder for (layer, site) relative to a zoo weights folder."""
    if site not in SITE_KINDS:
        raise ValueError(f"unknown site {site!r}; sites: {', '.join(SITE_KINDS)}")
    if not 0 <= int(layer) < N_LAYERS:
        raise ValueError(f"the zoo CLIP has layers 0..{N_LAYERS - 1}, not {layer}")
    return Path("sae") / f"L{int(layer)}" / site


def zoo_sae_dir(layer: int, site: str = "resid_post") -> Path:
    """Where the shipped zoo SAE for (layer, site) lives (written by `steer zoo build`)."""
    return WEIGHTS_DIR / sae_subdir(layer, site)


def load_zoo_clip(device: str = "cpu", weights: Path | None = None) -> tuple[Any, Any, Any]:
    """(model, preprocess, tokenizer) of the shipped tiny CLIP, in eval mode on `device`.

    `preprocess` is open_clip's eval transform for 64×64 images (resize, centre crop, CLIP
    mean/std); `tokenizer` is open_clip's default BPE tokenizer with the model's context length.
    Raises `CheckpointError` when the weights file is missing or broken.
    """
    from steerlang.zoo.model import create_model, get_tokenizer, load_weights

    path = Path(weights) if weights is not None else zoo_clip_path()
    model, preprocess = create_model("cpu")
    load_weights(model, path)
    model = model.to(device).eval()
    model.steer_weights_file = str(path)  # the runtime hashes this file as the model's identity
    return model, preprocess, get_tokenizer()
