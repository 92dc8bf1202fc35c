"""Argument handling shared by `steer train-sae` and `steer sae-stats`: data specs, layer
lists, evaluation splits and zero-shot labels, so both commands read the same way."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from steerlang.data.table import ImageTable, normalize_split
from steerlang.errors import DatasetError, SteerError
from steerlang.facts import SPLIT_ALIASES

DEFAULT_PROMPT = "a photo of a {}."


def parse_layers(text: str) -> list[int]:
    """'7', '0..11', '3,5,9-11' -> sorted unique layer numbers."""
    out: set[int] = set()
    for part in str(text).split(","):
        part = part.strip()
        m = re.fullmatch(r"(\d+)\s*(?:\.\.|-)\s*(\d+)", part)
        if m:
            lo, hi = int(m.group(1)), int(m.group(2))
            if hi < lo:
                raise SteerError(
                    f"layer range {part!r} is empty", help="write LOW..HIGH, e.g. 0..11"
                )
            out.update(range(lo, hi + 1))
        elif part.isdigit():
            out.add(int(part))
        else:
            raise SteerError(f"cannot read layer(s) {text!r}", help="write e.g. 7, 0..11 or 3,5,7")
    return sorted(out)


@dataclass
class DataChoice:
    """A loaded dataset and whether the user fixed the split (so evaluation must hold out)."""

    table: ImageTable
    split_given: bool
    label: str


def load_data(
    data: str | None, dataset: str | None, profile: Any, *, split: str | None = None
) -> DataChoice:
    """`--data FORMAT:ROOT[:SPLIT]` or `--dataset NAME[:SPLIT]` (a profile/zoo name)."""
    if (data is None) == (dataset is None):
        raise SteerError(
            "give exactly one of --data FORMAT:ROOT[:SPLIT] or --dataset NAME",
            help="e.g. --data imagefolder:/data/imagenet/train, or --dataset waterbirds (zoo)",
        )
    spec = data if data is not None else dataset
    assert spec is not None
    body, tail_split = _split_suffix(spec)
    chosen = split or tail_split
    if data is not None:
        fmt, colon, root = body.partition(":")
        if not colon or not fmt or not root:
            raise SteerError(
                f"--data {data!r} is not FORMAT:ROOT[:SPLIT]",
                help="e.g. --data waterbirds:/data/waterbird_complete95_forest2water2:train",
            )
        from steerlang.data.formats import load_dataset

        table = load_dataset(fmt, root)
        label = f"{fmt}:{root}"
    else:
        table = profile.dataset(body).load()
        label = body
    if chosen is not None:
        table = table.split(chosen)
        label += f":{normalize_split(chosen)}"
    return DataChoice(table=table, split_given=chosen is not None, label=label)


def _split_suffix(spec: str) -> tuple[str, str | None]:
    head, colon, tail = spec.rpartition(":")
    if colon and tail.strip().lower() in tuple(SPLIT_ALIASES):
        return head, tail
    return spec, None


DEFAULT_EVAL_IMAGES = 512


def train_eval_tables(
    choice: DataChoice, *, eval_images: int | None = None, seed: int = 0
) -> tuple[ImageTable, ImageTable | None]:
    """Training rows and held-out evaluation rows.

    A dataset with splits and no split named: train on 'train', evaluate on up to
    `eval_images` rows of 'val' (else 'test'). Otherwise seeded random rows are held out of the
    table and the rest trains, so reported metrics are never measured on training images:
    `eval_images` of them when given, else min(512, 10% of the table).
    """
    import numpy as np

    table = choice.table
    if eval_images is not None and eval_images <= 0:
        return table, None
    if table.has_splits and not choice.split_given:
        train = table.split("train")
        for name in ("val", "test"):
            ev = table.split(name)
            if len(ev):
                return train, _cap(ev, eval_images or DEFAULT_EVAL_IMAGES, seed)
        return train, None
    n = len(table)
    if n < 2:
        raise DatasetError(
            f"dataset '{table.name}' has {n} image(s): too few to hold some out for evaluation",
            help="use --eval-images 0 to skip evaluation",
        )
    k = min(eval_images, n - 1) if eval_images else min(DEFAULT_EVAL_IMAGES, max(1, n // 10))
    perm = np.random.default_rng(seed).permutation(n)
    return table.subset(np.sort(perm[k:])), table.subset(np.sort(perm[:k]))


def _cap(table: ImageTable, n: int, seed: int) -> ImageTable:
    import numpy as np

    if len(table) <= n:
        return table
    perm = np.random.default_rng(seed).permutation(len(table))
    return table.subset(np.sort(perm[:n]))


def zero_shot_labels(
    table: ImageTable, label_column: str | None = None
) -> tuple[list[int] | None, list[str] | None]:
    """(labels, class names) for zero-shot accuracy, or (None, None) when the table has none."""
    col = label_column or table.meta.get("label_column")
    if col is None or table.classes is None:
        if label_column is not None:
            raise DatasetError(
                f"dataset '{table.name}' has no class names for column '{label_column}'",
                help="zero-shot accuracy needs a dataset with classes (e.g. waterbirds, "
                "imagefolder); or use --no-accuracy",
            )
        return None, None
    labels = [int(v) for v in table.column(col)]
    return labels, list(table.classes)
