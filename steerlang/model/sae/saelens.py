"""SAELens folder format: `cfg.json` + `sae_weights.safetensors`.

Reads v6 configs and migrates pre-6.0 flat configs the way SAELens does (renamed keys,
`apply_b_dec_to_input` defaulting to true, boolean `normalize_activations`, `activation_fn`
"topk" -> architecture "topk"). Architectures: standard (ReLU), jumprelu, topk. Writes v6.
SAELens stores tensors in the canonical orientation (`W_enc [d_in, d_sae]`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from steerlang.errors import CheckpointError
from steerlang.facts import SITE_KINDS
from steerlang.files import atomic_write_json, atomic_write_with
from steerlang.model.sae.core import SAE, SAEConfig, SAEHook, SAEParts, dtype_name, parse_dtype
from steerlang.model.sae.tensors import (
    expand_scalar_threshold,
    read_json,
    read_safetensors,
    validate_tensors,
)

CFG_FILE = "cfg.json"
WEIGHTS_FILE = "sae_weights.safetensors"
SCALER_FILE = "activation_scaler.json"
WRITE_VERSION = "6.0.0"  # the config schema we write; selects SAELens' v6 code path on load

_HOOK_RE = re.compile(rf"^blocks\.(\d+)\.hook_({'|'.join(SITE_KINDS)})$")
# SAELens architecture -> our activation (BatchTopK SAEs are saved for inference as JumpReLU).
_ACTIVATIONS = {
    "standard": "relu",
    "jumprelu": "jumprelu",
    "topk": "topk",
    "batchtopk": "jumprelu",
    "matryoshka_batchtopk": "jumprelu",
}
# SAELens normalize_activations -> our input_norm.
_INPUT_NORMS = {
    "none": "none",
    "layer_norm": "per_token_ln",
    "constant_norm_rescale": "constant_norm_rescale",
    "expected_average_only_in": "scalar",
}


def is_saelens(directory: Path) -> bool:
    return (directory / CFG_FILE).is_file() and (directory / WEIGHTS_FILE).is_file()


def _version_tuple(v: str) -> tuple[int, ...]:
    nums = re.findall(r"\d+", v.split("-")[0].split("+")[0])
    return tuple(int(n) for n in nums[:3]) or (0,)


def is_pre_6(cfg: dict[str, Any]) -> bool:
    v = cfg.get("sae_lens_version") or (cfg.get("metadata") or {}).get("sae_lens_version")
    if not v:
        return True
    s = str(v)
    # "6.0.0-rc.0" and later are v6; anything below 6.0.0 (release candidates excluded) is not.
    return _version_tuple(s) < (6, 0, 0)


def migrate_pre_6(cfg: dict[str, Any]) -> dict[str, Any]:
    """Pre-6.0 flat config -> v6 shape (only the keys steerlang uses)."""
    renames = {
        "hook_point": "hook_name",
        "hook_point_head_index": "hook_head_index",
        "activation_fn_str": "activation_fn",
    }
    c = {renames.get(k, k): v for k, v in cfg.items()}
    c.setdefault("apply_b_dec_to_input", True)
    c.setdefault("architecture", "standard")
    norm = c.get("normalize_activations", "none")
    if isinstance(norm, bool):
        norm = "expected_average_only_in" if norm else "none"
    c["normalize_activations"] = norm or "none"
    if c.get("activation_fn") == "topk" and c["architecture"] == "standard":
        c["architecture"] = "topk"
        c["k"] = (c.get("activation_fn_kwargs") or {}).get("k")
    metadata_keys = ("hook_name", "model_name", "hook_head_index", "sae_lens_version")
    c["metadata"] = {k: c[k] for k in metadata_keys if k in c} | dict(c.get("metadata") or {})
    return c


def _parse_hook(name: str | None, path: Path) -> SAEHook:
    if not name:
        return SAEHook()
    m = _HOOK_RE.match(name)
    if not m:
        raise CheckpointError(
            f"{path}: SAE hook {name!r} is not a steerable vision-tower site",
            help=f"steerlang hooks blocks.<l>.hook_{{{','.join(SITE_KINDS)}}}",
        )
    return SAEHook(layer=int(m.group(1)), site=m.group(2))  # type: ignore[arg-type]


def _scaling_factor(directory: Path, cfg: dict[str, Any]) -> float | None:
    for key in ("norm_scaling_factor", "scaling_factor"):
        if isinstance(cfg.get(key), int | float):
            return float(cfg[key])
    scaler = directory / SCALER_FILE
    if scaler.is_file():
        doc = read_json(scaler)
        for key in ("scaling_factor", "norm_scaling_factor"):
            if isinstance(doc.get(key), int | float):
                return float(doc[key])
    return None


def read_saelens(directory: Path) -> SAEParts:
    cfg_path = directory / CFG_FILE
    raw = read_json(cfg_path)
    pre6 = is_pre_6(raw)
    cfg = _config(migrate_pre_6(raw) if pre6 else dict(raw), directory, pre6)
    wpath = directory / WEIGHTS_FILE
    tensors = read_safetensors(wpath)
    # Legacy feature scaling (`finetuning_scaling_factor`): a' = a * s, folded into W_dec.
    scale_t = tensors.pop("scaling_factor", None)
    expand_scalar_threshold(tensors, cfg.d_sae)
    tensors = validate_tensors(tensors, cfg, wpath)
    if scale_t is not None and not torch.allclose(scale_t, torch.ones_like(scale_t)):
        if tuple(scale_t.shape) != (cfg.d_sae,):
            raise CheckpointError(
                f"{wpath}: tensor 'scaling_factor' has shape {list(scale_t.shape)}"
            )
        tensors["W_dec"] = tensors["W_dec"] * scale_t[:, None].to(tensors["W_dec"].dtype)
    return SAEParts(cfg, tensors, source=directory)


def _config(c: dict[str, Any], directory: Path, pre6: bool) -> SAEConfig:
    """A (migrated) SAELens config -> SAEConfig; unsupported variants are refused by name."""
    cfg_path = directory / CFG_FILE
    meta = dict(c.get("metadata") or {})
    try:
        d_in, d_sae = int(c["d_in"]), int(c["d_sae"])
    except (KeyError, TypeError, ValueError):
        raise CheckpointError(
            f"{cfg_path}: d_in and d_sae must be integers",
            help="this is not a complete SAELens cfg.json",
        ) from None
    arch = c.get("architecture", "standard")
    if arch not in _ACTIVATIONS:
        raise CheckpointError(
            f"{cfg_path}: SAELens architecture {arch!r} is not supported",
            help="steerlang runs standard (ReLU), jumprelu and topk SAEs",
        )
    if c.get("reshape_activations", "none") not in ("none", None):
        raise CheckpointError(
            f"{cfg_path}: reshape_activations={c['reshape_activations']!r} (attention hook_z "
            "SAEs) is not supported",
            help="use an SAE trained on a residual, attn_out or mlp_out site",
        )
    if arch == "topk" and c.get("rescale_acts_by_decoder_norm"):
        raise CheckpointError(
            f"{cfg_path}: topk with rescale_acts_by_decoder_norm is not supported",
            help="fold the decoder norms with SAELens before exporting",
        )
    input_norm, norm_scale = _input_norm(c, directory)
    return SAEConfig(
        d_in=d_in,
        d_sae=d_sae,
        activation=_ACTIVATIONS[arch],  # type: ignore[arg-type]
        k=int(c.get("k") or 100) if arch == "topk" else None,  # SAELens' default k is 100
        pre_center=bool(c.get("apply_b_dec_to_input", False)),
        input_norm=input_norm,  # type: ignore[arg-type]
        norm_scale=norm_scale,
        hook=_parse_hook(meta.get("hook_name"), cfg_path).model_copy(
            update={"model": meta.get("model_name")}
        ),
        dtype=dtype_name(_torch_dtype(str(c.get("dtype") or "float32"), cfg_path)),
        metadata={"source_format": "saelens", "saelens_pre_6": pre6, "saelens": meta},
    )


def _input_norm(c: dict[str, Any], directory: Path) -> tuple[str, float]:
    """(input_norm, norm_scale) from `normalize_activations`; the scalar mode needs its factor."""
    cfg_path = directory / CFG_FILE
    norm_mode = c.get("normalize_activations") or "none"
    if norm_mode not in _INPUT_NORMS:
        raise CheckpointError(f"{cfg_path}: normalize_activations={norm_mode!r} is not supported")
    if norm_mode != "expected_average_only_in":
        return _INPUT_NORMS[norm_mode], 1.0
    factor = _scaling_factor(directory, c)
    if factor is None:
        raise CheckpointError(
            f"{cfg_path}: normalize_activations='expected_average_only_in' but no scaling "
            "factor is stored (cfg norm_scaling_factor or activation_scaler.json)",
            help="fold the factor into the weights with SAELens "
            "(fold_activation_norm_scaling_factor) and save again",
        )
    return _INPUT_NORMS[norm_mode], factor


def _torch_dtype(name: str, path: Path) -> torch.dtype:
    try:
        return parse_dtype(name)
    except CheckpointError as e:
        raise CheckpointError(f"{path}: {e.message}", help=e.help) from None


def save_saelens(sae: SAE, directory: Path) -> Path:
    """Write a SAELens v6 folder. A scalar input norm is folded into the weights (exact up to
    rounding), since SAELens keeps that factor outside the folder."""
    from safetensors.torch import save_file

    cfg = sae.cfg
    arch = {"relu": "standard", "jumprelu": "jumprelu", "topk": "topk"}[cfg.activation]
    norm = {
        "none": "none",
        "per_token_ln": "layer_norm",
        "constant_norm_rescale": "constant_norm_rescale",
        "scalar": "none",
    }[cfg.input_norm]
    tensors: dict[str, Tensor] = {k: v.detach().cpu().clone() for k, v in sae.tensors().items()}
    if cfg.input_norm == "scalar":
        s = cfg.norm_scale
        tensors["W_enc"] = tensors["W_enc"] * s
        tensors["W_dec"] = tensors["W_dec"] / s
        tensors["b_dec"] = tensors["b_dec"] / s  # (x*s - b)W = (x - b/s)(sW): same either way
    doc: dict[str, Any] = {
        "d_in": cfg.d_in,
        "d_sae": cfg.d_sae,
        "dtype": cfg.dtype,
        "device": "cpu",
        "architecture": arch,
        "apply_b_dec_to_input": cfg.pre_center,
        "normalize_activations": norm,
        "reshape_activations": "none",
        "metadata": {
            "sae_lens_version": WRITE_VERSION,
            "sae_lens_training_version": WRITE_VERSION,
            "model_name": cfg.hook.model,
            "hook_name": cfg.hook.hook_name,
            "hook_head_index": None,
        },
    }
    if arch == "topk":
        doc["k"] = cfg.k
        doc["rescale_acts_by_decoder_norm"] = False
    directory.mkdir(parents=True, exist_ok=True)
    contiguous = {k: v.contiguous() for k, v in tensors.items()}
    atomic_write_with(directory / WEIGHTS_FILE, lambda tmp: save_file(contiguous, tmp))
    atomic_write_json(directory / CFG_FILE, doc)
    return directory
