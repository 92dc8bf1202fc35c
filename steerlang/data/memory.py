"""Images held in memory as a dataset: a list of PIL images (or one tensor of preprocessed
pixels) plus a table of labels and group columns, for `steerlang.run(..., images=, labels=)`.

The table behaves as an `ImageTable` read from disk, so every stage runs on it unchanged. Each
row's "path" is `memory:<row>:<digest of its pixels>`, so the statistics cache keys
(steerlang/data/fingerprint.py hashes the paths) follow the image content: other images never
read back these statistics.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from steerlang.data.table import ImageTable
from steerlang.errors import DatasetError


class MemoryTable(ImageTable):
    """An ImageTable whose images are in memory (PIL images, or preprocessed pixel tensors
    that the batching passes through unchanged)."""

    def __init__(self, images: Sequence[Any], **kw: Any) -> None:
        super().__init__(**kw)
        if len(images) != len(self):
            raise DatasetError(f"{len(images)} images for {len(self)} label rows")
        self._images = list(images)

    def image(self, i: int) -> Any:
        self._check_index(i)
        im = self._images[i]
        return im.convert("RGB") if hasattr(im, "convert") else im

    def subset(self, indices: Sequence[int] | np.ndarray, *, name: str | None = None) -> Any:
        base = super().subset(indices, name=name)
        arr = np.asarray(indices, dtype=np.int64).reshape(-1)
        arr = np.where(arr < 0, arr + len(self), arr)
        return MemoryTable(
            [self._images[i] for i in arr.tolist()],
            name=base.name,
            format=base.format,
            root=base.root,
            paths=base.paths,
            data={c: base._data[c] for c in base.columns},
            classes=base.classes,
            meta=base.meta,
        )


def _digest(im: Any) -> str:
    if hasattr(im, "tobytes") and hasattr(im, "mode"):  # PIL
        data = f"{im.mode}{im.size}".encode() + im.tobytes()
    else:  # a tensor or an array of pixels
        arr = np.ascontiguousarray(im.detach().cpu().numpy() if hasattr(im, "detach") else im)
        data = f"{arr.dtype}{arr.shape}".encode() + arr.tobytes()
    return hashlib.sha256(data).hexdigest()[:20]


def _columns(labels: Any) -> dict[str, list[Any]]:
    if hasattr(labels, "to_dict") and hasattr(labels, "columns"):  # a pandas DataFrame
        return {str(c): list(labels[c].tolist()) for c in labels.columns}
    if isinstance(labels, Mapping):
        return {str(k): list(np.asarray(v).tolist()) for k, v in labels.items()}
    raise DatasetError(
        "labels must be a mapping of column name -> values (or a pandas DataFrame)",
        help='e.g. labels={"y": [0, 1, ...], "place": [1, 0, ...]}',
    )


def memory_table(images: Any, labels: Any, *, name: str = "memory") -> MemoryTable:
    """`images`: a list of PIL images, or a tensor [N, 3, H, W] of pixels already preprocessed
    for the model; `labels`: column name -> one value per image (the task's label column, the
    group columns, the columns concepts read; an optional `split` column of 0 train, 1 val,
    2 test)."""
    if hasattr(images, "shape") and len(getattr(images, "shape", ())) == 4:
        items = [images[i] for i in range(int(images.shape[0]))]
    else:
        items = list(images)
    cols = _columns(labels)
    paths = [f"memory:{i}:{_digest(im)}" for i, im in enumerate(items)]
    for c, v in cols.items():
        if len(v) != len(items):
            raise DatasetError(
                f"label column `{c}` has {len(v)} values for {len(items)} images",
                help="give every column one value per image",
            )
    return MemoryTable(items, name=name, format="memory", root=".", paths=paths, data=cols)
