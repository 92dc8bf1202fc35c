"""steerlang's own SAE folder format: `config.json` + `sae.safetensors`.

`config.json` holds `"format": "steerlang-sae"`, every `SAEConfig` field (with its
`schema_version`) and the SAE's content hash, which is verified on load so a weights file
replaced after saving is caught. The tensors are stored canonically (`W_enc [d_in, d_sae]`,
`W_dec [d_sae, d_in]`), so reading needs no conversion.
"""

from __future__ import annotations

import json
from pathlib import Path

from steerlang.errors import CheckpointError, validation_summary
from steerlang.files import atomic_write_json, atomic_write_with
from steerlang.model.sae.core import SAE, SAE_SCHEMA_VERSION, SAEConfig, SAEParts
from steerlang.model.sae.tensors import read_json, read_safetensors, validate_tensors

FORMAT = "steerlang-sae"
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "sae.safetensors"


def is_native(directory: Path) -> bool:
    if not (directory / CONFIG_FILE).is_file() or not (directory / WEIGHTS_FILE).is_file():
        return False
    try:
        doc = json.loads((directory / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return True  # let read_native report the broken config
    return isinstance(doc, dict) and doc.get("format") == FORMAT


def near_miss(directory: Path) -> str | None:
    """Why a folder holding this format's file names is not read as it (None: not close)."""
    cfg, weights = directory / CONFIG_FILE, directory / WEIGHTS_FILE
    if not (cfg.exists() and weights.exists()):
        return None
    for p in (cfg, weights):
        if not p.is_file():
            return f"{p.name} is a folder, not a file"
    try:
        doc = json.loads(cfg.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if isinstance(doc, dict) and doc.get("format") != FORMAT:
        hint = (
            "; it looks like a SAELens config: rename it to cfg.json and the weights to "
            "sae_weights.safetensors"
            if {"d_in", "d_sae"} <= set(doc)
            else ""
        )
        return f'{CONFIG_FILE} has no "format": "{FORMAT}" (found {doc.get("format")!r}){hint}'
    return None


def read_native(directory: Path) -> SAEParts:
    cfg_path = directory / CONFIG_FILE
    doc = read_json(cfg_path)
    if doc.get("format") != FORMAT:
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
        raise CheckpointError(
            validation_summary(e, f"{cfg_path}: invalid SAE config")
            if hasattr(e, "errors")
            else f"{cfg_path}: invalid SAE config: {e}",
            help="re-save the SAE with steerlang, or fix the key named above in config.json",
        ) from None
    wpath = directory / WEIGHTS_FILE
    tensors = validate_tensors(read_safetensors(wpath), cfg, wpath)
    return SAEParts(cfg, tensors, source=directory, claimed_hash=stored_hash)


def save_native(sae: SAE, directory: Path) -> Path:
    """Write `sae.safetensors` + `config.json` (schema version, content hash).

    Each file is written to a temp name and renamed into place, so an interrupted save never
    leaves a half-written checkpoint under the final names.
    """
    from safetensors.torch import save_file

    directory.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous().cpu() for k, v in sae.tensors().items()}
    atomic_write_with(
        directory / WEIGHTS_FILE, lambda tmp: save_file(tensors, tmp, metadata={"format": FORMAT})
    )
    doc = {
        "format": FORMAT,
        **sae.cfg.model_dump(mode="json"),
        "content_hash": sae.content_hash(),
    }
    atomic_write_json(directory / CONFIG_FILE, doc)
    return directory
