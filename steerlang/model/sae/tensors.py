"""Reading checkpoint files safely, and checking the tensors read against an SAE config.

Every reader here turns a missing, truncated or corrupt file into a `CheckpointError` naming the
file (and the tensor). Pickles are only ever read with `torch.load(weights_only=True)`: a
checkpoint that would execute code while loading is refused, never run. The SAE file formats,
the CLIP checkpoint loader and the trainer's checkpoints share these readers; this module
imports nothing else from the SAE package, so every format can use it.
"""

from __future__ import annotations

import json
import pickle
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from steerlang.errors import CheckpointError

if TYPE_CHECKING:
    from steerlang.model.sae.core import SAEConfig

_CORRUPT = "the file is truncated or corrupt; re-download or re-save it"


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from `path`; a missing, unreadable or malformed file is a CheckpointError."""
    _require_file(path)
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
            f"{path}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})", help=_CORRUPT
        ) from None
    if not isinstance(doc, dict):
        raise CheckpointError(f"{path}: expected a JSON object, found {type(doc).__name__}")
    return doc


def read_safetensors(path: Path) -> dict[str, Tensor]:
    """Load every tensor of a safetensors file on CPU, turning truncation into a clear error."""
    from safetensors import SafetensorError
    from safetensors.torch import safe_open

    _require_file(path)
    out: dict[str, Tensor] = {}
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            for name in f.keys():  # noqa: SIM118 - safe_open is not a mapping
                try:
                    out[name] = f.get_tensor(name)
                except (SafetensorError, RuntimeError, ValueError) as e:
                    raise CheckpointError(
                        f"{path}: tensor {name!r} cannot be read ({e})", help=_CORRUPT
                    ) from None
    except CheckpointError:
        raise
    except (SafetensorError, RuntimeError, ValueError, OSError) as e:
        raise CheckpointError(
            f"{path}: not a readable safetensors file ({e})", help=_CORRUPT
        ) from None
    return out


def _require_file(path: Path) -> None:
    """A folder where a file should be is named as such (not "not found")."""
    if path.is_dir():
        raise CheckpointError(
            f"{path}: is a folder, expected a file",
            help=f"{path.name} must be the file itself; move or rename the folder",
        )
    if not path.exists():
        raise CheckpointError(f"{path}: file not found")


def safe_torch_load(path: Path) -> Any:
    """torch.load(weights_only=True) with every failure turned into a CheckpointError."""
    _require_file(path)
    if path.stat().st_size == 0:
        raise CheckpointError(
            f"{path}: cannot read this checkpoint (the file is empty, 0 bytes)",
            help="the file is truncated or corrupt; re-download it",
        )
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
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, IndexError) as e:
        # An empty file fails inside torch with an empty message: name the size instead.
        size = path.stat().st_size if path.is_file() else None
        detail = first_line(e) if size else "the file is empty (0 bytes)"
        raise CheckpointError(
            f"{path}: cannot read this checkpoint ({detail})",
            help="the file is truncated or corrupt; re-download it",
        ) from None


def first_line(e: BaseException) -> str:
    """The first line of an exception's message (its type name when the message is empty)."""
    lines = str(e).strip().splitlines()
    return lines[0][:200] if lines else type(e).__name__


def expand_scalar_threshold(tensors: dict[str, Tensor], d_sae: int) -> None:
    """Some JumpReLU checkpoints store one threshold for every latent: widen it to [d_sae]."""
    t = tensors.get("threshold")
    if t is not None and t.ndim == 0:
        tensors["threshold"] = t.expand(d_sae).clone()


def validate_tensors(
    tensors: dict[str, Tensor], cfg: SAEConfig, source: Path | str
) -> dict[str, Tensor]:
    """The canonical tensors of `cfg`, checked: present, shaped for `d_in`/`d_sae` (a transposed
    matrix is named as such), floating point, finite. Extra tensors are dropped."""
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
        _check_tensor(name, tensors[name], shape, cfg, source)
    return {k: tensors[k] for k in expected}


def _check_tensor(
    name: str, t: Tensor, shape: tuple[int, ...], cfg: SAEConfig, source: Path | str
) -> None:
    got = tuple(t.shape)
    if got != shape:
        hint = f"expected {list(shape)} for d_in={cfg.d_in}, d_sae={cfg.d_sae}"
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
