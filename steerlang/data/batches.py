"""Which rows of a dataset a pass reads, and the preprocessed pixel batches it reads them in.

Used by every pass that embeds images: the statistics, steerability and evaluation passes of
`steer run` and the activation capture of SAE training, so all of them read files in table
order and report an unreadable image the same way. torch is imported on use: `steerlang.data`
stays importable without it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch


def subset_indices(n_rows: int, limit: int, seed: int) -> np.ndarray:
    """Rows used for a pass: all of them, or a seeded random subset of `limit` rows (sorted,
    so batches read the files in table order)."""
    if limit and 0 < limit < n_rows:
        rng = np.random.default_rng(seed)
        return np.sort(rng.choice(n_rows, size=limit, replace=False))
    return np.arange(n_rows)


def image_batches(
    table: Any,
    indices: Sequence[int] | np.ndarray,
    preprocess: Callable[[Any], torch.Tensor],
    batch_size: int,
    *,
    device: torch.device | str | None = None,
    transform: Callable[[Any, int], Any] | None = None,
    workers: int | None = None,
) -> Iterator[tuple[np.ndarray, torch.Tensor]]:
    """Yield (row indices, preprocessed pixel batch) in the order of `indices`, moved to
    `device` when one is given.

    `table` is anything with `.image(i)` (an `ImageTable`, an attacked view, or a view whose
    images are already pixel tensors, which pass through unchanged). `transform(image, row)`
    may rewrite a PIL image before preprocessing (the typographic attack writes a word onto
    it). The images are read by a `DataLoader` (steerlang/data/loader.py): `workers` loader
    processes (default: the `--workers` setting, else from the core count), and a corrupt
    image raises the loader's DatasetError (naming file and row) unchanged, from a worker too.
    """
    from steerlang.data.loader import loader_batches

    yield from loader_batches(
        table, indices, preprocess, batch_size, device=device, transform=transform, workers=workers
    )
