"""The vision towers steerlang can hook, described the same way (docs/models.md).

Every supported tower is a stack of pre-norm transformer blocks `h + attn(...)`, `h + mlp(...)`;
what differs is where the blocks live and what the attention / MLP branches are called:

| tower                                      | blocks                          | attn_out, mlp_out | CLS |
|--------------------------------------------|---------------------------------|-------------------|-----|
| open_clip VisionTransformer (CLIP, CLIPA)  | `transformer.resblocks`         | `ls_1`, `ls_2`    | yes |
| open_clip timm tower, timm VisionTransformer (SigLIP, SigLIP 2) | `trunk.blocks` | `ls1`, `ls2` | per model (`num_prefix_tokens`; SigLIP: none) |
| Hugging Face CLIP / SigLIP vision model    | `encoder.layers`                | `self_attn`, `mlp` | CLIP yes, SigLIP no |

`Tower` is what sites, capture and the steering hooks use, so a site name
(`blocks.7.hook_resid_post`) means the same residual stream in every tower. Token scopes: with
a CLS token it is index 0 and `patches` are 1..; without one every token is a patch (`cls` is an
error, `patches` is every token) — `scope_for` applies that.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from torch import nn

from steerlang.errors import SteerError
from steerlang.plan import TokenScope

SUPPORTED = (
    "open_clip ViT towers (ViT-*, including -quickgelu and CLIPA), open_clip timm ViT towers "
    "(SigLIP, SigLIP 2: ViT-*-SigLIP*), and Hugging Face CLIP / SigLIP vision models (hf:ORG/NAME)"
)


@dataclass(frozen=True)
class Tower:
    """Where a vision tower's blocks are and how its tokens are laid out."""

    kind: str  # "open_clip", "timm" or "hf"
    blocks: Sequence[nn.Module]
    attn_name: str  # submodule of a block whose output is the attention branch (attn_out)
    mlp_name: str  # ... and the MLP branch (mlp_out)
    batch_first: bool
    prefix_tokens: int  # tokens before the patch grid: 1 = a CLS token at index 0, 0 = none
    grid_size: tuple[int, int]
    width: int
    image_size: int

    @property
    def has_cls(self) -> bool:
        return self.prefix_tokens > 0

    @property
    def n_tokens(self) -> int:
        return self.grid_size[0] * self.grid_size[1] + self.prefix_tokens


def _pair(v: Any) -> tuple[int, int]:
    if isinstance(v, tuple | list):
        return int(v[0]), int(v[-1])
    return int(v), int(v)


def find_tower(obj: Any) -> tuple[nn.Module, Tower] | None:
    """(the module to run on pixels, its Tower) for a ClipHandle, a CLIP model or a tower."""
    for attr in ("visual", "model"):
        inner = getattr(obj, attr, None)
        if isinstance(inner, nn.Module) and inner is not obj:
            found = find_tower(inner)
            if found is not None:
                return found
    if not isinstance(obj, nn.Module):
        return None
    tr = getattr(obj, "transformer", None)
    if tr is not None and hasattr(tr, "resblocks"):
        return obj, Tower(
            kind="open_clip",
            blocks=tr.resblocks,
            attn_name="ls_1",
            mlp_name="ls_2",
            batch_first=bool(getattr(tr, "batch_first", True)),
            prefix_tokens=1,
            grid_size=_pair(obj.grid_size),
            width=int(tr.width),
            image_size=_pair(obj.image_size)[0],
        )
    trunk = getattr(obj, "trunk", None)
    if trunk is not None:
        return obj, _timm_tower(trunk, getattr(obj, "image_size", None))
    if _is_timm_vit(obj):
        return obj, _timm_tower(obj, None)
    enc = getattr(obj, "encoder", None)
    if enc is not None and hasattr(enc, "layers") and hasattr(obj, "embeddings"):
        return obj, _hf_tower(obj)
    return None


def _is_timm_vit(m: nn.Module) -> bool:
    try:
        from timm.models.vision_transformer import VisionTransformer
    except ImportError:  # pragma: no cover - timm comes with open_clip
        return False
    return isinstance(m, VisionTransformer)


def _timm_tower(trunk: nn.Module, image_size: Any) -> Tower:
    if not _is_timm_vit(trunk):
        raise SteerError(
            f"the open_clip timm tower {type(trunk).__name__} is not a ViT steerlang can hook",
            help=f"supported: {SUPPORTED}",
        )
    pe = trunk.patch_embed  # type: ignore[attr-defined]
    grid = _pair(pe.grid_size)
    size = image_size if image_size is not None else pe.img_size
    return Tower(
        kind="timm",
        blocks=trunk.blocks,  # type: ignore[arg-type]
        attn_name="ls1",
        mlp_name="ls2",
        batch_first=True,
        prefix_tokens=int(trunk.num_prefix_tokens),  # type: ignore[arg-type]
        grid_size=grid,
        width=int(trunk.embed_dim),  # type: ignore[arg-type]
        image_size=_pair(size)[0],
    )


def _hf_tower(vt: nn.Module) -> Tower:
    cfg = vt.config  # type: ignore[attr-defined]
    side = int(cfg.image_size) // int(cfg.patch_size)
    # HF CLIP prepends a class embedding; SigLIP has none (it pools with an attention head).
    has_cls = hasattr(vt.embeddings, "class_embedding")  # type: ignore[union-attr]
    return Tower(
        kind="hf",
        blocks=vt.encoder.layers,  # type: ignore[union-attr]
        attn_name="self_attn",
        mlp_name="mlp",
        batch_first=True,
        prefix_tokens=1 if has_cls else 0,
        grid_size=(side, side),
        width=int(cfg.hidden_size),
        image_size=int(cfg.image_size),
    )


def tower_of(obj: Any) -> tuple[nn.Module, Tower]:
    """Like `find_tower`, with a SteerError naming what is supported when nothing fits."""
    found = find_tower(obj)
    if found is None:
        raise SteerError(
            f"{type(obj).__name__} is not a vision tower steerlang can hook",
            help=f"pass a ClipHandle from steerlang.model.clip.load_model or a model of: "
            f"{SUPPORTED}",
        )
    return found


def scope_for(tokens: TokenScope, has_cls: bool) -> TokenScope:
    """A token scope as the tower lays its tokens out: unchanged with a CLS token; without one,
    `patches` is every token and `cls` is an error."""
    if has_cls or isinstance(tokens, list | tuple):
        return tokens
    if tokens == "cls":
        raise SteerError(
            "this model has no CLS token (its vision tower pools the patch tokens)",
            help="use tokens patches (every token of this model is a patch) or explicit indices",
        )
    return "all" if tokens == "patches" else tokens
