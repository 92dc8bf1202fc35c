"""The public Python surface of the model side (CLIP, sites, steering hooks, SAEs), shared by the
CLI and notebooks.

    from steerlang.model.api import load_model, load_sae, steer

    handle = load_model("openclip:ViT-B-32@datacomp_xl_s13b_b90k", device="cuda")
    sae = load_sae("hf:Prisma-Multimodal/sparse-autoencoder-clip-b-32-sae-vanilla-x64-layer-7-hook_resid_post-l1-1e-05")
    with steer(handle, plan, {(7, "resid_post"): sae}):
        emb = handle.encode_image(pixels)

Everything here is re-exported from the modules that define it; see docs/runtime.md.
"""

from __future__ import annotations

from steerlang.model.clip import ClipHandle, load_model, random_clip
from steerlang.model.hooks import SteerSession, steer
from steerlang.model.sae.core import SAE, NormCtx, SAEConfig, SAEHook
from steerlang.model.sae.load import load_sae, save_sae
from steerlang.model.sites import Capture, capture, parse_site, token_mask

__all__ = [
    "SAE",
    "Capture",
    "ClipHandle",
    "NormCtx",
    "SAEConfig",
    "SAEHook",
    "SteerSession",
    "capture",
    "load_model",
    "load_sae",
    "parse_site",
    "random_clip",
    "save_sae",
    "steer",
    "token_mask",
]
