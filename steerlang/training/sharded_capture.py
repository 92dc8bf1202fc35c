"""Activation capture for `train-sae` under torchrun (docs/scale.md).

Each rank runs the model on its contiguous share of the training images (the expensive part),
then the shares are gathered in rank order, so every rank holds the token table one process
would hold (same images, same order) and draws the same global batches from it
(steerlang/training/data_parallel.py). Activations are held in memory: streaming
(`--max-memory-gb` exceeded) and the disk cache (`--cache-acts`) are one-process features.
"""

from __future__ import annotations

from typing import Any

import torch

from steerlang.errors import SteerError
from steerlang.training import data_parallel
from steerlang.training.activations import ActivationSet, _Pick, collect_activations


def collect_sharded(
    handle: Any,
    sites: list[Any],
    table: Any,
    n_images: int,
    *,
    batch_size: int,
    dtype: torch.dtype,
    streamed: bool,
    cache_dir: str | None,
    progress: bool,
) -> dict[str, ActivationSet]:
    """`{hook name: ActivationSet}` of the first `n_images` rows of `table`, every rank
    capturing its share and all ranks receiving all of them, in table order."""
    if streamed or cache_dir is not None:
        raise SteerError(
            "train-sae under torchrun holds the activations in memory: "
            + (
                "--cache-acts is not supported there"
                if cache_dir
                else "they exceed --max-memory-gb"
            ),
            help="run without --cache-acts, raise --max-memory-gb (every rank holds all the "
            "training activations), or train with one process",
        )
    lo, hi = data_parallel.bounds(n_images)
    part = (
        collect_activations(
            handle,
            sites,
            _Pick(table, list(range(lo, hi))),
            batch_size=batch_size,
            dtype=dtype,
            progress=progress and data_parallel.is_main(),
        )
        if hi > lo
        else None
    )
    out: dict[str, ActivationSet] = {}
    for ref in sites:
        name = ref.hook_name
        mine = (
            part[name].load()
            if part is not None
            else torch.empty(0, handle.n_tokens, handle.width, dtype=dtype)
        )
        x = data_parallel.gather_tensors(mine)
        out[name] = ActivationSet(name, x.shape[0], x.shape[1], x.shape[2], tensor=x)
    return out
