"""Typographic sets labelled in their file names (RTA-100, PAINT): `label=<true>_text=<word>.png`.

No splits (evaluation-only). Classes are the union of true labels and attack words, so both
columns index the same class list; the prompt template is "a photo of a {}.".
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from steerlang.data.formats.common import IMAGE_EXTS, record_field, require_root, save_image
from steerlang.data.table import ImageTable
from steerlang.errors import DatasetError

# The format names that share this layout; each keeps its own name as the table's `protocol`.
TYPOGRAPHIC_FORMATS: tuple[str, ...] = ("rta100", "paint", "typographic")
TYPOGRAPHIC_TEMPLATE = "a photo of a {}."
_DUP_SUFFIX = re.compile(r"#\d+$")


def typographic_filename(label: str, text: str, ext: str = ".png") -> str:
    return f"label={label}_text={text}{ext}"


def parse_typographic_name(filename: str) -> tuple[str, str] | None:
    """(true label, attack word) from `label=<true>_text=<word>.<ext>`, or None.

    Parses on the `label=` / `_text=` markers, not on `_`, so class names with underscores
    survive; a trailing `#N` (our writer's disambiguator for repeated pairs) is dropped.
    """
    stem = filename
    low = stem.lower()
    for ext in IMAGE_EXTS:
        if low.endswith(ext):
            stem = stem[: -len(ext)]
            break
    if not stem.startswith("label="):
        return None
    cut = stem.find("_text=")
    if cut < 0:
        return None
    label = stem[len("label=") : cut]
    text = _DUP_SUFFIX.sub("", stem[cut + len("_text=") :])
    if not label or not text:
        return None
    return label, text


def write_typographic(root: Path | str, records: Iterable[Any], *, ext: str = ".png") -> Path:
    """Write an RTA-100/PAINT-style folder: `label=<true>_text=<word>.png` images.

    Record keys: `image` (PIL, already carrying the written word), `label` (true class name),
    `text` (the attack word). Repeated (label, text) pairs get a `#2`, `#3`… suffix that the
    loader strips.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    seen: dict[tuple[str, str], int] = {}
    for r in records:
        label, text = str(record_field(r, "label")), str(record_field(r, "text"))
        for s in (label, text):
            if "/" in s or "_text=" in s or not s:
                raise ValueError(f"class name {s!r} cannot be written in a file name")
        n = seen.get((label, text), 0) + 1
        seen[(label, text)] = n
        stem = typographic_filename(label, text, ext="") + (f"#{n}" if n > 1 else "")
        save_image(record_field(r, "image"), root / f"{stem}{ext}")
    return root


def find_root(root: Path) -> Path:
    candidates = [
        root,
        root / "ours" / "data",
        root / "typographic_real_data_from_PAINT" / "typographic_attacks",
        root / "typographic_attacks",
    ]
    for c in candidates:
        if c.is_dir() and any(p.name.startswith("label=") for p in c.iterdir()):
            return c
    raise DatasetError(
        f"no images named 'label=<true>_text=<word>.png' under {root}",
        help="point the root at the folder holding the typographic images "
        "(RTA-100: <root>/ours/data/, PAINT: <root>/typographic_real_data_from_PAINT/"
        "typographic_attacks/)",
    )


def load_typographic(
    root: Path | str, *, format: str = "typographic", name: str | None = None
) -> ImageTable:
    base = find_root(require_root(root, format))
    files = sorted(p for p in base.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTS)
    labels: list[str] = []
    texts: list[str] = []
    paths: list[str] = []
    for p in files:
        parsed = parse_typographic_name(p.name)
        if parsed is None:
            raise DatasetError(
                f"{p}: file name does not follow 'label=<true>_text=<word>.<ext>'",
                help="rename the file to that scheme or move it out of the dataset folder",
            )
        labels.append(parsed[0])
        texts.append(parsed[1])
        paths.append(str(p))
    classes = sorted(set(labels) | set(texts))
    index = {c: i for i, c in enumerate(classes)}
    return ImageTable(
        name=name or format,
        format=format,
        root=base,
        paths=paths,
        data={
            "label": [index[x] for x in labels],
            "text": [index[x] for x in texts],
            "label_name": labels,
            "text_name": texts,
        },
        classes=classes,
        meta={
            "protocol": format,
            "prompt_template": TYPOGRAPHIC_TEMPLATE,
            "label_column": "label",
            "attack_column": "text",
        },
        source=[(str(p), 0) for p in files],
    )
