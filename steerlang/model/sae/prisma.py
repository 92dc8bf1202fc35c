"""ViT-Prisma SAE folders (formats.md §1.3): `config.json` + a `.pt` state dict of any name.

The released CLIP suite stores weights as `n_images_2600058.pt` or `weights.pt`; never
hard-code the name. Weights are read with `torch.load(weights_only=True)`: newer Prisma files
that pickle a `VisionModelSAERunnerConfig` object are refused with instructions, because
unpickling would import and run code.

`normalize_activations="layer_norm"` (Prisma's default) is per-token standardisation with the
SAE's b_dec subtracted afterwards: canonical `input_norm="per_token_ln"`, `pre_center=True`.
"""

from __future__ import annotations

import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from steerlang.errors import CheckpointError
from steerlang.model.sae.core import SAE, SAEConfig, SAEHook, build_sae
from steerlang.model.sae.load import read_json, validate_tensors

CONFIG_FILE = "config.json"
_WEIGHT_SUFFIXES = (".pt", ".pth")
_SITE_RE = re.compile(r"^(?:hook_)?(resid_post|resid_pre|attn_out|mlp_out)$")


def weight_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.is_file() and p.suffix in _WEIGHT_SUFFIXES)


def is_prisma(directory: Path) -> bool:
    if not (directory / CONFIG_FILE).is_file() or not weight_files(directory):
        return False
    try:
        doc = read_json(directory / CONFIG_FILE)
    except CheckpointError:
        return True  # let the loader report the broken config
    return any(k in doc for k in ("hook_point_layer", "layer_subtype", "expansion_factor"))


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


def safe_torch_load(path: Path) -> Any:
    """torch.load(weights_only=True) with every failure turned into a CheckpointError."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()
        detail = next((ln.strip() for ln in first if "GLOBAL" in ln or "global" in ln), "")
        raise CheckpointError(
            f"{path}: refusing to unpickle Python objects from this checkpoint"
            + (f" ({detail[:200]})" if detail else ""),
            help="steerlang only loads plain tensors (weights_only=True). On a machine where "
            'you trust the file, extract the state dict: python -c "import torch; '
            f"ck=torch.load('{path.name}', weights_only=False); "
            "torch.save(ck.get('state_dict', ck), 'weights.pt')\" and keep only weights.pt",
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as e:
        raise CheckpointError(
            f"{path}: cannot read this checkpoint ({str(e).strip().splitlines()[0][:200]})",
            help="the file is truncated or corrupt; re-download it",
        ) from None


def load_prisma(directory: Path, *, device: str | torch.device = "cpu") -> SAE:
    cfg_path = directory / CONFIG_FILE
    c = read_json(cfg_path)
    wpath = _pick_weights(directory)
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
    tensors: dict[str, Tensor] = dict(state)
    if c.get("is_transcoder"):
        raise CheckpointError(
            f"{cfg_path}: transcoders are not supported", help="use a vanilla or top-k SAE"
        )
    arch = str(c.get("architecture") or "standard").lower()
    act_fn = str(c.get("activation_fn_str") or c.get("activation_fn") or "relu").lower()
    if arch == "gated" or "b_gate" in tensors:
        raise CheckpointError(
            f"{cfg_path}: gated SAEs are not supported", help="use a vanilla or top-k SAE"
        )
    if act_fn == "topk" or arch == "topk":
        activation = "topk"
        k = (c.get("activation_fn_kwargs") or {}).get("k") or c.get("k")
        if k is None:
            raise CheckpointError(f"{cfg_path}: top-k SAE without activation_fn_kwargs.k")
    elif arch == "jumprelu" or "threshold" in tensors:
        activation, k = "jumprelu", None
    elif act_fn == "relu":
        activation, k = "relu", None
    else:
        raise CheckpointError(
            f"{cfg_path}: activation {act_fn!r} is not supported", help="relu, topk or jumprelu"
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
    layer = c.get("hook_point_layer")
    subtype = str(c.get("layer_subtype") or "hook_resid_post")
    m = _SITE_RE.match(subtype)
    if not m:
        raise CheckpointError(
            f"{cfg_path}: layer_subtype {subtype!r} is not a steerable site",
            help="steerlang hooks hook_resid_post, hook_resid_pre, hook_attn_out, hook_mlp_out",
        )
    tokens = "cls" if c.get("cls_token_only") else "patches" if c.get("use_patches_only") else "all"
    norm_mode = c.get("normalize_activations", "layer_norm")
    input_norm = {"layer_norm": "per_token_ln", "constant_norm_rescale": "constant_norm_rescale"}
    if "threshold" in tensors and tensors["threshold"].ndim == 0 and d_sae:
        tensors["threshold"] = tensors["threshold"].expand(d_sae).clone()
    first = next(iter(tensors.values()))
    cfg = SAEConfig(
        d_in=d_in,
        d_sae=d_sae,
        activation=activation,  # type: ignore[arg-type]
        k=int(k) if k is not None else None,
        pre_center=True,
        input_norm=input_norm.get(str(norm_mode), "none"),  # type: ignore[arg-type]
        hook=SAEHook(
            layer=int(layer) if layer is not None else None,
            site=m.group(1),  # type: ignore[arg-type]
            tokens=tokens,  # type: ignore[arg-type]
            model=c.get("model_name"),
        ),
        dtype=str(first.dtype).removeprefix("torch."),
        metadata={
            "source_format": "vit-prisma",
            "weights_file": wpath.name,
            "prisma": {k: c[k] for k in sorted(c) if isinstance(c[k], str | int | float | bool)},
        },
    )
    tensors = validate_tensors(tensors, cfg, wpath)
    return build_sae(cfg, tensors, device=device)


def save_prisma(sae: SAE, directory: Path, *, weights_name: str = "weights.pt") -> Path:
    """Write a Prisma-style folder (config.json + plain state dict). Used by tests and for
    handing SAEs to Prisma tooling; only ReLU/TopK with layer_norm or no norm map exactly."""
    import json

    from steerlang.files import atomic_write_text

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
    atomic_write_text(directory / CONFIG_FILE, json.dumps(doc, indent=2) + "\n")
    return directory
