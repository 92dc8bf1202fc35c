"""The zoo's tiny CLIP: an open_clip model config, and safetensors weights in a compact form.

The config `steer-tiny-clip` is an ordinary open_clip ViT CLIP (12 vision blocks, so recipes
written for ViT-B-32 layer numbers run unchanged; width 128; 64×64 images in 16×16 patches,
i.e. a 4×4 grid + CLS = 17 tokens; a 4-layer text tower on open_clip's default BPE tokenizer).
It is registered with `open_clip.add_model_config`, so `open_clip.create_model('steer-tiny-clip')`
works once `register_config()` ran.

Weights file: every tensor of the open_clip state dict in fp16, except the text token
embedding: SynthWorld uses ~100 of the tokenizer's 49,408 tokens, so only those rows are stored
(`text_token_ids` + `text_token_rows`) and the rest load as zeros (they were never trained).
That keeps the file small without changing the architecture or the tokenizer.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from steerlang.errors import CheckpointError
from steerlang.facts import MODEL_DEPTHS

ZOO_MODEL_NAME = "steer-tiny-clip"
CONFIG_PATH = Path(__file__).with_name(f"{ZOO_MODEL_NAME}.json")
WEIGHTS_DIR = Path(__file__).with_name("weights")
CARD_FILE = "zoo_card.json"  # the model card `steer zoo build` writes next to the weights
N_LAYERS = MODEL_DEPTHS["zoo:tiny-clip"]  # vision blocks, one shipped SAE each
CLIP_WEIGHTS_FILE = "tiny_clip.safetensors"
_EMB = "token_embedding.weight"
_IDS = "text_token_ids"
_ROWS = "text_token_rows"


def register_config() -> None:
    """Make `steer-tiny-clip` known to open_clip (idempotent)."""
    import open_clip

    if ZOO_MODEL_NAME not in open_clip.list_models():
        open_clip.add_model_config(CONFIG_PATH)


class _RandomInitNotice(logging.Filter):
    """Drops open_clip's "No pretrained weights loaded for model 'steer-tiny-clip'. Model
    initialized randomly." warning: the zoo model is created without pretrained weights on
    purpose, and its weights are loaded right after (steerlang/zoo/__init__.py) or trained
    (steerlang/training/zoo/train.py), so the warning is false on every zoo command. Only that
    message, for this model, during this call; every other record passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        return not (msg.startswith("No pretrained weights loaded") and f"'{ZOO_MODEL_NAME}'" in msg)


def create_model(device: str = "cpu") -> Any:
    """A randomly initialised tiny CLIP (fp32) and its eval preprocess."""
    import open_clip

    register_config()
    notice = _RandomInitNotice()
    # open_clip's factory logs through the root logger (`logging.warning`).
    root = logging.getLogger()
    root.addFilter(notice)
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(ZOO_MODEL_NAME, device=device)
    finally:
        root.removeFilter(notice)
    return model, preprocess


def get_tokenizer() -> Any:
    import open_clip

    register_config()
    return open_clip.get_tokenizer(ZOO_MODEL_NAME)


def compact_state_dict(model: Any, used_token_ids: list[int]) -> dict[str, Any]:
    """fp16 state dict with only the used rows of the text token embedding."""
    import torch

    sd = {k: v.detach().to("cpu") for k, v in model.state_dict().items()}
    emb = sd.pop(_EMB)
    ids = torch.tensor(sorted(set(used_token_ids)), dtype=torch.int64)
    out = {
        k: v.half().contiguous() if v.is_floating_point() else v.contiguous() for k, v in sd.items()
    }
    out[_IDS] = ids
    out[_ROWS] = emb[ids].half().contiguous()
    return out


def save_weights(
    model: Any, used_token_ids: list[int], path: Path, metadata: dict[str, str]
) -> Path:
    """Write the compact fp16 safetensors atomically (temp file + os.replace)."""
    import os

    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file(compact_state_dict(model, used_token_ids), str(tmp), metadata=metadata)
    os.replace(tmp, path)
    return path


def load_weights(model: Any, path: Path) -> dict[str, str]:
    """Load a compact zoo checkpoint into `model` (fp32); returns the file's metadata.

    safetensors only: no pickled code can run. A missing, truncated or mismatched file raises
    `CheckpointError` naming the file and the fix.
    """
    import torch
    from safetensors import safe_open

    path = Path(path)
    rebuild = "rebuild it with `steer zoo build` (or reinstall steerlang)"
    if not path.is_file():
        raise CheckpointError(f"zoo CLIP weights not found: {path}", help=rebuild)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open API
    except Exception as e:  # safetensors raises several types for truncated/corrupt headers
        raise CheckpointError(f"cannot read zoo CLIP weights {path}: {e}", help=rebuild) from e
    if _IDS not in tensors or _ROWS not in tensors:
        raise CheckpointError(f"{path} is not a zoo CLIP checkpoint (no {_IDS})", help=rebuild)
    own = model.state_dict()
    emb = torch.zeros_like(own[_EMB])
    ids, rows = tensors.pop(_IDS).long(), tensors.pop(_ROWS)
    if rows.shape[1:] != emb.shape[1:] or ids.max().item() >= emb.shape[0]:
        raise CheckpointError(
            f"{path}: token embedding does not fit {ZOO_MODEL_NAME}", help=rebuild
        )
    emb[ids] = rows.to(emb.dtype)
    tensors[_EMB] = emb
    missing = sorted(set(own) - set(tensors))
    unexpected = sorted(set(tensors) - set(own))
    if missing or unexpected:
        raise CheckpointError(
            f"{path} does not match the {ZOO_MODEL_NAME} config "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]})",
            help=rebuild,
        )
    for k, v in tensors.items():
        if tuple(v.shape) != tuple(own[k].shape):
            raise CheckpointError(
                f"{path}: tensor {k} has shape {tuple(v.shape)}, expected {tuple(own[k].shape)}",
                help=rebuild,
            )
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in tensors.items()})
    return meta
