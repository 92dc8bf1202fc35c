"""The embedded default: SynthWorld, the tiny CLIP trained on it, and its SAEs.

No weights or datasets can be downloaded at run time, so steerlang ships a tiny CLIP in
open_clip's own architecture (12 vision blocks, so ViT-B-32 layer numbers carry over), trained
on a procedural world that holds the paper's phenomena (a background shortcut, text written in
images, a hair-colour/gender correlation), plus an SAE per layer. `docs/zoo.md` is the model
card.

This module imports neither torch nor open_clip; the functions import them when called.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from steerlang.facts import SITE_KINDS
from steerlang.zoo.datasets import ZOO_DATASETS, materialize_dataset
from steerlang.zoo.model import CLIP_WEIGHTS_FILE, N_LAYERS, WEIGHTS_DIR, ZOO_MODEL_NAME

__all__ = [
    "ZOO_DATASETS",
    "ZOO_MODEL_NAME",
    "load_zoo_clip",
    "ZOO_DOMAIN_SAES",
    "domain_zoo_sae_refs",
    "materialize_dataset",
    "parse_zoo_sae_ref",
    "sae_subdir",
    "shipped_zoo_sae_refs",
    "zoo_clip_path",
    "zoo_sae_dir",
    "zoo_sae_ref_dir",
    "zoo_weights_dir",
]


def zoo_weights_dir() -> Path:
    """The folder holding the shipped weights (`tiny_clip.safetensors`, `sae/L{l}/{site}/`)."""
    return WEIGHTS_DIR


def zoo_clip_path() -> Path:
    return WEIGHTS_DIR / CLIP_WEIGHTS_FILE


# SAEs trained on one zoo dataset's images, shipped beside the general per-layer ones (which
# are trained on the whole world): domain -> (layer, site). `zoo:sae/celeba/L7/resid_post` is a
# TopK SAE on the patch tokens of faces drawn like the zoo CelebA training split; how each was
# trained is in the model card (docs/zoo.md).
ZOO_DOMAIN_SAES: dict[str, tuple[int, str]] = {"celeba": (7, "resid_post")}

# `zoo:sae/L{layer}/{site}` or `zoo:sae/{domain}/L{layer}/{site}`; parsed loosely (any site
# word, up to 6 layer digits) so that callers can say what exactly is wrong with a near miss.
_ZOO_SAE_RE = re.compile(r"zoo:sae/(?:([a-z][a-z0-9_]*)/)?L(\d{1,6})/([a-z_]+)")


def parse_zoo_sae_ref(ref: str) -> tuple[str | None, int, str] | None:
    """(domain or None, layer, site) of a `zoo:sae/...` reference as written (not checked
    against what ships), or None when it does not have that shape."""
    m = _ZOO_SAE_RE.fullmatch(ref)
    return (m.group(1), int(m.group(2)), m.group(3)) if m else None


def shipped_zoo_sae_refs() -> list[str]:
    """Every zoo SAE reference that ships: one per layer at resid_post, then the domain SAEs."""
    return [f"zoo:sae/L{n}/resid_post" for n in range(N_LAYERS)] + domain_zoo_sae_refs()


def domain_zoo_sae_refs() -> list[str]:
    """The references of the domain SAEs (`ZOO_DOMAIN_SAES`)."""
    return [f"zoo:sae/{d}/L{n}/{site}" for d, (n, site) in ZOO_DOMAIN_SAES.items()]


def sae_subdir(layer: int, site: str = "resid_post", domain: str | None = None) -> Path:
    """The SAE folder for (layer, site), or a domain SAE's, relative to a zoo weights folder."""
    if site not in SITE_KINDS:
        raise ValueError(f"unknown site {site!r}; sites: {', '.join(SITE_KINDS)}")
    if not 0 <= int(layer) < N_LAYERS:
        raise ValueError(f"the zoo CLIP has layers 0..{N_LAYERS - 1}, not {layer}")
    if domain is None:
        return Path("sae") / f"L{int(layer)}" / site
    if ZOO_DOMAIN_SAES.get(domain) != (int(layer), site):
        have = ", ".join(f"{d} (layer {n}, {s})" for d, (n, s) in ZOO_DOMAIN_SAES.items())
        raise ValueError(f"the zoo has no {domain!r} SAE at layer {layer} {site}; it has {have}")
    return Path("sae") / domain / f"L{int(layer)}" / site


def zoo_sae_dir(layer: int, site: str = "resid_post", domain: str | None = None) -> Path:
    """Where the shipped zoo SAE for (layer, site[, domain]) lives (written by `steer zoo
    build`)."""
    return WEIGHTS_DIR / sae_subdir(layer, site, domain)


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


def zoo_sae_ref_dir(ref: str) -> Path | None:
    """The folder of a shipped zoo SAE reference, or None when `ref` names none."""
    parsed = parse_zoo_sae_ref(ref)
    if parsed is None:
        return None
    domain, layer, site = parsed
    try:
        return zoo_sae_dir(layer, site, domain)
    except ValueError:
        return None
