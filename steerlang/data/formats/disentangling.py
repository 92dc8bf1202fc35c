"""The Disentangling typographic set (Materzynska et al.): `annotations.json` keyed by file name,
each entry holding the 'true object' and the 'typographic attack label'.

Two published protocols read it differently. Defense-Prefix ('dp') expects
`<root>/typographic_attack_dataset/{annotations.json, classes.json, images/}`, takes its classes
from `classes.json` and prompts "a photo of {}."; Dyslexify ('dyslexify') has `annotations.json`
next to the images, takes the union of true objects and attack labels as classes and prompts
"a photo of a {}.". No splits (evaluation-only).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from steerlang.data.formats.common import (
    record_field,
    require_root,
    save_image,
    source_digests,
    write_text,
)
from steerlang.data.table import ImageTable
from steerlang.errors import DatasetError

# Disentangling protocols differ in layout, class list and prompt template.
DISENTANGLING_TEMPLATES: dict[str, str] = {
    "dp": "a photo of {}.",
    "dyslexify": "a photo of a {}.",
}


def write_disentangling(
    root: Path | str,
    records: Iterable[Any],
    *,
    layout: str = "dp",
    classes: Sequence[str] | None = None,
) -> Path:
    """Write the Disentangling set: `annotations.json` keyed by file name.

    Record keys: `image` (PIL), `label` (true object), `text` (typographic attack label).
    `layout='dp'` writes `<root>/typographic_attack_dataset/{annotations.json, classes.json,
    images/}` (Defense-Prefix's loader); `layout='dyslexify'` writes `annotations.json` with the
    images directly under `root`. `classes` (DP's `classes.json`) defaults to the true objects.
    Returns the folder holding `annotations.json`.
    """
    if layout not in ("dp", "dyslexify"):
        raise ValueError("layout must be 'dp' or 'dyslexify'")
    root = Path(root)
    base = root / "typographic_attack_dataset" if layout == "dp" else root
    img_dir = base / "images" if layout == "dp" else base
    ann: dict[str, dict[str, str]] = {}
    true_objects: list[str] = []
    for k, r in enumerate(records):
        fn = f"IMG_{k + 1:04d}.JPG"
        label, text = str(record_field(r, "label")), str(record_field(r, "text"))
        save_image(record_field(r, "image"), img_dir / fn, quality=95)
        ann[fn] = {"true object": label, "typographic attack label": text}
        if label not in true_objects:
            true_objects.append(label)
    write_text(base / "annotations.json", json.dumps(ann, indent=2) + "\n")
    if layout == "dp":
        cls = list(classes) if classes is not None else sorted(true_objects)
        write_text(
            base / "classes.json", json.dumps({c: i for i, c in enumerate(cls)}, indent=2) + "\n"
        )
    return base


def find_root(root: Path) -> tuple[Path, str]:
    inner = root / "typographic_attack_dataset"
    if (inner / "annotations.json").is_file():
        return inner, "dp"
    if (root / "annotations.json").is_file():
        dp = (root / "classes.json").is_file() and (root / "images").is_dir()
        return root, "dp" if dp else "dyslexify"
    hint = ""
    for c in (root / "annotation.json", inner / "annotation.json"):
        if c.is_file():
            hint = f"found {c}: both reference loaders read 'annotations.json'; rename it. "
    raise DatasetError(
        f"no annotations.json under {root}",
        help=hint + "Defense-Prefix layout: <root>/typographic_attack_dataset/{annotations.json,"
        " classes.json, images/}; Dyslexify layout: <root>/annotations.json next to the images",
    )


def _load_json(file: Path) -> Any:
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise DatasetError(f"cannot read {file}: {e}") from e
    except json.JSONDecodeError as e:
        raise DatasetError(
            f"{file}:{e.lineno}:{e.colno}: invalid JSON: {e.msg}",
            help="the file may be truncated; re-extract it from the dataset archive",
        ) from e


def load_disentangling(
    root: Path | str, *, name: str = "disentangling", protocol: str | None = None
) -> ImageTable:
    base, layout = find_root(require_root(root, "disentangling"))
    protocol = protocol or layout
    if protocol not in DISENTANGLING_TEMPLATES:
        raise DatasetError(
            f"unknown Disentangling protocol '{protocol}'", help="use 'dp' or 'dyslexify'"
        )
    ann_file = base / "annotations.json"
    ann = _load_json(ann_file)
    if not isinstance(ann, dict):
        raise DatasetError(f"{ann_file}: expected an object keyed by image file name")
    img_dir = base / "images" if layout == "dp" else base
    labels: list[str] = []
    texts: list[str] = []
    paths: list[str] = []
    keys: list[str] = []
    for key, entry in ann.items():
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("true object"), str)
            or not isinstance(entry.get("typographic attack label"), str)
        ):
            raise DatasetError(
                f"{ann_file}: entry '{key}' needs string fields 'true object' and "
                f"'typographic attack label', found {json.dumps(entry)[:120]}",
                help=f"fix the '{key}' entry of {ann_file.name}",
            )
        labels.append(entry["true object"])
        texts.append(entry["typographic attack label"])
        paths.append(str(img_dir / key))
        keys.append(key)
    if protocol == "dp":
        cls_file = base / "classes.json"
        if not cls_file.is_file():
            raise DatasetError(
                f"classes file not found: {cls_file}",
                help="the Defense-Prefix protocol takes its classes from classes.json; "
                "use protocol 'dyslexify' to take the union of true and attack labels instead",
            )
        cls_obj = _load_json(cls_file)
        if not isinstance(cls_obj, dict | list):
            raise DatasetError(f"{cls_file}: expected an object whose keys are the class names")
        classes = [str(c) for c in cls_obj]
        missing = sorted(set(labels) - set(classes))
        if missing:
            raise DatasetError(
                f"{ann_file}: true objects {missing} are not in {cls_file.name}",
                help=f"add them to {cls_file}",
            )
    else:
        classes = sorted(set(labels) | set(texts))
    index = {c: i for i, c in enumerate(classes)}
    return ImageTable(
        name=name,
        format="disentangling",
        root=base,
        paths=paths,
        data={
            "label": [index[x] for x in labels],
            "text": [index.get(x, -1) for x in texts],
            "label_name": labels,
            "text_name": texts,
            "file": keys,
        },
        classes=classes,
        meta={
            "protocol": protocol,
            "layout": layout,
            "prompt_template": DISENTANGLING_TEMPLATES[protocol],
            "label_column": "label",
            "attack_column": "text",
        },
        source=[(str(ann_file), 0)] * len(paths),
        sources=source_digests(ann_file, *([base / "classes.json"] if protocol == "dp" else [])),
    )
