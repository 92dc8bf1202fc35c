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
) -> Iterator[tuple[np.ndarray, torch.Tensor]]:
    """Yield (row indices, preprocessed pixel batch) in the order of `indices`, moved to
    `device` when one is given.

    `table` is anything with `.image(i)` (an `ImageTable`, an attacked view, or a view whose
    images are already pixel tensors, which pass through unchanged). `transform(image, row)`
    may rewrite a PIL image before preprocessing (the typographic attack writes a word onto
    it). Reading stays in the main process so a corrupt image raises the loader's DatasetError
    (naming file and row) unchanged.
    """
    import torch

    idx = np.asarray(indices, dtype=np.int64)
    bs = max(1, int(batch_size))
    for start in range(0, len(idx), bs):
        chunk = idx[start : start + bs]
        ims = []
        for i in chunk.tolist():
            im = table.image(int(i))
            if transform is not None:
                im = transform(im, int(i))
            ims.append(im if isinstance(im, torch.Tensor) else preprocess(im))
        batch = torch.stack(ims)
        yield chunk, batch if device is None else batch.to(device, non_blocking=True)
