"""Tiny seeded synthetic datasets written through the real-format writers (docs/real-data.md lists the layouts).

They test plumbing, not CLIP accuracy: pixels are procedural (a bird on land or water, a face
with blond or dark hair, a coloured shape per class) and the group ratios follow the real
datasets' split tables divided by an integer `scale` (each group keeps at least one image so
worst-group metrics are defined).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from steerlang.data.attack import attack_image, pick_wrong_word
from steerlang.data.formats.celeba import CELEBA_ATTRS, write_celeba
from steerlang.data.formats.disentangling import write_disentangling
from steerlang.data.formats.imagefolder import write_imagefolder
from steerlang.data.formats.typographic import write_typographic
from steerlang.data.formats.waterbirds import write_waterbirds

# The real datasets' group counts per split (Waterbirds: y × place; CelebA: Blond_Hair × Male):
# groups g0..g3 = 2·y + spurious.
WATERBIRDS_COUNTS: dict[str, tuple[int, int, int, int]] = {
    "train": (3498, 184, 56, 1057),
    "val": (467, 466, 133, 133),
    "test": (2255, 2255, 642, 642),
}
CELEBA_COUNTS: dict[str, tuple[int, int, int, int]] = {
    "train": (71629, 66874, 22880, 1387),
    "val": (8535, 8276, 2874, 182),
    "test": (9767, 7535, 2480, 180),
}
WATERBIRD_SPECIES: tuple[str, ...] = (
    "001.Black_footed_Albatross",
    "059.California_Gull",
    "141.Artic_Tern",
)
LANDBIRD_SPECIES: tuple[str, ...] = (
    "029.American_Crow",
    "118.House_Sparrow",
    "188.Pileated_Woodpecker",
)
DEFAULT_CLASSES: tuple[str, ...] = ("dog", "cat", "car", "cup", "tree", "boat")


def scaled_counts(table: dict[str, tuple[int, ...]], scale: int) -> dict[str, tuple[int, ...]]:
    """Divide every group count by `scale` (rounded), keeping at least one image per group."""
    if int(scale) < 1:
        raise ValueError("scale must be a positive integer")
    return {s: tuple(max(1, round(n / scale)) for n in row) for s, row in table.items()}


def _noise(rng: np.random.Generator, h: int, w: int, cells: int = 6) -> np.ndarray:
    """Smooth noise in [0, 1]: a small random grid upsampled bilinearly."""
    grid = (rng.random((cells, cells)) * 255).astype(np.uint8)
    img = Image.fromarray(grid, mode="L").resize((w, h), Image.Resampling.BILINEAR)
    return np.asarray(img, dtype=np.float32) / 255.0


def _background(rng: np.random.Generator, w: int, h: int, water: bool) -> Image.Image:
    n = _noise(rng, h, w)[..., None]
    if water:
        yy = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
        waves = 0.5 + 0.5 * np.sin(yy * 40 + rng.random() * 6.28)
        base = np.array([30, 90, 170], np.float32) + 50 * waves * np.array([0.3, 0.6, 1.0])
    else:
        base = np.array([60, 120, 40], np.float32) + 60 * n * np.array([1.0, 0.6, 0.2])
    arr = base + 40 * (n - 0.5)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), mode="RGB")


def _bird_image(rng: np.random.Generator, size: int, waterbird: bool, water: bool) -> Image.Image:
    img = _background(rng, size, size, water)
    mask = Image.new("L", (size, size), 0)
    d = ImageDraw.Draw(mask)
    cx, cy = rng.uniform(0.35, 0.65, 2) * size
    bw, bh = size * rng.uniform(0.18, 0.28), size * rng.uniform(0.10, 0.16)
    d.ellipse((cx - bw, cy - bh, cx + bw, cy + bh), fill=255)
    hr = bh * 0.8
    hx = cx + bw * (0.9 if rng.random() < 0.5 else -0.9)
    d.ellipse((hx - hr, cy - bh - hr, hx + hr, cy - bh + hr), fill=255)
    mask = mask.filter(ImageFilter.GaussianBlur(radius=max(1, size // 64)))  # soft matte
    colour = (235, 235, 225) if waterbird else (70, 50, 35)
    jitter = rng.integers(-20, 21, 3)
    bird = Image.new(
        "RGB",
        (size, size),
        tuple(int(np.clip(c + j, 0, 255)) for c, j in zip(colour, jitter, strict=True)),
    )
    return Image.composite(bird, img, mask)


def make_waterbirds_fixture(
    root: Path | str, scale: int = 100, *, seed: int = 0, image_size: int = 64
) -> Path:
    """Waterbirds in the release layout; scale=100 gives 119 images (train 49, val 12, test 58)."""
    rng = np.random.default_rng(seed)
    records: list[dict[str, Any]] = []
    for split, counts in scaled_counts(WATERBIRDS_COUNTS, scale).items():
        for g, n in enumerate(counts):
            y, place = g // 2, g % 2
            species = WATERBIRD_SPECIES if y else LANDBIRD_SPECIES
            for _ in range(n):
                records.append(
                    {
                        "image": _bird_image(rng, image_size, bool(y), bool(place)),
                        "y": y,
                        "place": place,
                        "split": split,
                        "species": species[int(rng.integers(len(species)))],
                    }
                )
    return write_waterbirds(root, records)


def relabel_waterbirds(root: str | Path, columns: Sequence[str]) -> None:
    """Flip the 0/1 `columns` of a Waterbirds fixture's `metadata.csv` in place: every image
    path and the file's byte size stay the same, so only a key built from the file's content
    (not its paths or size) can tell the relabelled dataset from the original."""
    import csv
    import io

    metadata = Path(root) / "metadata.csv"
    size = metadata.stat().st_size
    rows = list(csv.reader(io.StringIO(metadata.read_text())))
    pos = [rows[0].index(c) for c in columns]
    for r in rows[1:]:
        for p in pos:
            r[p] = str(1 - int(r[p]))
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    metadata.write_text(buf.getvalue())
    assert metadata.stat().st_size == size, "flipping 0/1 values keeps the size"


def _face_image(rng: np.random.Generator, w: int, h: int, blond: bool, male: bool) -> Image.Image:
    bg = tuple(int(c) for c in rng.integers(90, 200, 3))
    img = Image.new("RGB", (w, h), bg)
    d = ImageDraw.Draw(img)
    hair = (230, 200, 110) if blond else (50, 35, 25)
    hair = tuple(
        int(np.clip(c + j, 0, 255)) for c, j in zip(hair, rng.integers(-15, 16, 3), strict=True)
    )
    skin = tuple(int(c) for c in rng.integers([180, 140, 110], [240, 200, 170]))
    cx, cy = w / 2 + rng.uniform(-0.05, 0.05) * w, h * 0.52
    fw, fh = w * 0.28, h * 0.30
    hair_len = 0.15 if male else 0.55
    d.ellipse(
        (cx - fw * 1.2, cy - fh * 1.25, cx + fw * 1.2, cy + fh * (0.2 + hair_len * 1.5)), fill=hair
    )
    d.ellipse((cx - fw, cy - fh, cx + fw, cy + fh), fill=skin)
    for ex in (-0.4, 0.4):
        d.ellipse(
            (cx + ex * fw - 4, cy - 0.2 * fh - 3, cx + ex * fw + 4, cy - 0.2 * fh + 3),
            fill=(30, 30, 30),
        )
    if male and rng.random() < 0.5:
        d.rectangle(
            (cx - fw * 0.6, cy + fh * 0.55, cx + fw * 0.6, cy + fh * 0.8), fill=(90, 70, 60)
        )
    return img


def make_celeba_fixture(
    root: Path | str,
    scale: int = 1000,
    *,
    seed: int = 0,
    image_size: tuple[int, int] = (178, 218),
    variant: str = "txt",
) -> Path:
    """CelebA in the original (txt) or Kaggle (csv) layout; scale=1000 gives 205 images.

    Groups are (Blond_Hair, Male) with the real split ratios; the other 38 attributes are
    seeded coin flips (Black_Hair/Brown_Hair only when not blond).
    """
    rng = np.random.default_rng(seed)
    w, h = image_size
    records: list[dict[str, Any]] = []
    for split, counts in scaled_counts(CELEBA_COUNTS, scale).items():
        for g, n in enumerate(counts):
            blond, male = g // 2, g % 2
            for _ in range(n):
                attrs = {a: int(rng.random() < 0.3) for a in CELEBA_ATTRS}
                attrs["Blond_Hair"], attrs["Male"] = blond, male
                if blond:
                    attrs["Black_Hair"] = attrs["Brown_Hair"] = 0
                records.append(
                    {
                        "image": _face_image(rng, w, h, bool(blond), bool(male)),
                        "split": split,
                        "attrs": attrs,
                    }
                )
    return write_celeba(root, records, variant=variant)


_PALETTE: tuple[tuple[int, int, int], ...] = (
    (200, 60, 50),
    (60, 160, 70),
    (60, 90, 200),
    (220, 180, 40),
    (150, 70, 180),
    (40, 170, 170),
    (230, 120, 30),
    (120, 120, 120),
)


def _object_image(rng: np.random.Generator, size: int, class_index: int) -> Image.Image:
    """A coloured shape per class (colour and shape cycle with the class index)."""
    bg = _noise(rng, size, size)[..., None] * 60 + 150
    img = Image.fromarray(np.clip(np.repeat(bg, 3, axis=2), 0, 255).astype(np.uint8), mode="RGB")
    d = ImageDraw.Draw(img)
    colour = _PALETTE[class_index % len(_PALETTE)]
    shape = (class_index // len(_PALETTE) + class_index) % 3
    c = size / 2 + rng.uniform(-0.1, 0.1, 2) * size
    r = size * rng.uniform(0.22, 0.32)
    box = (c[0] - r, c[1] - r, c[0] + r, c[1] + r)
    if shape == 0:
        d.ellipse(box, fill=colour)
    elif shape == 1:
        d.rectangle(box, fill=colour)
    else:
        d.polygon([(c[0], c[1] - r), (c[0] + r, c[1] + r), (c[0] - r, c[1] + r)], fill=colour)
    return img


def make_typographic_fixture(
    root: Path | str,
    classes: Sequence[str] = DEFAULT_CLASSES,
    n_per_class: int = 3,
    *,
    seed: int = 0,
    image_size: int = 96,
    layout: str = "flat",
) -> Path:
    """An RTA-100/PAINT-style set: each class's shape with a wrong class word written on it.

    `layout`: 'flat' (images directly in root), 'rta100' (`root/ours/data/`) or 'paint'
    (`root/typographic_real_data_from_PAINT/typographic_attacks/`). Returns `root`.
    """
    sub = {
        "flat": "",
        "rta100": "ours/data",
        "paint": "typographic_real_data_from_PAINT/typographic_attacks",
    }
    if layout not in sub:
        raise ValueError(f"layout must be one of {sorted(sub)}")
    rng = np.random.default_rng(seed)
    classes = list(classes)
    records = []
    for ci, c in enumerate(classes):
        for _ in range(n_per_class):
            k = pick_wrong_word(classes, c, rng)
            img = attack_image(_object_image(rng, image_size, ci), classes[k], rng)
            records.append({"image": img, "label": c, "text": classes[k]})
    root = Path(root)
    write_typographic(root / sub[layout] if sub[layout] else root, records)
    return root


def make_disentangling_fixture(
    root: Path | str,
    objects: Sequence[str] = ("cup", "dog", "car", "tree", "boat"),
    attack_words: Sequence[str] = ("good", "cat", "phone"),
    *,
    seed: int = 0,
    image_size: int = 96,
    layout: str = "dp",
) -> Path:
    """Disentangling-style set: every object with every attack word (objects × words images)."""
    rng = np.random.default_rng(seed)
    records = []
    for oi, o in enumerate(objects):
        for word in attack_words:
            img = attack_image(_object_image(rng, image_size, oi), word, rng)
            records.append({"image": img, "label": o, "text": word})
    write_disentangling(root, records, layout=layout, classes=list(objects))
    return Path(root)


def make_imagefolder_fixture(
    root: Path | str,
    classes: Sequence[str] = ("cat", "dog", "car"),
    n_per_class: int = 4,
    *,
    seed: int = 0,
    image_size: int = 48,
    splits: bool = False,
) -> Path:
    """ImageFolder (`root/<class>/…`, or `root/<split>/<class>/…` with `splits=True`)."""
    rng = np.random.default_rng(seed)
    records: list[dict[str, Any]] = []
    split_names = ("train", "val", "test") if splits else (None,)
    for split in split_names:
        for ci, c in enumerate(classes):
            for _ in range(n_per_class):
                rec: dict[str, Any] = {"image": _object_image(rng, image_size, ci), "label": c}
                if split is not None:
                    rec["split"] = split
                records.append(rec)
    return write_imagefolder(root, records)
