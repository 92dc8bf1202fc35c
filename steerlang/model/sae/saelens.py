"""SAELens folder format: `cfg.json` + `sae_weights.safetensors`.

Reads v6 configs and migrates pre-6.0 flat configs the way SAELens does (renamed keys,
`apply_b_dec_to_input` defaulting to true, boolean `normalize_activations`, `activation_fn`
"topk" -> architecture "topk"). A key a config leaves out takes SAELens' own default
(`SAELENS_DEFAULTS`, checked against SAELens' config classes in tests/model/test_saelens_real.py).
Architectures: standard (ReLU), jumprelu, topk (BatchTopK SAEs are saved for inference as
jumprelu). A TopK SAE with `rescale_acts_by_decoder_norm` ranks `pre * |W_dec row|` and decodes
`a / |W_dec row|`; that is the same function as an SAE with the norms folded into the encoder
(`fold_decoder_norms`), which is what we build. Writes v6, with the token scope in the metadata.
SAELens stores tensors in the canonical orientation (`W_enc [d_in, d_sae]`).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from steerlang.errors import CheckpointError
from steerlang.facts import SITE_KINDS
from steerlang.files import atomic_write_json, atomic_write_with
from steerlang.model.sae.core import (
    SAE,
    SAEConfig,
    SAEHook,
    SAEParts,
    checked_config,
    dtype_name,
    parse_dtype,
)
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

# SAELens' config defaults (sae_lens.saes.sae.SAEConfig and the per-architecture subclasses),
# applied to the keys a cfg.json leaves out. "common" holds the base class's fields.
SAELENS_DEFAULTS: dict[str, dict[str, Any]] = {
    "common": {
        "dtype": "float32",
        "apply_b_dec_to_input": True,
        "normalize_activations": "none",
        "reshape_activations": "none",
    },
    "standard": {},
    "jumprelu": {},
    "topk": {"k": 100, "rescale_acts_by_decoder_norm": False},
}
# The metadata key our writer keeps the token scope under (SAELens metadata is free-form).
TOKEN_SCOPE_KEY = "steerlang_token_scope"

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


def near_miss(directory: Path) -> str | None:
    """Why a folder holding this format's file names is not read as it (None: not close)."""
    cfg, weights = directory / CFG_FILE, directory / WEIGHTS_FILE
    if cfg.exists() and weights.exists():
        bad = [p.name for p in (cfg, weights) if not p.is_file()]
        return f"{' and '.join(bad)} is a folder, not a file" if bad else None
    if cfg.is_file() and not weights.exists():
        others = sorted(p.name for p in directory.glob("*.safetensors"))
        if others:
            return f"{CFG_FILE} is there but the weights are {', '.join(others)}; rename to {WEIGHTS_FILE}"
    return None


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
    kwargs = c.get("activation_fn_kwargs") or {}
    if c.get("activation_fn") == "topk" and not isinstance(kwargs, dict):
        raise CheckpointError(
            f'activation_fn_kwargs must be an object such as {{"k": 32}}, found {kwargs!r}',
            help="a pre-6.0 SAELens topk config keeps k in activation_fn_kwargs",
        )
    if c.get("activation_fn") == "topk" and kwargs.get("k") is not None:
        c["architecture"] = "topk"
        c["k"] = kwargs["k"]
    metadata_keys = ("hook_name", "model_name", "hook_head_index", "sae_lens_version")
    c["metadata"] = {k: c[k] for k in metadata_keys if k in c} | dict(c.get("metadata") or {})
    return c


def _parse_hook(name: Any, path: Path) -> SAEHook:
    if not name:
        return SAEHook()
    m = _HOOK_RE.match(name) if isinstance(name, str) else None
    if not m:
        raise CheckpointError(
            f"{path}: SAE hook {name!r} is not a steerable vision-tower site",
            help=f"steerlang hooks blocks.<l>.hook_{{{','.join(SITE_KINDS)}}}",
        )
    return SAEHook(layer=int(m.group(1)), site=m.group(2))  # type: ignore[arg-type]


def _scaling_factor(directory: Path, cfg: dict[str, Any]) -> float | None:
    for key in ("norm_scaling_factor", "scaling_factor"):
        if cfg.get(key) is not None:
            return _positive_factor(cfg[key], directory / CFG_FILE, key)
    scaler = directory / SCALER_FILE
    if scaler.is_file():
        doc = read_json(scaler)
        for key in ("scaling_factor", "norm_scaling_factor"):
            if doc.get(key) is not None:
                return _positive_factor(doc[key], scaler, key)
    return None


def _positive_factor(value: Any, path: Path, key: str) -> float:
    """A stored normalisation factor: a finite number > 0, else an error naming the key."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        ok = False
    else:
        ok = value > 0
    if not ok:
        raise CheckpointError(
            f"{path}: {key}={value!r} is not a finite number > 0",
            help=f"the factor the activations were multiplied by in training; fix {key} in "
            f"{path.name} (e.g. from the training run's activation statistics) or fold it into "
            "the weights with SAELens (fold_activation_norm_scaling_factor) and save again",
        )
    return float(value)


def read_saelens(directory: Path) -> SAEParts:
    cfg_path = directory / CFG_FILE
    raw = read_json(cfg_path)
    pre6 = is_pre_6(raw)
    try:
        migrated = migrate_pre_6(raw) if pre6 else dict(raw)
    except CheckpointError as e:
        raise CheckpointError(f"{cfg_path}: {e.message}", help=e.help) from None
    cfg = _config(migrated, directory, pre6)
    wpath = directory / WEIGHTS_FILE
    tensors = read_safetensors(wpath)
    # Legacy feature scaling (`finetuning_scaling_factor`): a' = a * s, folded into W_dec.
    scale_t = tensors.pop("scaling_factor", None)
    expand_scalar_threshold(tensors, cfg.d_sae)
    tensors = validate_tensors(tensors, cfg, wpath)
    if cfg.metadata.get("saelens_rescale_acts_by_decoder_norm"):
        fold_decoder_norms(tensors)
    if scale_t is not None and not torch.allclose(scale_t, torch.ones_like(scale_t)):
        if tuple(scale_t.shape) != (cfg.d_sae,):
            raise CheckpointError(
                f"{wpath}: tensor 'scaling_factor' has shape {list(scale_t.shape)}"
            )
        tensors["W_dec"] = tensors["W_dec"] * scale_t[:, None].to(tensors["W_dec"].dtype)
    return SAEParts(cfg, tensors, source=directory)


def fold_decoder_norms(tensors: dict[str, Tensor]) -> None:
    """Fold |W_dec row| into the encoder in place (TopK with rescale_acts_by_decoder_norm).

    SAELens ranks and keeps pre·n (n = the decoder row norms) and decodes (a/n)·W_dec; with
    W_enc·n, b_enc·n and W_dec/n the plain TopK SAE computes the same. A zero row (n = 0) has
    pre·n = 0 and contributes nothing either way: its encoder column becomes zero and its
    decoder row stays zero.
    """
    n = tensors["W_dec"].norm(dim=-1)
    safe = torch.where(n > 0, n, torch.ones_like(n))
    tensors["W_enc"] = tensors["W_enc"] * n[None, :]
    tensors["b_enc"] = tensors["b_enc"] * n
    tensors["W_dec"] = tensors["W_dec"] / safe[:, None]


def _with_defaults(c: dict[str, Any], cfg_path: Path) -> dict[str, Any]:
    """The config with SAELens' defaults for the keys it leaves out (`SAELENS_DEFAULTS`)."""
    arch = c.get("architecture", "standard")
    if not isinstance(arch, str):
        raise CheckpointError(
            f"{cfg_path}: architecture must be a string, found {arch!r}",
            help=f'set "architecture" to one of {", ".join(repr(a) for a in _ACTIVATIONS)}',
        )
    if arch not in _ACTIVATIONS:
        raise CheckpointError(
            f"{cfg_path}: SAELens architecture {arch!r} is not supported",
            help="steerlang runs standard (ReLU), jumprelu, topk and batchtopk SAEs",
        )
    base = SAELENS_DEFAULTS["common"] | SAELENS_DEFAULTS.get(arch, {})
    return base | {k: v for k, v in c.items() if v is not None or k not in base}


def _int_key(c: dict[str, Any], key: str, cfg_path: Path, help: str) -> int:
    v = c.get(key)
    if isinstance(v, bool) or not isinstance(v, int | float) or v != int(v) or v <= 0:
        raise CheckpointError(
            f"{cfg_path}: {key} must be a positive integer, found {v!r}", help=help
        )
    return int(v)


def _bool_key(c: dict[str, Any], key: str, cfg_path: Path) -> bool:
    v = c.get(key)
    if not isinstance(v, bool):
        raise CheckpointError(
            f"{cfg_path}: {key} must be true or false, found {v!r}",
            help=f'set "{key}" to true or false in {cfg_path.name}',
        )
    return v


def _config(c: dict[str, Any], directory: Path, pre6: bool) -> SAEConfig:
    """A (migrated) SAELens config -> SAEConfig; unsupported variants are refused by name."""
    cfg_path = directory / CFG_FILE
    meta = c.get("metadata") or {}
    if not isinstance(meta, dict):
        raise CheckpointError(
            f"{cfg_path}: metadata must be an object, found {type(meta).__name__}",
            help="metadata holds hook_name, model_name, ...",
        )
    meta = dict(meta)
    c = _with_defaults(c, cfg_path)
    arch = c["architecture"] if "architecture" in c else "standard"
    whole = "this is not a complete SAELens cfg.json"
    d_in = _int_key(c, "d_in", cfg_path, whole)
    d_sae = _int_key(c, "d_sae", cfg_path, whole)
    if c.get("reshape_activations", "none") not in ("none", None):
        raise CheckpointError(
            f"{cfg_path}: reshape_activations={c['reshape_activations']!r} (attention hook_z "
            "SAEs) is not supported",
            help="use an SAE trained on a residual, attn_out or mlp_out site",
        )
    rescale = arch == "topk" and _bool_key(c, "rescale_acts_by_decoder_norm", cfg_path)
    k = None
    if arch == "topk":
        k = _int_key(c, "k", cfg_path, f"k is how many latents a token keeps (<= d_sae={d_sae})")
        if k > d_sae:
            raise CheckpointError(
                f"{cfg_path}: k={k} is larger than d_sae={d_sae}",
                help="k is how many latents each token keeps; it must be at most d_sae",
            )
    input_norm, norm_scale = _input_norm(c, directory)
    hook = _parse_hook(meta.get("hook_name"), cfg_path)
    model_name = meta.get("model_name")
    hook = hook.model_copy(
        update={
            "model": model_name if isinstance(model_name, str) else None,
            "tokens": _token_scope(meta, cfg_path),
        }
    )
    return checked_config(
        cfg_path,
        d_in=d_in,
        d_sae=d_sae,
        activation=_ACTIVATIONS[arch],  # type: ignore[arg-type]
        k=k,
        pre_center=_bool_key(c, "apply_b_dec_to_input", cfg_path),
        input_norm=input_norm,  # type: ignore[arg-type]
        norm_scale=norm_scale,
        hook=hook,
        dtype=dtype_name(_torch_dtype(str(c.get("dtype") or "float32"), cfg_path)),
        metadata={
            "source_format": "saelens",
            "saelens_pre_6": pre6,
            "saelens_rescale_acts_by_decoder_norm": rescale,
            "saelens": meta,
        },
    )


def _token_scope(meta: dict[str, Any], cfg_path: Path) -> str:
    """The token scope our writer stores (or ViT-Prisma's flags, as its conversions keep them)."""
    scope = meta.get(TOKEN_SCOPE_KEY)
    if scope is None:
        if meta.get("cls_token_only"):
            return "cls"
        return "patches" if meta.get("use_patches_only") else "all"
    if scope not in ("all", "cls", "patches"):
        raise CheckpointError(
            f"{cfg_path}: metadata.{TOKEN_SCOPE_KEY}={scope!r} is not a token scope",
            help='use "all", "cls" or "patches"',
        )
    return str(scope)


def _input_norm(c: dict[str, Any], directory: Path) -> tuple[str, float]:
    """(input_norm, norm_scale) from `normalize_activations`; the scalar mode needs its factor."""
    cfg_path = directory / CFG_FILE
    norm_mode = c.get("normalize_activations") or "none"
    if not isinstance(norm_mode, str) or norm_mode not in _INPUT_NORMS:
        raise CheckpointError(
            f"{cfg_path}: normalize_activations={norm_mode!r} is not supported",
            help=f"steerlang reads {', '.join(repr(m) for m in _INPUT_NORMS)}",
        )
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
            TOKEN_SCOPE_KEY: cfg.hook.tokens,
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
