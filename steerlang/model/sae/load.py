"""SAE file formats: ours, SAELens, ViT-Prisma, Hugging Face Hub and zoo references.

Every loader converts into the canonical `SAE` (formats.md §1.1) and validates what it read:
shapes against `d_in`/`d_sae` (a transposed matrix is detected and explained), dtype, NaN/Inf,
truncated files. Pickles are only ever read with `torch.load(weights_only=True)`: a checkpoint
that would execute code while loading is refused, never run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from steerlang.errors import CheckpointError
from steerlang.model.sae.core import (
    CONFIG_FILE,
    SAE,
    SAE_FORMAT,
    SAE_SCHEMA_VERSION,
    WEIGHTS_FILE,
    SAEConfig,
    build_sae,
)

# ------------------------------------------------------------------------------ low-level reads


def read_json(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CheckpointError(f"{path}: file not found") from None
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read ({e})") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise CheckpointError(
            f"{path}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})",
            help="the file is truncated or corrupt; re-download or re-save it",
        ) from None
    if not isinstance(doc, dict):
        raise CheckpointError(f"{path}: expected a JSON object, found {type(doc).__name__}")
    return doc


def read_safetensors(path: Path) -> dict[str, Tensor]:
    """Load every tensor of a safetensors file on CPU, turning truncation into a clear error."""
    from safetensors import SafetensorError
    from safetensors.torch import safe_open

    if not path.is_file():
        raise CheckpointError(f"{path}: file not found")
    out: dict[str, Tensor] = {}
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            for name in f.keys():  # noqa: SIM118 - safe_open is not a mapping
                try:
                    out[name] = f.get_tensor(name)
                except (SafetensorError, RuntimeError, ValueError) as e:
                    raise CheckpointError(
                        f"{path}: tensor {name!r} cannot be read ({e})",
                        help="the file is truncated or corrupt; re-download or re-save it",
                    ) from None
    except CheckpointError:
        raise
    except (SafetensorError, RuntimeError, ValueError, OSError) as e:
        raise CheckpointError(
            f"{path}: not a readable safetensors file ({e})",
            help="the file is truncated or corrupt; re-download or re-save it",
        ) from None
    return out


# ------------------------------------------------------------------------------ validation


def validate_tensors(
    tensors: dict[str, Tensor], cfg: SAEConfig, source: Path | str
) -> dict[str, Tensor]:
    """Check canonical tensors against the config; explain transposes, NaN/Inf, dtype."""
    d, m = cfg.d_in, cfg.d_sae
    expected: dict[str, tuple[int, ...]] = {
        "W_enc": (d, m),
        "b_enc": (m,),
        "W_dec": (m, d),
        "b_dec": (d,),
    }
    if cfg.activation == "jumprelu":
        expected["threshold"] = (m,)
    for name, shape in expected.items():
        if name not in tensors:
            raise CheckpointError(
                f"{source}: tensor {name!r} is missing (found: {', '.join(sorted(tensors)) or 'none'})",
                help=f"a {cfg.activation} SAE needs {', '.join(expected)}",
            )
        t = tensors[name]
        got = tuple(t.shape)
        if got != shape:
            hint = f"expected {list(shape)} for d_in={d}, d_sae={m}"
            if len(shape) == 2 and got == shape[::-1]:
                hint = (
                    f"it looks transposed: expected {list(shape)} ([d_in, d_sae] for W_enc, "
                    f"[d_sae, d_in] for W_dec; activations multiply on the right)"
                )
            raise CheckpointError(f"{source}: tensor {name!r} has shape {list(got)}", help=hint)
        if not t.is_floating_point():
            raise CheckpointError(
                f"{source}: tensor {name!r} has non-float dtype {t.dtype}",
                help="SAE weights must be float32, float16 or bfloat16",
            )
        if not torch.isfinite(t).all():
            n_bad = int((~torch.isfinite(t)).sum())
            raise CheckpointError(
                f"{source}: tensor {name!r} contains {n_bad} NaN/Inf values",
                help="the checkpoint is corrupt or training diverged; use another checkpoint",
            )
    return {k: tensors[k] for k in expected}


# ------------------------------------------------------------------------------ our format


def is_ours(directory: Path) -> bool:
    if not (directory / CONFIG_FILE).is_file() or not (directory / WEIGHTS_FILE).is_file():
        return False
    try:
        doc = json.loads((directory / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return True  # let load_ours report the broken config
    return isinstance(doc, dict) and doc.get("format") == SAE_FORMAT


def load_ours(directory: Path, *, device: str | torch.device = "cpu", verify: bool = True) -> SAE:
    cfg_path = directory / CONFIG_FILE
    doc = read_json(cfg_path)
    if doc.get("format") != SAE_FORMAT:
        raise CheckpointError(
            f"{cfg_path}: not a steerlang SAE config (format={doc.get('format')!r})",
            help="load SAELens/ViT-Prisma folders with steerlang.model.sae.load.load_sae",
        )
    version = doc.get("schema_version")
    if version != SAE_SCHEMA_VERSION:
        raise CheckpointError(
            f"{cfg_path}: SAE schema version {version!r} is not supported "
            f"(this steerlang reads version {SAE_SCHEMA_VERSION})",
            help="upgrade steerlang or re-save the SAE with this version",
        )
    stored_hash = doc.pop("content_hash", None)
    doc.pop("format", None)
    try:
        cfg = SAEConfig.model_validate(doc)
    except ValueError as e:
        raise CheckpointError(f"{cfg_path}: invalid SAE config: {e}") from None
    wpath = directory / WEIGHTS_FILE
    tensors = validate_tensors(read_safetensors(wpath), cfg, wpath)
    sae = build_sae(cfg, tensors, device=device)
    if verify and stored_hash is not None and sae.content_hash() != stored_hash:
        raise CheckpointError(
            f"{directory}: content hash mismatch (config says {stored_hash}, "
            f"weights hash to {sae.content_hash()})",
            help="the weights file was modified or replaced after saving; re-save the SAE",
        )
    return sae


def save_sae(sae: SAE, directory: str | os.PathLike[str], *, format: str = "steerlang") -> Path:
    """Write `sae` in our format (`steerlang`) or as a SAELens folder (`saelens`)."""
    if format == "steerlang":
        return sae.save(directory)
    if format == "saelens":
        from steerlang.model.sae.saelens import save_saelens

        return save_saelens(sae, Path(directory))
    raise CheckpointError(
        f"unknown SAE output format {format!r}", help="use 'steerlang' or 'saelens'"
    )


def load_sae(
    ref: str | os.PathLike[str],
    *,
    device: str | torch.device = "cpu",
    allow_download: bool | None = None,
    cache_dir: str | None = None,
) -> SAE:
    """Resolve an SAE reference (folder path, `hf:REPO[/SUBPATH]`, `zoo:sae/L{l}/{site}`).

    The format of a folder is detected from its files (ours, SAELens, ViT-Prisma).
    `allow_download=None` lets `hf:` references download unless STEER_OFFLINE/HF_HUB_OFFLINE
    is set; `cache_dir` overrides the Hugging Face cache location.
    """
    s = str(ref)
    if s.startswith("hf:"):
        from steerlang.model.sae.hub import resolve_hf

        path = resolve_hf(s[3:], allow_download=allow_download, cache_dir=cache_dir)
        return load_sae_dir(path, device=device, ref=s)
    if s.startswith("zoo:"):
        return load_sae_dir(_zoo_dir(s), device=device, ref=s)
    return load_sae_dir(Path(s).expanduser(), device=device, ref=s)


def _zoo_dir(ref: str) -> Path:
    import re

    from steerlang.errors import SteerError

    m = re.fullmatch(r"zoo:sae/L(\d+)/(resid_post|resid_pre|attn_out|mlp_out)", ref)
    if not m:
        raise SteerError(
            f"unknown zoo SAE reference {ref!r}",
            help="write zoo:sae/L<layer>/<site>, e.g. zoo:sae/L7/resid_post",
        )
    try:
        from steerlang.zoo import zoo_sae_dir  # type: ignore[attr-defined]
    except ImportError:
        raise SteerError(
            "the zoo SAEs are not available in this installation (steerlang.zoo.zoo_sae_dir "
            "is missing)",
            help="build the zoo with `steer zoo build`, or reinstall steerlang",
        ) from None
    return Path(zoo_sae_dir(int(m.group(1)), m.group(2)))


def load_sae_dir(
    directory: Path, *, device: str | torch.device = "cpu", ref: str | None = None
) -> SAE:
    """Detect the on-disk format of an SAE folder and load it."""
    if not directory.exists():
        raise CheckpointError(
            f"SAE {ref or directory}: {directory} does not exist",
            help="check the path, or use hf:REPO or zoo:sae/L<layer>/<site>",
        )
    if directory.is_file():
        raise CheckpointError(
            f"SAE {ref or directory}: {directory} is a file; an SAE is a folder",
            help="pass the folder holding the config and the weights file",
        )
    if is_ours(directory):
        return load_ours(directory, device=device)
    from steerlang.model.sae import prisma, saelens

    if saelens.is_saelens(directory):
        return saelens.load_saelens(directory, device=device)
    if prisma.is_prisma(directory):
        return prisma.load_prisma(directory, device=device)
    listing = ", ".join(sorted(p.name for p in directory.iterdir())[:12]) or "empty"
    raise CheckpointError(
        f"SAE {ref or directory}: no known SAE format in {directory} (files: {listing})",
        help="expected config.json + sae.safetensors (steerlang), cfg.json + "
        "sae_weights.safetensors (SAELens), or config.json + a .pt state dict (ViT-Prisma)",
    )
