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
from steerlang.facts import DATASET_COLUMNS


@dataclass(frozen=True)
class DatasetFormat:
    """One on-disk layout: its loader, the probe that finds its root under a folder and, for
    layouts whose columns depend on the files, the reader of those columns from the metadata
    file's header alone (None: the layout's columns are fixed, `facts.DATASET_COLUMNS`)."""

    load: Callable[..., ImageTable]  # load(root, *, name, **options)
    find_root: Callable[[Path], Any]  # raises DatasetError when the folder is not this layout
    options: frozenset[str] = frozenset()
    header_columns: Callable[..., tuple[str, ...] | None] | None = None  # (root, **options)


FORMATS: dict[str, DatasetFormat] = {
    "waterbirds": DatasetFormat(
        waterbirds.load_waterbirds,
        waterbirds.find_root,
        header_columns=waterbirds.header_columns,
    ),
    "celeba": DatasetFormat(
        celeba.load_celeba, celeba.find_root, header_columns=celeba.header_columns
    ),
    **{
        fmt: DatasetFormat(partial(typographic.load_typographic, format=fmt), typographic.find_root)
        for fmt in typographic.TYPOGRAPHIC_FORMATS
    },
    "disentangling": DatasetFormat(
        disentangling.load_disentangling, disentangling.find_root, frozenset({"protocol"})
    ),
    "imagefolder": DatasetFormat(imagefolder.load_imagefolder, imagefolder.find_root),
    "table": DatasetFormat(
        tabular.load_table,
        tabular.find_root,
        tabular.TABLE_OPTIONS,
        header_columns=tabular.header_columns,
    ),
    "hf_datasets": DatasetFormat(
        hf_datasets.load_hf_dataset,
        hf_datasets.find_root,
        hf_datasets.HF_OPTIONS,
        header_columns=hf_datasets.header_columns,
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


def dataset_columns(format: str, root: Path | str, **options: Any) -> tuple[str, ...] | None:
    """The columns `load_dataset(format, root, **options)` would give, read cheaply: from the
    metadata file's header (Waterbirds, CelebA, `table`, a saved `hf_datasets` folder) or the
    layout's fixed list (`facts.DATASET_COLUMNS`); no rows and no images are read. None when
    only loading can tell (`hf:NAME` in the Hugging Face cache). A root that is missing or not
    the layout raises the loader's DatasetError.

    The runtime commands hand these to the compiler (steerlang/commands/dataset_columns.py),
    so a recipe's `concept`, `task` and `groups` columns are checked against the real table,
    extra columns included, with the compiler's did-you-means.
    """
    fmt = str(format).strip().lower()
    spec = FORMATS.get(fmt)
    if spec is None:
        return None
    if spec.header_columns is None:
        require_root(root, fmt)
        return DATASET_COLUMNS.get(fmt)
    return spec.header_columns(root, **options)
