"""Site map for open_clip vision transformers, and activation capture.

A site is `(layer, kind)`, canonically named as in TransformerLens / ViT-Prisma
(`blocks.7.hook_resid_post`) so SAE configs and plans compare by string. Each name maps to an
open_clip module hook (docs/runtime.md, "Sites and token scopes"):

| site          | module hook                                     |
|---------------|-------------------------------------------------|
| resid_pre     | forward pre-hook on `transformer.resblocks[l]`  |
| attn_out      | forward hook on `resblocks[l].ls_1` (output)    |
| mlp_out       | forward hook on `resblocks[l].ls_2` (output)    |
| resid_post    | forward hook on `resblocks[l]` (output)         |

Other towers (open_clip timm ViTs such as SigLIP, Hugging Face CLIP / SigLIP) map the same
names onto their own blocks and branch modules (`steerlang.model.towers`).

Activations are always handed out batch-first `[N, L, D]`, whatever
`visual.transformer.batch_first` says (older open_clip checkpoints and configs run `[L, N, D]`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from steerlang.errors import SteerError
from steerlang.facts import SITE_KINDS, SITE_ORDER
from steerlang.model.towers import scope_for, tower_of
from steerlang.plan import SiteRef, TokenScope

_KINDS = "|".join(SITE_KINDS)
_HOOK_RE = re.compile(rf"^blocks\.(\d+)\.(?:hook_)?({_KINDS})$")
_SHORT_RE = re.compile(rf"^(?:L|layer)?(\d+)[:/.]({_KINDS})$")

SiteLike = SiteRef | str | tuple[int, str]


def parse_site(site: SiteLike) -> SiteRef:
    """`SiteRef`, `(7, 'resid_post')`, `'blocks.7.hook_resid_post'` or `'7:resid_post'` -> SiteRef."""
    if isinstance(site, SiteRef):
        return site
    if isinstance(site, tuple):
        layer, kind = site
        if kind not in SITE_KINDS:
            raise SteerError(
                f"unknown site kind {kind!r}", help=f"use one of {', '.join(SITE_KINDS)}"
            )
        return SiteRef(layer=int(layer), site=kind)  # type: ignore[arg-type]
    s = str(site).strip()
    m = _HOOK_RE.match(s) or _SHORT_RE.match(s)
    if not m:
        raise SteerError(
            f"cannot parse site name {s!r}",
            help="write it as blocks.<layer>.hook_<kind>, e.g. blocks.7.hook_resid_post "
            f"(kinds: {', '.join(SITE_KINDS)})",
        )
    return SiteRef(layer=int(m.group(1)), site=m.group(2))  # type: ignore[arg-type]


def resolve_visual(obj: Any) -> nn.Module:
    """A ClipHandle, a CLIP model or its vision tower -> the module that runs on pixels.

    Every tower of `steerlang.model.towers` is accepted (open_clip ViT, open_clip timm ViT,
    Hugging Face CLIP / SigLIP); `.visual` is checked before `.transformer` because a CLIP
    model's `.transformer` is the *text* tower.
    """
    return tower_of(obj)[0]


def is_batch_first(model: Any) -> bool:
    return tower_of(model)[1].batch_first


def site_module(model: Any, site: SiteLike) -> tuple[nn.Module, bool]:
    """The module to hook for `site` and whether the hook is a forward *pre*-hook."""
    ref = parse_site(site)
    tower = tower_of(model)[1]
    blocks = tower.blocks
    if not 0 <= ref.layer < len(blocks):
        raise SteerError(
            f"layer {ref.layer} does not exist: the model has {len(blocks)} blocks",
            help=f"use a layer in 0..{len(blocks) - 1}",
        )
    block = blocks[ref.layer]
    if ref.site == "resid_pre":
        return block, True
    if ref.site == "resid_post":
        return block, False
    name = tower.attn_name if ref.site == "attn_out" else tower.mlp_name
    mod = getattr(block, name, None)
    if mod is None:
        raise SteerError(
            f"block {ref.layer} ({type(block).__name__}) has no {name}; cannot hook {ref.hook_name}"
        )
    return mod, False


def token_index(tokens: TokenScope, n_tokens: int) -> slice | list[int]:
    """Token scope -> index along the token axis (cls = 0, patches = 1.., or explicit)."""
    if tokens == "all":
        return slice(None)
    if tokens == "cls":
        return slice(0, 1)
    if tokens == "patches":
        return slice(1, None)
    idx = [int(i) for i in tokens]
    bad = [i for i in idx if not -n_tokens <= i < n_tokens]
    if bad:
        raise SteerError(
            f"token indices {bad} out of range for {n_tokens} tokens",
            help=f"use indices in 0..{n_tokens - 1} (0 is the CLS token)",
        )
    return idx


def token_mask(tokens: TokenScope, n_tokens: int, device: torch.device | str = "cpu") -> Tensor:
    """Boolean [L] mask of the tokens in scope."""
    m = torch.zeros(n_tokens, dtype=torch.bool, device=device)
    m[token_index(tokens, n_tokens)] = True
    return m


# ------------------------------------------------------------------------------ site hooks


def add_site_hook(
    model: Any, site: SiteLike, fn: Callable[[Tensor], Tensor | None]
) -> RemovableHandle:
    """Install `fn(h_nld) -> replacement | None` at `site`; returns the removable handle.

    `fn` always sees a batch-first view `[N, L, D]`; a returned tensor (same layout) replaces
    the activation, `None` leaves it untouched. Both hook kinds and both layouts are handled
    here so capture and interventions share exactly one notion of a site.
    """
    mod, pre = site_module(model, site)
    batch_first = is_batch_first(model)

    def to_nld(h: Tensor) -> Tensor:
        return h if batch_first else h.transpose(0, 1)

    def from_nld(h: Tensor) -> Tensor:
        return h if batch_first else h.transpose(0, 1)

    if pre:

        def pre_hook(_mod: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
            if not args or not isinstance(args[0], Tensor):
                return None
            out = fn(to_nld(args[0]))
            if out is None:
                return None
            return (from_nld(out), *args[1:])

        return mod.register_forward_pre_hook(pre_hook)

    def post_hook(_mod: nn.Module, _args: tuple[Any, ...], output: Any) -> Any:
        if isinstance(output, tuple):  # defensive: blocks that return (x, extra)
            out = fn(to_nld(output[0]))
            return None if out is None else (from_nld(out), *output[1:])
        out = fn(to_nld(output))
        return None if out is None else from_nld(out)

    return mod.register_forward_hook(post_hook)


# ------------------------------------------------------------------------------ capture


class _StopForward(Exception):  # noqa: N818 - control flow, not an error
    """Raised by the last capture hook to skip the blocks nobody reads."""


@dataclass
class Capture:
    """Activations collected during the forward passes run inside `capture(...)`.

    `acts[hook_name]` is the latest batch `[N, L', D]`; `run(pixels)` runs the vision tower
    and returns that dict (it swallows the early-stop signal itself, so it is the way to use
    `stop_early=True` in a loop).
    """

    visual: nn.Module
    sites: list[SiteRef]
    acts: dict[str, Tensor] = field(default_factory=dict)

    def __getitem__(self, site: SiteLike) -> Tensor:
        name = parse_site(site).hook_name
        if name not in self.acts:
            raise KeyError(f"{name} was not captured in the last forward pass")
        return self.acts[name]

    def clear(self) -> None:
        self.acts.clear()

    def run(self, pixels: Tensor) -> dict[str, Tensor]:
        """Run the vision tower on `pixels` and return the captured activations."""
        self.acts = {}
        try:
            self.visual(pixels)
        except _StopForward:
            pass
        missing = [s.hook_name for s in self.sites if s.hook_name not in self.acts]
        if missing:
            raise SteerError(f"sites {missing} did not fire during the forward pass")
        return dict(self.acts)


def _site_order(ref: SiteRef) -> tuple[int, int]:
    """Execution order inside the forward: resid_pre < attn_out < mlp_out < resid_post."""
    return (ref.layer, SITE_ORDER.index(ref.site))


@contextmanager
def capture(
    model: Any,
    sites: Sequence[SiteLike],
    *,
    tokens: TokenScope = "all",
    stop_early: bool = False,
    detach: bool = True,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> Iterator[Capture]:
    """Collect batch-first activations at `sites` during forward passes inside the block.

    With `stop_early=True` the forward is cut after the last site is read (statistics passes
    then pay only for the blocks they need); use `Capture.run(pixels)`, or call the model
    yourself and let the context swallow the stop signal (the block's remaining statements
    are then skipped, so that style suits one forward per `with`). Hooks are removed on
    every exit path and only our own handles are touched.
    """
    visual, tower = tower_of(model)
    tokens = scope_for(tokens, tower.has_cls)
    refs = sorted({parse_site(s).hook_name: parse_site(s) for s in sites}.values(), key=_site_order)
    if not refs:
        raise SteerError("capture needs at least one site")
    cap = Capture(visual=visual, sites=refs)
    last = refs[-1].hook_name
    handles: list[RemovableHandle] = []

    def make(name: str) -> Callable[[Tensor], None]:
        def hook(h: Tensor) -> None:
            sel = h[:, token_index(tokens, h.shape[1])]
            if detach:
                sel = sel.detach()
            # Own the memory: a view of the live activation could be changed by later in-place
            # ops, and a [L, N, D] transpose view would stay non-contiguous.
            cap.acts[name] = sel.to(
                device=device or sel.device,
                dtype=dtype or sel.dtype,
                memory_format=torch.contiguous_format,
                copy=True,
            )
            if stop_early and name == last:
                raise _StopForward
            return None

        return hook

    try:
        for ref in refs:
            handles.append(add_site_hook(visual, ref, make(ref.hook_name)))
        yield cap
    except _StopForward:
        pass
    finally:
        for h in handles:
            h.remove()
