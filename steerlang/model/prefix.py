"""Shared-prefix evaluation: run the blocks before the first steered site once per batch.

Evaluation embeds every batch twice, unsteered and steered. The blocks before the first block a
plan hooks compute the same thing both times, so the unsteered forward records the input of
that block (`SharedPrefix.capture`), and the steered forward replays it (`SharedPrefix.replay`):
the first block of the vision transformer is swapped for one that returns the recorded tensor,
the others before the steered block for pass-throughs, and open_clip's own forward runs
unchanged around them (patch embedding and `ln_pre` still run: one convolution and one norm,
cheap next to a block). The steered block then sees bit for bit the tensor it would see in a
full steered forward, so predictions are the same as without the shared prefix
(tests/model/test_prefix.py), and a batch costs 1 + (blocks from the first steered one ÷ all
blocks) forwards instead of 2 (benchmarks/e2e_throughput.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from torch import Tensor, nn

from steerlang.model.sites import resolve_visual


def first_hooked_layer(plan: Any) -> int | None:
    """The first block a plan installs a hook in (`steerlang.model.hooks.steer` installs one per
    site with edits, or with an error mode other than `preserve_error`); None when none."""
    layers = [
        int(sp.layer)
        for sp in getattr(plan, "sites", None) or []
        if sp.edits or getattr(sp, "error_mode", "preserve_error") != "preserve_error"
    ]
    return min(layers) if layers else None


class _Replay(nn.Module):
    """Stands in for block 0 during the steered forward: returns the recorded input of the
    first steered block, whatever it is given."""

    def __init__(self, x: Tensor) -> None:
        super().__init__()
        self.x = x

    def forward(self, x: Tensor, *args: Any, **kwargs: Any) -> Tensor:
        if x.shape != self.x.shape:
            raise RuntimeError(
                f"shared prefix recorded a {list(self.x.shape)} batch but the steered forward "
                f"got {list(x.shape)}: capture and replay must see the same pixels"
            )
        return self.x


class _Pass(nn.Module):
    """Stands in for blocks 1 .. first-1 during the steered forward."""

    def forward(self, x: Tensor, *args: Any, **kwargs: Any) -> Tensor:
        return x


class SharedPrefix:
    """Record the input of block `layer` in the unsteered forward; replay it in the steered one.

    `layer` 0 (or None) shares nothing: both contexts then do nothing.
    """

    def __init__(self, model: Any, layer: int | None) -> None:
        self.blocks: nn.ModuleList = resolve_visual(model).transformer.resblocks
        self.layer = int(layer) if layer else 0
        self.x: Tensor | None = None

    @property
    def active(self) -> bool:
        return self.layer > 0

    @contextmanager
    def capture(self) -> Iterator[None]:
        """Around the unsteered forward: keep the input of block `layer`."""
        self.x = None
        if not self.active:
            yield
            return

        def keep(_mod: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            x = args[0] if args else kwargs["x"]
            self.x = x.detach().clone()

        handle = self.blocks[self.layer].register_forward_pre_hook(keep, with_kwargs=True)
        try:
            yield
        finally:
            handle.remove()

    @contextmanager
    def replay(self) -> Iterator[None]:
        """Around the steered forward (inside `steer(...)`): blocks before `layer` are replaced
        by the recorded tensor. Without a recording (no capture ran), nothing is replaced."""
        if not self.active or self.x is None:
            yield
            return
        saved = [self.blocks[i] for i in range(self.layer)]
        self.blocks[0] = _Replay(self.x)
        for i in range(1, self.layer):
            self.blocks[i] = _Pass()
        try:
            yield
        finally:
            for i, blk in enumerate(saved):
                self.blocks[i] = blk
