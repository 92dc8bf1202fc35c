"""ViT-Prisma SAE folders: `config.json` + a `.pt` state dict of any name.

The released CLIP suite stores weights as `n_images_2600058.pt` or `weights.pt`; never
hard-code the name. Weights are read with `torch.load(weights_only=True)`: newer Prisma files
that pickle a `VisionModelSAERunnerConfig` object are refused with instructions, because
unpickling would import and run code. Prisma stores tensors in the canonical orientation
(`W_enc [d_in, d_sae]`) and takes `d_sae` from `W_enc`, not from the config.

`normalize_activations="layer_norm"` (Prisma's default) is per-token standardisation with the
SAE's b_dec subtracted afterwards: canonical `input_norm="per_token_ln"`, `pre_center=True`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from steerlang.errors import CheckpointError
from steerlang.facts import SITE_KINDS
from steerlang.files import atomic_write_json
from steerlang.model.sae.core import SAE, SAEHook, SAEParts, checked_config
from steerlang.model.sae.tensors import (
    expand_scalar_threshold,
    read_json,
    safe_torch_load,
    validate_tensors,
)

CONFIG_FILE = "config.json"
_WEIGHT_SUFFIXES = (".pt", ".pth")
_SITE_RE = re.compile(rf"^(?:hook_)?({'|'.join(SITE_KINDS)})$")
# Prisma normalize_activations -> our input_norm (anything else: no normalisation).
_INPUT_NORMS = {"layer_norm": "per_token_ln", "constant_norm_rescale": "constant_norm_rescale"}


# Prisma's trainer writes `<name>_log_feature_sparsity.pt` next to each checkpoint: statistics,
# never the SAE.
_SIDE_FILE_RE = re.compile(r"(^|_)(log_)?feature_sparsity$|(^|_)sparsity$")


def weight_files(directory: Path) -> list[Path]:
    """The candidate SAE weight files of a folder (side files such as sparsity logs excluded)."""
    return sorted(
        p
        for p in directory.iterdir()
        if p.is_file() and p.suffix in _WEIGHT_SUFFIXES and not _SIDE_FILE_RE.search(p.stem)
    )


def is_prisma(directory: Path) -> bool:
    if not (directory / CONFIG_FILE).is_file() or not weight_files(directory):
        return False
    try:
        doc = read_json(directory / CONFIG_FILE)
    except CheckpointError:
        return True  # let the reader report the broken config
    return any(k in doc for k in _PRISMA_KEYS)


_PRISMA_KEYS = ("hook_point_layer", "layer_subtype", "expansion_factor")


def near_miss(directory: Path) -> str | None:
    """Why a folder holding this format's file names is not read as it (None: not close)."""
    cfg = directory / CONFIG_FILE
    if not cfg.exists():
        return None
    if not cfg.is_file():
        return f"{CONFIG_FILE} is a folder, not a file"
    pts = sorted(p.name for p in directory.iterdir() if p.suffix in _WEIGHT_SUFFIXES)
    if not pts:
        return None
    if not weight_files(directory):
        return f"the only .pt files ({', '.join(pts)}) are sparsity logs, not SAE weights"
    try:
        doc = read_json(cfg)
    except CheckpointError:
        return None
    return (
        f"{CONFIG_FILE} has none of the keys ViT-Prisma writes ({', '.join(_PRISMA_KEYS)}); "
        'add hook_point_layer and layer_subtype (e.g. 9 and "hook_resid_post")'
        if not any(k in doc for k in _PRISMA_KEYS)
        else None
    )


def _pick_weights(directory: Path) -> Path:
    files = weight_files(directory)
    if len(files) == 1:
        return files[0]
    for name in ("weights.pt", "sae.pt"):
        if (directory / name) in files:
            return directory / name
    # Training checkpoints are n_images_<count>.pt: the last one is the final SAE.
    numbered = [(int(m.group(1)), p) for p in files if (m := re.search(r"(\d+)", p.stem))]
    if numbered:
        return max(numbered)[1]
    raise CheckpointError(
        f"{directory}: several weight files ({', '.join(p.name for p in files)}) and no way to "
        "tell which is the SAE",
        help="keep one .pt file next to config.json",
    )


def _state_dict(wpath: Path) -> dict[str, Tensor]:
    """The tensors of a Prisma weights file (plain, or under `state_dict` / `autoencoder`)."""
    obj = safe_torch_load(wpath)
    state: Any = obj
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        state = obj["state_dict"]
    elif isinstance(obj, dict) and isinstance(obj.get("autoencoder"), dict):
        state = obj["autoencoder"]
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise CheckpointError(
            f"{wpath}: expected a state dict of tensors, found {type(state).__name__}",
            help="a Prisma SAE file holds W_enc, b_enc, W_dec, b_dec",
        )
    return dict(state)


def read_prisma(directory: Path) -> SAEParts:
    cfg_path = directory / CONFIG_FILE
    c = read_json(cfg_path)
    wpath = _pick_weights(directory)
    tensors = _state_dict(wpath)
    if c.get("is_transcoder"):
        raise CheckpointError(
            f"{cfg_path}: transcoders are not supported", help="use a vanilla or top-k SAE"
        )
    activation, k = _activation(c, tensors, cfg_path)
    if k is not None and "W_enc" in tensors and k > max(tensors["W_enc"].shape):
        raise CheckpointError(
            f"{cfg_path}: activation_fn_kwargs.k={k} is larger than the SAE's width",
            help="k is how many latents each token keeps; it must be at most d_sae",
        )
    if "W_enc" not in tensors:
        raise CheckpointError(
            f"{wpath}: tensor 'W_enc' is missing (found: {', '.join(sorted(tensors))})"
        )
    try:
        d_in = int(c.get("d_in") or tensors["W_enc"].shape[0])
    except (TypeError, ValueError):
        raise CheckpointError(f"{cfg_path}: d_in must be an integer") from None
    w = tensors["W_enc"]
    # d_sae comes from the weights (Prisma ignores the config's d_sae); a transposed W_enc is
    # reported by validate_tensors against d_in.
    d_sae = int(w.shape[1] if w.ndim == 2 and w.shape[0] == d_in else w.shape[0])
    if d_sae:
        expand_scalar_threshold(tensors, d_sae)
    input_norm = _INPUT_NORMS.get(str(c.get("normalize_activations", "layer_norm")), "none")
    cfg = checked_config(
        cfg_path,
        d_in=d_in,
        d_sae=d_sae,
        activation=activation,  # type: ignore[arg-type]
        k=k,
        pre_center=True,
        input_norm=input_norm,  # type: ignore[arg-type]
        hook=_hook(c, cfg_path),
        dtype=str(next(iter(tensors.values())).dtype).removeprefix("torch."),
        metadata={
            "source_format": "vit-prisma",
            "weights_file": wpath.name,
            "prisma": {k: c[k] for k in sorted(c) if isinstance(c[k], str | int | float | bool)},
        },
    )
    return SAEParts(cfg, validate_tensors(tensors, cfg, wpath), source=directory)


def _activation(
    c: dict[str, Any], tensors: dict[str, Tensor], cfg_path: Path
) -> tuple[str, int | None]:
    """(activation, k) from the config's architecture / activation_fn and the tensors present."""
    arch = str(c.get("architecture") or "standard").lower()
    act_fn = str(c.get("activation_fn_str") or c.get("activation_fn") or "relu").lower()
    if arch == "gated" or "b_gate" in tensors:
        raise CheckpointError(
            f"{cfg_path}: gated SAEs are not supported", help="use a vanilla or top-k SAE"
        )
    if act_fn == "topk" or arch == "topk":
        kwargs = c.get("activation_fn_kwargs") or {}
        if not isinstance(kwargs, dict):
            raise CheckpointError(
                f'{cfg_path}: activation_fn_kwargs must be an object such as {{"k": 32}}, '
                f"found {kwargs!r}",
                help='set "activation_fn_kwargs": {"k": <latents kept per token>}',
            )
        k = kwargs.get("k", c.get("k"))
        if k is None:
            raise CheckpointError(
                f"{cfg_path}: top-k SAE without activation_fn_kwargs.k",
                help='set "activation_fn_kwargs": {"k": <latents kept per token>}',
            )
        if isinstance(k, bool) or not isinstance(k, int) or k <= 0:
            raise CheckpointError(
                f"{cfg_path}: activation_fn_kwargs.k must be a positive integer, found {k!r}",
                help='k is how many latents each token keeps, e.g. "k": 32',
            )
        return "topk", k
    if arch == "jumprelu" or "threshold" in tensors:
        return "jumprelu", None
    if act_fn == "relu":
        return "relu", None
    raise CheckpointError(
        f"{cfg_path}: activation {act_fn!r} is not supported", help="relu, topk or jumprelu"
    )


def _hook(c: dict[str, Any], cfg_path: Path) -> SAEHook:
    """Where the SAE was trained: `hook_point_layer`, `layer_subtype` and the token flags."""
    subtype = c.get("layer_subtype") or "hook_resid_post"
    m = _SITE_RE.match(subtype) if isinstance(subtype, str) else None
    if not m:
        raise CheckpointError(
            f"{cfg_path}: layer_subtype {subtype!r} is not a steerable site",
            help=f"steerlang hooks {', '.join('hook_' + k for k in SITE_KINDS)}",
        )
    layer = c.get("hook_point_layer")
    if layer is not None and (isinstance(layer, bool) or not isinstance(layer, int) or layer < 0):
        raise CheckpointError(
            f"{cfg_path}: hook_point_layer must be one layer number (an integer >= 0), "
            f"found {layer!r}",
            help="steerlang loads one SAE per site; a multi-layer config needs one folder per "
            "layer, each with its own hook_point_layer",
        )
    tokens = "cls" if c.get("cls_token_only") else "patches" if c.get("use_patches_only") else "all"
    return SAEHook(
        layer=layer,
        site=m.group(1),  # type: ignore[arg-type]
        tokens=tokens,  # type: ignore[arg-type]
        model=c.get("model_name") if isinstance(c.get("model_name"), str) else None,
    )


def save_prisma(sae: SAE, directory: Path, *, weights_name: str = "weights.pt") -> Path:
    """Write a Prisma-style folder (config.json + plain state dict), for handing SAEs to Prisma
    tooling; only pre-centred SAEs with layer_norm or no input norm map onto its config."""
    cfg = sae.cfg
    if not cfg.pre_center or cfg.input_norm not in ("per_token_ln", "none"):
        raise CheckpointError(
            "only pre-centred SAEs with per_token_ln or no input norm map onto Prisma's config"
        )
    doc: dict[str, Any] = {
        "model_name": cfg.hook.model,
        "hook_point_layer": cfg.hook.layer,
        "layer_subtype": f"hook_{cfg.hook.site}",
        "d_in": cfg.d_in,
        "expansion_factor": cfg.d_sae // cfg.d_in if cfg.d_sae % cfg.d_in == 0 else None,
        "architecture": "standard" if cfg.activation != "jumprelu" else "jumprelu",
        "activation_fn_str": "topk" if cfg.activation == "topk" else "relu",
        "activation_fn_kwargs": {"k": cfg.k} if cfg.activation == "topk" else {},
        "normalize_activations": "layer_norm" if cfg.input_norm == "per_token_ln" else "none",
        "cls_token_only": cfg.hook.tokens == "cls",
        "use_patches_only": cfg.hook.tokens == "patches",
        "is_transcoder": False,
        "context_size": 50,
    }
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().clone() for k, v in sae.tensors().items()}
    tmp = directory / f".{weights_name}.tmp"
    torch.save(state, tmp)
    tmp.replace(directory / weights_name)
    atomic_write_json(directory / CONFIG_FILE, doc)
    return directory
