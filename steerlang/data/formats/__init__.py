"""Readers and writers for the real on-disk dataset layouts, one module per format.

The writers produce the layouts users download (Waterbirds' `metadata.csv`, CelebA's
attribute/partition files, RTA-100/PAINT file names, Disentangling's `annotations.json`,
ImageFolder), so the synthetic world and the test fixtures exercise the same loaders real data
goes through. Loaders never download: a missing root or file is a `DatasetError` naming the file
(and the row, for a bad row) and the fix.

`FORMATS` is the one table that maps a format name to its loader; `load_dataset` and
`detect_format` dispatch through it. docs/real-data.md describes each layout.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from steerlang.data.formats import (
    celeba,
    disentangling,
    hf_datasets,
    imagefolder,
    tabular,
    typographic,
    waterbirds,
)
from steerlang.data.formats.common import require_root
from steerlang.data.table import ImageTable
from steerlang.errors import DatasetError, did_you_mean


@dataclass(frozen=True)
class DatasetFormat:
    """One on-disk layout: its loader and the probe that finds its root under a folder."""

    load: Callable[..., ImageTable]  # load(root, *, name, **options)
    find_root: Callable[[Path], Any]  # raises DatasetError when the folder is not this layout
    options: frozenset[str] = frozenset()


FORMATS: dict[str, DatasetFormat] = {
    "waterbirds": DatasetFormat(waterbirds.load_waterbirds, waterbirds.find_root),
    "celeba": DatasetFormat(celeba.load_celeba, celeba.find_root),
    **{
        fmt: DatasetFormat(partial(typographic.load_typographic, format=fmt), typographic.find_root)
        for fmt in typographic.TYPOGRAPHIC_FORMATS
    },
    "disentangling": DatasetFormat(
        disentangling.load_disentangling, disentangling.find_root, frozenset({"protocol"})
    ),
    "imagefolder": DatasetFormat(imagefolder.load_imagefolder, imagefolder.find_root),
    "table": DatasetFormat(tabular.load_table, tabular.find_root, tabular.TABLE_OPTIONS),
    "hf_datasets": DatasetFormat(
        hf_datasets.load_hf_dataset, hf_datasets.find_root, hf_datasets.HF_OPTIONS
    ),
}

# The order `detect_format` tries layouts in: the specific ones first (their marker files),
# ImageFolder (any folder of folders) last. RTA-100 and PAINT look alike and are detected as
# the generic "typographic".
_DETECT_ORDER: tuple[str, ...] = (
    "waterbirds",
    "celeba",
    "disentangling",
    "typographic",
    "hf_datasets",
    "table",
    "imagefolder",
)


def detect_format(root: Path | str) -> str:
    """Guess a dataset's format from its files (used for `--data NAME=PATH` without a format).

    A CSV or Parquet file is a `table`; `hf:NAME` is a Hugging Face dataset in the cache."""
    if str(root).startswith("hf:"):
        return "hf_datasets"
    if Path(root).expanduser().is_file():
        tabular.find_root(Path(root).expanduser())
        return "table"
    base = require_root(root, "dataset")
    for fmt in _DETECT_ORDER:
        try:
            FORMATS[fmt].find_root(base)
            return fmt
        except DatasetError:
            continue
    raise DatasetError(
        f"cannot tell the dataset format of {base}",
        help=f"name it explicitly (NAME=FORMAT:PATH); formats: {', '.join(FORMATS)}",
    )


def load_dataset(
    format: str,
    root: Path | str,
    split: str | None = None,
    *,
    name: str | None = None,
    **options: Any,
) -> ImageTable:
    """Load a dataset in one of FORMATS; `split` ('train'|'val'|'test') keeps only that split.

    Options: `protocol` ('dp'|'dyslexify') for Disentangling; `image_column`,
    `label_column`, `group_columns`, `split_column` and `image_root` for `table`; the same
    (less `image_root`) plus `config` and `cache_dir` for `hf_datasets`.
    """
    fmt = str(format).strip().lower()
    if fmt not in FORMATS:
        guess = did_you_mean(fmt, FORMATS)
        raise DatasetError(
            f"unknown dataset format '{format}'",
            help=(f"did you mean '{guess}'? " if guess else "") + f"formats: {', '.join(FORMATS)}",
        )
    spec = FORMATS[fmt]
    extra = set(options) - spec.options
    if extra:
        raise DatasetError(
            f"dataset format '{fmt}' takes no option(s) {sorted(extra)}",
            help=f"options for {fmt}: {', '.join(sorted(spec.options)) or 'none'}",
        )
    table = spec.load(root, name=name or fmt, **options)
    return table.split(split) if split is not None else table
