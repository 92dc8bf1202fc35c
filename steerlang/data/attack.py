"""Typographic-attack synthesiser: write a wrong class word onto any image set.

Follows the Defense-Prefix (DP) recipe for synthetic typographic attacks: the word is a class name of the same
dataset redrawn until it differs from the true class; fill and stroke colours come from eight
named colours (stroke ≠ fill, stroke width 1); the font size starts as an integer in [20, 40]
(for a 224-pixel image; scaled with the image's short side here so small images get the same
proportions) and shrinks by 1 until the text fits; 2–3-word names break after the first word,
longer ones every two words; the top-left corner is uniform over the valid range.

Fonts: DP draws from {Roman2, courier, times}, which we do not vendor; we draw uniformly from
the DejaVu faces the system has, or Pillow's built-in scalable font when none is installed.
Every choice is driven by a seeded generator, so the same (seed, row) always gives the same
pixels.

Styles: `dp` is the recipe above. `note` is SynthWorld's paper note (dark bold bitmap letters
in a top or bottom band, `steerlang.zoo.world.write_word`): the zoo CLIP sees 64-pixel images,
where DP's scaled-down 6–11 px type is clutter rather than a word, and it was trained to read
notes, so on zoo datasets the attack is written the way the model reads. `copies="both"` gives
every image twice, clean then attacked, so feature statistics can contrast the two.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from steerlang.data.formats.typographic import write_typographic
from steerlang.data.table import ImageTable

COLOURS: dict[str, tuple[int, int, int]] = {
    "White": (255, 255, 255),
    "Blue": (0, 0, 255),
    "Green": (0, 128, 0),
    "Red": (255, 0, 0),
    "Magenta": (255, 0, 255),
    "Cyan": (0, 255, 255),
    "Yellow": (255, 255, 0),
    "Black": (0, 0, 0),
}
SIZE_RANGE: tuple[int, int] = (20, 40)
REFERENCE_SIDE = 224
ATTACK_STYLES: tuple[str, ...] = ("dp", "note")

_FONT_DIRS = (
    "/usr/share/fonts/truetype/dejavu",
    "/usr/share/fonts/dejavu",
    "/usr/local/share/fonts",
    "/Library/Fonts",
)
_FONT_FILES = ("DejaVuSans.ttf", "DejaVuSerif.ttf", "DejaVuSansMono.ttf")

FontSpec = str | Path | None


@lru_cache(maxsize=1)
def available_fonts() -> tuple[str, ...]:
    """Font files to draw from; 'default' (Pillow's built-in font) when no DejaVu face exists."""
    found: list[str] = []
    for name in _FONT_FILES:
        for d in _FONT_DIRS:
            p = Path(d) / name
            if p.is_file():
                found.append(str(p))
                break
    return tuple(found) or ("default",)


@lru_cache(maxsize=512)
def _load_font(spec: str, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    if spec == "default":
        return ImageFont.load_default(size=size)
    return ImageFont.truetype(spec, size=size)


def split_lines(word: str) -> str:
    """DP line breaking: 2–3-word names on two lines (first word, rest), longer every 2 words."""
    words = word.replace("_", " ").split()
    if len(words) <= 1:
        return " ".join(words)
    if len(words) <= 3:
        return words[0] + "\n" + " ".join(words[1:])
    return "\n".join(" ".join(words[i : i + 2]) for i in range(0, len(words), 2))


def _resize_center_crop(img: Image.Image, side: int) -> Image.Image:
    w, h = img.size
    s = side / min(w, h)
    nw, nh = max(side, round(w * s)), max(side, round(h * s))
    img = img.resize((nw, nh), Image.Resampling.BICUBIC)
    left, top = (nw - side) // 2, (nh - side) // 2
    return img.crop((left, top, left + side, top + side))


def attack_image(
    img: Image.Image,
    word: str,
    rng: np.random.Generator,
    font: FontSpec = None,
    *,
    resize: int | None = None,
) -> Image.Image:
    """Return a copy of `img` with `word` written on it (colours, size, position from `rng`).

    `font` is a font file, 'default' for Pillow's built-in font, or None to draw one uniformly
    from `available_fonts()`. `resize` applies DP's preprocessing first (short side to `resize`,
    bicubic, centre crop).
    """
    out = img.convert("RGB")
    if resize is not None:
        out = _resize_center_crop(out, resize)
    else:
        out = out.copy()
    W, H = out.size
    fonts = available_fonts()
    spec = str(font) if font is not None else fonts[int(rng.integers(len(fonts)))]
    names = list(COLOURS)
    fill = names[int(rng.integers(len(names)))]
    stroke = fill
    while stroke == fill:
        stroke = names[int(rng.integers(len(names)))]
    text = split_lines(word)
    scale = min(W, H) / REFERENCE_SIDE
    size = max(1, round(int(rng.integers(SIZE_RANGE[0], SIZE_RANGE[1] + 1)) * scale))
    draw = ImageDraw.Draw(out)
    while True:
        f = _load_font(spec, size)
        left, top, right, bottom = draw.multiline_textbbox((0, 0), text, font=f, stroke_width=1)
        w, h = right - left, bottom - top
        if (w <= W and h <= H) or size == 1:
            break
        size -= 1
    x = int((W - w) * rng.random()) if W > w else 0
    y = int((H - h) * rng.random()) if H > h else 0
    draw.multiline_text(
        (x - left, y - top),
        text,
        font=f,
        fill=COLOURS[fill],
        stroke_width=1,
        stroke_fill=COLOURS[stroke],
    )
    return out


def render_attack(
    img: Image.Image,
    word: str,
    rng: np.random.Generator,
    style: str = "dp",
    font: FontSpec = None,
    *,
    resize: int | None = None,
) -> Image.Image:
    """A copy of `img` with `word` written in `style` (one of `ATTACK_STYLES`)."""
    if style == "dp":
        return attack_image(img, word, rng, font, resize=resize)
    if style == "note":
        from steerlang.zoo.world import write_word

        out = img.convert("RGB")
        out = _resize_center_crop(out, resize) if resize is not None else out.copy()
        write_word(out, word, rng, "note")
        return out
    raise ValueError(f"unknown attack style {style!r}; styles: {', '.join(ATTACK_STYLES)}")


def pick_wrong_word(classes: Sequence[str], true_class: str, rng: np.random.Generator) -> int:
    """Index of a class name drawn uniformly and redrawn until it differs from `true_class`."""
    if len({c for c in classes if c != true_class}) == 0:
        raise ValueError("a typographic attack needs at least one class other than the true one")
    while True:
        k = int(rng.integers(len(classes)))
        if classes[k] != true_class:
            return k


def _row_key(table: ImageTable, i: int) -> int:
    p = table.path(i)
    try:
        rel = p.relative_to(table.root).as_posix()
    except ValueError:
        rel = p.as_posix()
    return zlib.crc32(rel.encode("utf-8"))


class AttackedTable(ImageTable):
    """An `ImageTable` whose images carry a wrong class word, rendered on the fly.

    Adds the columns `attack` (index of the written word in `classes`, -1 on a clean copy),
    `attack_name` ('' on a clean copy) and `attacked` (1 or 0). Each row's word and rendering
    depend only on (seed, the row's path relative to the root), so subsets, splits and reruns
    see identical pixels.
    """

    attack_seeds: list[int | None]  # None: the row is a clean copy
    attack_font: FontSpec
    attack_resize: int | None
    attack_style: str

    def image(self, i: int) -> Image.Image:
        clean = super().image(i)
        seed = self.attack_seeds[i]
        if seed is None:
            return clean
        word = self._data["attack_name"][i]
        rng = np.random.default_rng([seed, 1])
        return render_attack(
            clean, word, rng, self.attack_style, self.attack_font, resize=self.attack_resize
        )

    def clean_image(self, i: int) -> Image.Image:
        return super().image(i)

    def subset(self, indices: Sequence[int] | np.ndarray, *, name: str | None = None) -> ImageTable:
        idx = [int(i) for i in np.asarray(indices, dtype=np.int64).reshape(-1)]
        base = ImageTable.subset(self, idx, name=name)
        return _wrap(
            base,
            [self.attack_seeds[i] for i in idx],
            self.attack_font,
            self.attack_resize,
            self.attack_style,
        )


def _wrap(
    base: ImageTable,
    seeds: list[int | None],
    font: FontSpec,
    resize: int | None,
    style: str = "dp",
) -> AttackedTable:
    t = AttackedTable.__new__(AttackedTable)
    t.__dict__.update(base.__dict__)
    t._rows = None
    t.attack_seeds = seeds
    t.attack_font = font
    t.attack_resize = resize
    t.attack_style = style
    return t


def attack_table(
    table: ImageTable,
    classes: Sequence[str] | None = None,
    label_column: str | None = None,
    seed: int = 0,
    *,
    font: FontSpec = None,
    resize: int | None = None,
    style: str = "dp",
    copies: str = "attacked",
) -> AttackedTable:
    """A view of `table` whose `.image(i)` writes a wrong class word on row i's image.

    `classes` defaults to `table.classes`; `label_column` (default: the format's label column)
    holds the true class as an index into `classes` or as its name. `style` is how the word is
    drawn (`ATTACK_STYLES`). `copies="both"` returns 2N rows: the N clean images first, then
    the same N attacked (same order), told apart by the `attacked` column.
    """
    if style not in ATTACK_STYLES:
        raise ValueError(f"unknown attack style {style!r}; styles: {', '.join(ATTACK_STYLES)}")
    if copies not in ("attacked", "both"):
        raise ValueError(f"copies must be 'attacked' or 'both', not {copies!r}")
    classes = list(classes if classes is not None else (table.classes or []))
    if len(classes) < 2:
        raise ValueError("attack_table needs at least two class names")
    label_column = label_column or table.meta.get("label_column")
    if not label_column:
        raise ValueError("attack_table needs label_column (the table names no label column)")
    labels = table.column(label_column).tolist()
    seeds: list[int] = []
    words: list[int] = []
    for i, v in enumerate(labels):
        true = classes[int(v)] if isinstance(v, int) else str(v)
        s = int(zlib.crc32(f"{seed}:{_row_key(table, i)}".encode()))
        rng = np.random.default_rng([s, 0])
        words.append(pick_wrong_word(classes, true, rng))
        seeds.append(s)
    data = {c: list(table._data[c]) for c in table.columns}
    paths = list(table.paths)
    row_seeds: list[int | None] = list(seeds)
    attack = list(words)
    names = [classes[k] for k in words]
    flags = [1] * len(words)
    source = table._source
    if copies == "both":
        n = len(words)
        data = {c: v + v for c, v in data.items()}
        paths = paths + paths
        row_seeds = [None] * n + row_seeds
        attack = [-1] * n + attack
        names = [""] * n + names
        flags = [0] * n + flags
        source = source + source if source is not None else None
    base = ImageTable(
        name=table.name,
        format=table.format,
        root=table.root,
        paths=paths,
        data={**data, "attack": attack, "attack_name": names, "attacked": flags},
        classes=table.classes,
        meta={
            **table.meta,
            "attack": {"recipe": style, "seed": seed, "classes": classes, "copies": copies},
            "attack_column": "attack",
        },
        source=source,
    )
    return _wrap(base, row_seeds, font, resize, style)


def write_attacked_copy(
    table: ImageTable,
    out_root: Path | str,
    *,
    classes: Sequence[str] | None = None,
    label_column: str | None = None,
    seed: int = 0,
    font: FontSpec = None,
    resize: int | None = None,
    style: str = "dp",
) -> Path:
    """Write an attacked copy of `table` as a typographic set (`label=<true>_text=<word>.png`),
    loadable with `load_dataset('typographic', out_root)`."""
    view = attack_table(table, classes, label_column, seed, font=font, resize=resize, style=style)
    cls = list(classes if classes is not None else (table.classes or []))
    labels = view.column(view.meta.get("label_column") if label_column is None else label_column)

    def records() -> Any:
        for i in range(len(view)):
            v = labels[i].item() if hasattr(labels[i], "item") else labels[i]
            true = cls[int(v)] if isinstance(v, int) else str(v)
            yield {"image": view.image(i), "label": true, "text": view._data["attack_name"][i]}

    return write_typographic(out_root, records())
