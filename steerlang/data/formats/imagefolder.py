"""ImageFolder: `root/<class>/<image>` or, with splits, `root/<split>/<class>/<image>`.

Split folders are recognised when every top-level folder is a split name or alias; classes are
the sorted folder names. Split folders next to any other folder are an error naming that folder.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from steerlang.data.formats.common import (
    IMAGE_EXTS,
    record_field,
    require_root,
    save_image,
    split_code,
)
from steerlang.data.table import SPLIT_CODES, ImageTable, normalize_split
from steerlang.errors import DatasetError


def write_imagefolder(root: Path | str, records: Iterable[Any], *, ext: str = ".png") -> Path:
    """Write `root/<class>/<n>.png` (or `root/<split>/<class>/…` when records carry `split`).

    Record keys: `image` (PIL), `label` (class name); optional `split`.
    """
    root = Path(root)
    recs = list(records)
    with_split = any(record_field(r, "split", None) is not None for r in recs)
    for k, r in enumerate(recs):
        label = str(record_field(r, "label"))
        if "/" in label or not label or label.startswith("."):
            raise ValueError(f"class name {label!r} cannot be a folder name")
        folder = root / label
        if with_split:
            folder = root / ("train", "val", "test")[split_code(record_field(r, "split"))] / label
        save_image(record_field(r, "image"), folder / f"{k:06d}{ext}")
    root.mkdir(parents=True, exist_ok=True)
    return root


def load_imagefolder(root: Path | str, *, name: str = "imagefolder") -> ImageTable:
    base = require_root(root, "imagefolder")
    subdirs = sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))
    split_dirs: dict[Path, str] = {}
    others: list[Path] = []
    for p in subdirs:
        try:
            split_dirs[p] = normalize_split(p.name)
        except DatasetError:
            others.append(p)
    if split_dirs and others:
        # Split folders next to a class folder: reading it flat would make the split names
        # classes, reading it split would drop the other folder's images.
        raise DatasetError(
            f"{base} mixes split folders ({', '.join(p.name for p in split_dirs)}) with "
            f"the folder {others[0]}" + (f" and {len(others) - 1} more" if len(others) > 1 else ""),
            help=f"move {others[0].name}/ into a split folder (train/ val/ test/), or out of "
            f"{base}; an ImageFolder root holds either class folders or split folders",
        )
    layouts = split_dirs.items() if split_dirs else [(base, None)]
    entries: list[tuple[str, str, int | None]] = []
    class_names: set[str] = set()
    for folder, split in layouts:
        for cdir in sorted(
            p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")
        ):
            class_names.add(cdir.name)
            for f in sorted(cdir.rglob("*")):
                if f.is_file() and f.suffix.lower() in IMAGE_EXTS:
                    entries.append(
                        (str(f), cdir.name, SPLIT_CODES[split] if split is not None else None)
                    )
    if not entries:
        raise DatasetError(
            f"no images under {base}",
            help="an ImageFolder root holds one folder per class (optionally inside "
            "train/ val/ test/ folders), each with image files",
        )
    classes = sorted(class_names)
    index = {c: i for i, c in enumerate(classes)}
    data: dict[str, list[Any]] = {
        "label": [index[c] for _, c, _ in entries],
        "label_name": [c for _, c, _ in entries],
    }
    if split_dirs:
        data["split"] = [s for _, _, s in entries]
    return ImageTable(
        name=name,
        format="imagefolder",
        root=base,
        paths=[p for p, _, _ in entries],
        data=data,
        classes=classes,
        meta={"label_column": "label"},
    )


def find_root(root: Path) -> Path:
    """`root` itself when it holds at least one folder (a class or a split)."""
    if any(p.is_dir() for p in root.iterdir()):
        return root
    raise DatasetError(
        f"no folders under {root}", help="an ImageFolder root holds one folder per class"
    )
