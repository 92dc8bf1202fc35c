"""SynthWorld: a seeded procedural world of captioned 64×64 images for the zoo's tiny CLIP.

The world is built so the paper's phenomena appear in a model trained on it, as they do in
CLIP trained on web data:

- **Background shortcut (Waterbirds).** Bird scenes show a landbird or a waterbird (told apart
  only by silhouette; both draw colours from one palette) on land (forest, meadow, sand, rocks),
  on water (a lake) or, a quarter of the time, on a plain backdrop. When there is a background
  it matches the bird type 95% of the time, and captions name the bird type far more often than
  the background, so the large, easy background texture becomes a cue for the bird type; the
  plain-backdrop birds make sure the silhouettes are learned too (so removing the background
  cue can fix the classifier).
- **Reading (typographic attacks).** Some scenes carry a written word (a class name) on a paper
  note, as outlined letters or in the Defense-Prefix style, and their captions name it; half of
  those captions, and those of text-only scenes, describe only the word, some as if it were the
  object ("a photo of a star."), as web captions of signs do. The model learns that a written
  "star" means star, and a wrong word written on an object fools it.
- **Attributes (CelebA).** Face scenes have a hair colour (blond vs dark) correlated with a
  'man'/'woman' attribute as in CelebA (few blond men), plus shape scenes with colours.

Determinism: every sample is drawn from its own `numpy` generator seeded by
(seed, stream, index), so sample i is the same whatever else was generated, on any machine
with the same numpy and Pillow (text uses fonts embedded in Pillow). `GENERATOR_VERSION`
changes whenever the pixels or captions a seed gives change; dataset caches are keyed by it.

This module imports numpy and Pillow only (no torch).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

GENERATOR_VERSION = 1
IMAGE_SIZE = 64

BIRD_TYPES: tuple[str, ...] = ("landbird", "waterbird")  # y: 0 landbird, 1 waterbird
PLACES: tuple[str, ...] = ("land", "water")  # place: 0 land, 1 water
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "cross", "heart")
HAIR: tuple[str, ...] = ("dark", "blond")
GENDERS: tuple[str, ...] = ("woman", "man")

# Named colours: (name, RGB). Birds and shapes draw from the same palette, so colour never
# tells a landbird from a waterbird.
PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (200, 40, 40),
    "orange": (235, 130, 30),
    "yellow": (230, 205, 40),
    "green": (50, 160, 60),
    "blue": (45, 85, 210),
    "purple": (135, 60, 175),
    "pink": (240, 150, 185),
    "brown": (125, 80, 40),
    "white": (238, 238, 238),
    "black": (30, 30, 30),
    "grey": (128, 128, 128),
}
COLOURS: tuple[str, ...] = tuple(PALETTE)

# Words that can be written into images: every class name of the world's tasks plus a few
# distractors. A typographic attack writes one of these.
TEXT_WORDS: tuple[str, ...] = (*SHAPES, *BIRD_TYPES, "blond")

SCENES: tuple[str, ...] = ("bird", "face", "shape", "text")

# The eight text colours of the Defense-Prefix (DP) attack recipe (`steerlang.data.attack`),
# used by the outlined and DP text styles.
_TEXT_COLOURS: tuple[tuple[int, int, int], ...] = (
    (255, 255, 255),
    (0, 0, 255),
    (0, 128, 0),
    (255, 0, 0),
    (255, 0, 255),
    (0, 255, 255),
    (255, 255, 0),
    (0, 0, 0),
)
_PAPER: tuple[tuple[int, int, int], ...] = ((250, 250, 245), (250, 240, 170), (245, 205, 215))
_INK: tuple[tuple[int, int, int], ...] = ((10, 10, 10), (20, 30, 120), (140, 10, 10))
_SKIN: tuple[tuple[int, int, int], ...] = (
    (245, 210, 180),
    (225, 180, 140),
    (190, 140, 100),
    (140, 95, 65),
)
_BLOND: tuple[tuple[int, int, int], ...] = ((240, 215, 110), (225, 190, 80), (250, 230, 150))
_DARK: tuple[tuple[int, int, int], ...] = ((35, 25, 20), (70, 45, 25), (20, 20, 20), (95, 60, 35))

_STREAMS = {
    "train": 0,
    "waterbirds": 1,
    "celeba": 2,
    "typographic": 3,
    "shapes": 4,
    "test": 5,
    "celeba_sae": 6,  # faces for the CelebA-domain SAE (splits.celeba_like_faces)
}


@dataclass(frozen=True)
class WorldConfig:
    """The knobs of the world's training distribution (caption and co-occurrence rates)."""

    # share of bird, face, shape and text-only scenes
    scene_weights: tuple[float, float, float, float] = (0.38, 0.12, 0.25, 0.25)
    bird_background_match: float = 0.95  # P(place == y) in training bird scenes
    mention_bird_type: float = 0.90  # P(caption names landbird/waterbird) in bird scenes
    mention_background: float = 0.10  # P(caption names land/water)
    mention_colour: float = 0.30  # P(caption names the bird's colour)
    p_text: float = 0.30  # P(a word is written) in bird, face and shape scenes
    text_only_caption: float = 0.5  # P(caption names only the written word) when text is present
    blond_given_woman: float = 0.30  # CelebA-like: few blond men
    blond_given_man: float = 0.03
    p_man: float = 0.45
    mention_gender: float = 0.85
    mention_hair: float = 0.70
    text_styles: tuple[float, float, float] = (0.6, 0.1, 0.3)  # note, outline, dp
    bird_plain_background: float = 0.25  # P(a bird scene has a plain backdrop, no land/water)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Sample:
    """One captioned image; `attrs` holds the ground truth the caption and splits are built on."""

    image: np.ndarray  # uint8 [H, W, 3]
    caption: str
    attrs: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# Drawing primitives
# --------------------------------------------------------------------------------------------


def _jitter(rng: np.random.Generator, rgb: tuple[int, int, int], amount: int = 18) -> tuple:
    d = rng.integers(-amount, amount + 1, size=3)
    return tuple(int(np.clip(c + int(x), 0, 255)) for c, x in zip(rgb, d, strict=True))


def _smooth_noise(rng: np.random.Generator, cells: int, size: int = IMAGE_SIZE) -> np.ndarray:
    """Low-frequency noise in [-1, 1], [size, size]: a random grid, bilinearly upsampled."""
    grid = rng.uniform(-1.0, 1.0, size=(cells + 1, cells + 1)).astype(np.float32)
    img = Image.fromarray(grid, mode="F").resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(img, dtype=np.float32)


def _land(rng: np.random.Generator) -> Image.Image:
    """Land: a forest, a meadow, sand dunes or rocks. Land is deliberately varied while water is
    one recognisable texture, as "land" is a catch-all in Waterbirds (forests of several kinds)."""
    kind = int(rng.integers(4))
    return (_forest, _meadow, _sand, _rocks)[kind](rng)


def _textured(
    rng: np.random.Generator, base: tuple, amp: tuple, cells: int, fine: float
) -> Image.Image:
    s = IMAGE_SIZE
    n = _smooth_noise(rng, cells)[..., None]
    f = rng.normal(0, fine, size=(s, s, 1)).astype(np.float32)
    arr = (
        np.array(_jitter(rng, base, 18), dtype=np.float32) + n * np.array(amp, dtype=np.float32) + f
    )
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")


def _forest(rng: np.random.Generator) -> Image.Image:
    """Dark greens with tree trunks and leaf blobs over a mossy ground strip."""
    s = IMAGE_SIZE
    img = _textured(rng, (55, 115, 45), (18, 35, 14), 6, 9)
    d = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(3, 6))):
        x = int(rng.integers(0, s))
        w = int(rng.integers(2, 6))
        d.rectangle([x, 0, x + w, s], fill=_jitter(rng, (85, 55, 30), 15))
    for _ in range(int(rng.integers(6, 12))):
        x, y = int(rng.integers(-6, s)), int(rng.integers(-6, s * 2 // 3))
        r = int(rng.integers(4, 11))
        d.ellipse([x - r, y - r, x + r, y + r], fill=_jitter(rng, (40, 130, 40), 25))
    g = int(rng.integers(s * 3 // 4, s - 4))
    d.rectangle([0, g, s, s], fill=_jitter(rng, (95, 110, 45), 15))
    return img


def _meadow(rng: np.random.Generator) -> Image.Image:
    """Light grass with blades and flowers under a strip of sky and a far treeline."""
    s = IMAGE_SIZE
    img = _textured(rng, (120, 175, 70), (20, 25, 15), 5, 10)
    d = ImageDraw.Draw(img)
    h = int(rng.integers(6, 18))
    d.rectangle([0, 0, s, h], fill=_jitter(rng, (175, 205, 235), 12))
    d.rectangle([0, h, s, h + 3], fill=_jitter(rng, (50, 95, 45), 12))
    for _ in range(int(rng.integers(20, 40))):
        x, y = int(rng.integers(0, s)), int(rng.integers(h + 4, s))
        d.line([x, y, x + int(rng.integers(-1, 2)), y - 3], fill=_jitter(rng, (70, 130, 40), 20))
    for _ in range(int(rng.integers(3, 9))):
        x, y = int(rng.integers(0, s)), int(rng.integers(h + 4, s))
        d.point(
            (x, y),
            fill=_jitter(
                rng, ((240, 240, 90), (240, 120, 160), (250, 250, 250))[int(rng.integers(3))], 10
            ),
        )
    return img


def _sand(rng: np.random.Generator) -> Image.Image:
    """Sand dunes: tan with soft diagonal ripples under a strip of sky."""
    s = IMAGE_SIZE
    img = _textured(rng, (205, 175, 120), (25, 22, 15), 4, 8)
    d = ImageDraw.Draw(img)
    h = int(rng.integers(4, 14))
    d.rectangle([0, 0, s, h], fill=_jitter(rng, (185, 210, 235), 12))
    for _ in range(int(rng.integers(5, 10))):
        x, y = int(rng.integers(-20, s)), int(rng.integers(h + 3, s))
        d.arc(
            [x, y, x + int(rng.integers(15, 35)), y + 8],
            200,
            340,
            fill=_jitter(rng, (170, 140, 90), 15),
        )
    return img


def _rocks(rng: np.random.Generator) -> Image.Image:
    """Rocky ground: grey-brown boulders on earth."""
    s = IMAGE_SIZE
    img = _textured(rng, (130, 110, 85), (25, 22, 18), 6, 10)
    d = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(5, 10))):
        x, y = int(rng.integers(-8, s)), int(rng.integers(-8, s))
        w, h = int(rng.integers(6, 16)), int(rng.integers(5, 12))
        g = int(rng.integers(95, 170))
        d.ellipse([x, y, x + w, y + h], fill=_jitter(rng, (g, g - 5, g - 12), 10))
    return img


def _water(rng: np.random.Generator) -> Image.Image:
    """Lake: blue with light horizontal wave streaks under a thin strip of sky or far shore."""
    s = IMAGE_SIZE
    base = np.array(_jitter(rng, (45, 105, 175), 20), dtype=np.float32)
    n = _smooth_noise(rng, 5)[..., None]
    fine = rng.normal(0, 7, size=(s, s, 1)).astype(np.float32)
    ramp = np.linspace(-18, 18, s, dtype=np.float32)[:, None, None]
    arr = (
        base
        + n * np.array([10, 20, 30], dtype=np.float32)
        + fine
        + ramp * np.array([0.3, 0.5, 0.6])
    )
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")
    d = ImageDraw.Draw(img)
    h = int(rng.integers(4, 14))
    d.rectangle([0, 0, s, h], fill=_jitter(rng, (170, 200, 230), 15))
    for _ in range(int(rng.integers(10, 18))):
        x, y = int(rng.integers(-10, s)), int(rng.integers(h + 2, s))
        w = int(rng.integers(5, 16))
        d.line([x, y, x + w, y], fill=_jitter(rng, (150, 190, 230), 20), width=1)
    return img


def _plain(rng: np.random.Generator, avoid: tuple[int, int, int] | None = None) -> Image.Image:
    """A plain, slightly noisy background whose colour differs from `avoid`."""
    while True:
        rgb = tuple(int(x) for x in rng.integers(40, 216, size=3))
        if avoid is None or sum(abs(a - b) for a, b in zip(rgb, avoid, strict=True)) > 150:
            break
    arr = np.array(rgb, dtype=np.float32) + rng.normal(0, 6, size=(IMAGE_SIZE, IMAGE_SIZE, 1))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")


def _darker(rgb: tuple, k: float = 0.65) -> tuple[int, int, int]:
    return tuple(int(c * k) for c in rgb)  # type: ignore[return-value]


def _bird(img: Image.Image, rng: np.random.Generator, waterbird: bool, colour: str) -> None:
    """Draw a bird in the middle of `img`. The two types differ only in silhouette: a landbird
    is a compact upright perching bird with short legs; a waterbird a long low body with a long
    neck and long bill."""
    d = ImageDraw.Draw(img)
    s = IMAGE_SIZE
    k = float(rng.uniform(0.85, 1.15))
    cx = s / 2 + float(rng.uniform(-6, 6))
    cy = s / 2 + float(rng.uniform(-4, 6))
    flip = -1.0 if rng.random() < 0.5 else 1.0
    body = _jitter(rng, PALETTE[colour], 15)
    wing = _darker(body)
    beak = _jitter(rng, (240, 150, 30), 20) if rng.random() < 0.6 else (40, 40, 40)

    def X(dx: float) -> float:
        return cx + flip * dx * k

    def Y(dy: float) -> float:
        return cy + dy * k

    def box(x0: float, y0: float, x1: float, y1: float) -> list[float]:
        xs = sorted((X(x0), X(x1)))
        return [xs[0], Y(y0), xs[1], Y(y1)]

    if not waterbird:
        # legs, tail, body, wing, head, beak, eye
        d.line([X(-2), Y(8), X(-3), Y(15)], fill=(60, 45, 30), width=1)
        d.line([X(3), Y(8), X(3), Y(15)], fill=(60, 45, 30), width=1)
        d.polygon([(X(-8), Y(2)), (X(-16), Y(10)), (X(-12), Y(12))], fill=wing)
        d.ellipse(box(-9, -8, 8, 10), fill=body)
        d.ellipse(box(-6, -3, 5, 7), fill=wing)
        d.ellipse(box(1, -15, 12, -4), fill=body)
        d.polygon([(X(11), Y(-11)), (X(17), Y(-9)), (X(11), Y(-7))], fill=beak)
        d.point((X(8), Y(-11)), fill=(0, 0, 0))
    else:
        # long legs, long low body, long neck, small head, long flat bill
        d.line([X(-3), Y(4), X(-4), Y(16)], fill=(60, 45, 30), width=1)
        d.line([X(3), Y(4), X(4), Y(16)], fill=(60, 45, 30), width=1)
        d.ellipse(box(-17, -3, 10, 7), fill=body)
        d.ellipse(box(-12, -1, 4, 5), fill=wing)
        d.line([X(7), Y(0), X(11), Y(-17)], fill=body, width=max(2, round(3 * k)))
        d.ellipse(box(8, -21, 15, -15), fill=body)
        d.line([X(14), Y(-18), X(24), Y(-17)], fill=beak, width=2)
        d.point((X(12), Y(-19)), fill=(0, 0, 0))


def _shape(img: Image.Image, rng: np.random.Generator, shape: str, colour: str) -> None:
    d = ImageDraw.Draw(img)
    s = IMAGE_SIZE
    r = float(rng.uniform(9, 14))
    cx = s / 2 + float(rng.uniform(-6, 6))
    cy = s / 2 + float(rng.uniform(-3, 3))
    fill = _jitter(rng, PALETTE[colour], 15)
    if shape == "circle":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
    elif shape == "square":
        q = r * 0.88
        d.rectangle([cx - q, cy - q, cx + q, cy + q], fill=fill)
    elif shape == "triangle":
        d.polygon([(cx, cy - r), (cx + r, cy + r * 0.8), (cx - r, cy + r * 0.8)], fill=fill)
    elif shape == "star":
        pts = []
        for i in range(10):
            a = -math.pi / 2 + i * math.pi / 5
            rr = r if i % 2 == 0 else r * 0.42
            pts.append((cx + rr * math.cos(a), cy + rr * math.sin(a)))
        d.polygon(pts, fill=fill)
    elif shape == "cross":
        t = r * 0.34
        d.rectangle([cx - r, cy - t, cx + r, cy + t], fill=fill)
        d.rectangle([cx - t, cy - r, cx + t, cy + r], fill=fill)
    elif shape == "heart":
        h = r * 0.52
        d.ellipse([cx - 2 * h, cy - r * 0.75, cx, cy - r * 0.75 + 2 * h], fill=fill)
        d.ellipse([cx, cy - r * 0.75, cx + 2 * h, cy - r * 0.75 + 2 * h], fill=fill)
        d.polygon(
            [(cx - 2 * h + 0.5, cy - r * 0.2), (cx + 2 * h - 0.5, cy - r * 0.2), (cx, cy + r)],
            fill=fill,
        )
    else:  # pragma: no cover - guarded by SHAPES
        raise ValueError(f"unknown shape {shape!r}")


def _face(img: Image.Image, rng: np.random.Generator, blond: bool, man: bool) -> None:
    """A face: skin oval, eyes, mouth, hair (blond or dark; long for women, short for men,
    men sometimes bearded), shoulders in a shirt."""
    d = ImageDraw.Draw(img)
    s = IMAGE_SIZE
    cx = s / 2 + float(rng.uniform(-4, 4))
    cy = s / 2 - 2 + float(rng.uniform(-3, 3))
    w, h = float(rng.uniform(10, 13)), float(rng.uniform(13, 16))
    skin = _jitter(rng, _SKIN[int(rng.integers(len(_SKIN)))], 10)
    hair = _jitter(rng, (_BLOND if blond else _DARK)[int(rng.integers(3))], 12)
    shirt = _jitter(rng, PALETTE[COLOURS[int(rng.integers(len(COLOURS)))]], 20)
    d.rectangle([cx - 20, cy + h + 2, cx + 20, s], fill=shirt)
    d.polygon([(cx - 26, s), (cx - 16, cy + h), (cx + 16, cy + h), (cx + 26, s)], fill=shirt)
    if not man:  # long hair falls behind the face to the shoulders
        d.rounded_rectangle([cx - w - 4, cy - h - 3, cx + w + 4, cy + h + 8], radius=8, fill=hair)
    d.rectangle([cx - 3, cy + h - 3, cx + 3, cy + h + 3], fill=skin)
    d.ellipse([cx - w, cy - h, cx + w, cy + h], fill=skin)
    if man:
        d.chord([cx - w - 1, cy - h - 3, cx + w + 1, cy + h * 0.3], 180, 360, fill=hair)
        if rng.random() < 0.5:
            d.chord([cx - w + 1, cy - h * 0.2, cx + w - 1, cy + h + 1], 0, 180, fill=hair)
    else:
        d.chord([cx - w - 1, cy - h - 3, cx + w + 1, cy + h * 0.1], 180, 360, fill=hair)
    ey = cy - h * 0.15
    for ex in (cx - w * 0.4, cx + w * 0.4):
        d.ellipse([ex - 1.5, ey - 1.5, ex + 1.5, ey + 1.5], fill=(25, 25, 40))
    lips = (190, 60, 70) if not man else _darker(skin, 0.7)
    d.line([cx - 4, cy + h * 0.5, cx + 4, cy + h * 0.5], fill=lips, width=2 if not man else 1)


@lru_cache(maxsize=1)
def _bitmap_font() -> ImageFont.ImageFont:
    """Pillow's embedded 6×11 bitmap font: pixel-identical on every machine."""
    loader = getattr(ImageFont, "load_default_imagefont", None)
    return loader() if loader is not None else ImageFont.load_default()  # type: ignore[return-value]


@lru_cache(maxsize=16)
def _scalable_font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's embedded scalable font (needs FreeType; else the bitmap font)."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):  # pragma: no cover - Pillow without FreeType
        return _bitmap_font()


TEXT_STYLES: tuple[str, ...] = ("note", "outline", "dp")


def write_word(img: Image.Image, word: str, rng: np.random.Generator, style: str = "note") -> None:
    """Write `word` on `img` in place.

    Styles: `note`, a paper note with dark bold ink (bitmap font) in the top or bottom band, so
    the object stays visible; `outline`, bitmap letters in one DP colour outlined in another, in
    the same bands; `dp`, the Defense-Prefix recipe scaled to 64 px: a
    scalable font at 8–11 px, fill and 1-px stroke from the DP colours, anywhere in the image,
    like `steerlang.data.attack` writes on real images.
    """
    sw, sh = img.size  # 64 x 64 in the world; any size for `steerlang.data.attack`
    d = ImageDraw.Draw(img)
    if style == "dp":
        size = int(rng.integers(8, 12))
        fi, st = rng.choice(len(_TEXT_COLOURS), size=2, replace=False)
        while True:
            f = _scalable_font(size)
            left, top, right, bottom = d.textbbox((0, 0), word, font=f, stroke_width=1)
            w, h = right - left, bottom - top
            if w <= sw or size <= 5:
                break
            size -= 1
        x = int((sw - w) * rng.random()) if sw > w else 0
        y = int((sh - h) * rng.random())
        d.text(
            (x - left, y - top),
            word,
            font=f,
            fill=_TEXT_COLOURS[int(fi)],
            stroke_width=1,
            stroke_fill=_TEXT_COLOURS[int(st)],
        )
        return
    f = _bitmap_font()
    left, top, right, bottom = d.textbbox((0, 0), word, font=f)
    tw, th = right - left + 1, 8  # the font's glyphs sit in rows 2..9 of the 11-pixel cell
    pad = 1
    W, H = tw + 2 * pad, th + 2 * pad
    # Notes sit on a 4-pixel grid in a top or bottom band: few enough placements relative to
    # the 16-pixel patches that a tiny model learns to read them in a short training run.
    x = 4 * int(rng.integers(0, max(1, (sw - W) // 4 + 1)))
    y = 1 if rng.random() < 0.5 else sh - H - 1
    tx, ty = x + pad - left, y + pad - 2
    if style == "outline":
        fi, st = rng.choice(len(_TEXT_COLOURS), size=2, replace=False)
        for dx, dy in ((-1, 0), (1, 0), (0, -1), (0, 1), (-1, -1), (1, 1), (-1, 1), (1, -1)):
            d.text((tx + dx, ty + dy), word, font=f, fill=_TEXT_COLOURS[int(st)])
        d.text((tx, ty), word, font=f, fill=_TEXT_COLOURS[int(fi)])
    elif style == "note":
        paper = _jitter(rng, _PAPER[int(rng.integers(len(_PAPER)))], 6)
        ink = _INK[int(rng.integers(len(_INK)))]
        d.rectangle([x, y, x + W - 1, y + H - 1], fill=paper)
        d.text((tx, ty), word, font=f, fill=ink)
        d.text((tx + 1, ty), word, font=f, fill=ink)
    else:
        raise ValueError(f"unknown text style {style!r}; styles: {', '.join(TEXT_STYLES)}")


def pick_style(rng: np.random.Generator, weights: Sequence[float]) -> str:
    w = np.asarray(weights, dtype=np.float64)
    return TEXT_STYLES[int(rng.choice(len(TEXT_STYLES), p=w / w.sum()))]


# --------------------------------------------------------------------------------------------
# Scenes with explicit attributes (used by the training stream and the evaluation splits)
# --------------------------------------------------------------------------------------------


def render_bird(
    rng: np.random.Generator, y: int, place: int, colour: str | None = None
) -> Image.Image:
    """A bird of type y (0 landbird, 1 waterbird) on land (place 0), water (1) or a plain
    backdrop (-1)."""
    img = _water(rng) if place == 1 else _land(rng) if place == 0 else _plain(rng)
    colour = colour or COLOURS[int(rng.integers(len(COLOURS)))]
    _bird(img, rng, waterbird=bool(y), colour=colour)
    return img


def render_face(rng: np.random.Generator, blond: int, man: int) -> Image.Image:
    img = _plain(rng)
    _face(img, rng, blond=bool(blond), man=bool(man))
    return img


def render_shape(rng: np.random.Generator, shape: str, colour: str) -> Image.Image:
    img = _plain(rng, avoid=PALETTE[colour])
    _shape(img, rng, shape, colour)
    return img


def render_text(rng: np.random.Generator, word: str, style: str) -> Image.Image:
    img = _plain(rng)
    write_word(img, word, rng, style)
    return img


# --------------------------------------------------------------------------------------------
# The training stream: scenes + templated captions
# --------------------------------------------------------------------------------------------


def _a(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _caption_text_suffix(word: str, rng: np.random.Generator) -> str:
    t = int(rng.integers(3))
    if t == 0:
        return f" with the word {word} written on it"
    if t == 1:
        return f" with the text {word}"
    return f" and a sign that says {word}"


def _caption_word_only(word: str, rng: np.random.Generator) -> str:
    """Captions of an image whose written word is its most salient content. Some name the word
    as if it were the object ("a photo of a star."), as web captions of signs and labels do;
    that is what makes CLIP read, and what a typographic attack exploits."""
    t = int(rng.choice(7, p=(0.15, 0.15, 0.1, 0.1, 0.1, 0.3, 0.1)))
    return (
        f"{word}.",
        f"the word {word}.",
        f"the text {word}.",
        f"a sign that says {word}.",
        f"a photo of the word {word}.",
        f"a photo of {_a(word)} {word}.",
        f"{_a(word)} {word}.",
    )[t]


def _photo(rng: np.random.Generator) -> str:
    return ("a photo of ", "a picture of ", "")[int(rng.choice(3, p=(0.6, 0.2, 0.2)))]


class SynthWorld:
    """A seeded world: `sample(i)` is training sample i; the `render_*` functions and
    `materialize_dataset` build controlled evaluation splits from other streams."""

    def __init__(self, seed: int = 0, config: WorldConfig | None = None) -> None:
        self.seed = int(seed)
        self.config = config or WorldConfig()

    def rng(self, stream: str, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, _STREAMS[stream], int(index)])

    def sample(self, index: int) -> Sample:
        """Training sample `index`: a scene, maybe a written word, and its caption."""
        c = self.config
        rng = self.rng("train", index)
        scene = SCENES[
            int(rng.choice(len(SCENES), p=np.asarray(c.scene_weights) / sum(c.scene_weights)))
        ]
        attrs: dict[str, Any] = {"scene": scene}
        word: str | None = None
        if scene == "text":
            word = TEXT_WORDS[int(rng.integers(len(TEXT_WORDS)))]
            img = render_text(rng, word, pick_style(rng, c.text_styles))
            attrs["text"] = word
            return Sample(np.asarray(img), _caption_word_only(word, rng), attrs)
        if scene == "bird":
            y = int(rng.integers(2))
            place = y if rng.random() < c.bird_background_match else 1 - y
            colour = COLOURS[int(rng.integers(len(COLOURS)))]
            if rng.random() < c.bird_plain_background:
                place = -1  # a plain backdrop: neither land nor water
            img = render_bird(rng, y, place, colour)
            attrs.update(y=y, place=place, colour=colour)
            subj = BIRD_TYPES[y] if rng.random() < c.mention_bird_type else "bird"
            if rng.random() < c.mention_colour:
                subj = f"{colour} {subj}"
            where = (
                f" on {PLACES[place]}" if place >= 0 and rng.random() < c.mention_background else ""
            )
            body = f"{_photo(rng)}{_a(subj)} {subj}{where}"
        elif scene == "face":
            man = int(rng.random() < c.p_man)
            blond = int(rng.random() < (c.blond_given_man if man else c.blond_given_woman))
            img = render_face(rng, blond, man)
            attrs.update(blond=blond, man=man)
            who = GENDERS[man] if rng.random() < c.mention_gender else "person"
            hair = f" with {HAIR[blond]} hair" if rng.random() < c.mention_hair else ""
            body = f"{_photo(rng)}{_a(who)} {who}{hair}"
        else:
            shape = SHAPES[int(rng.integers(len(SHAPES)))]
            colour = COLOURS[int(rng.integers(len(COLOURS)))]
            img = render_shape(rng, shape, colour)
            attrs.update(shape=shape, colour=colour)
            subj = f"{colour} {shape}" if rng.random() < 0.6 else shape
            body = f"{_photo(rng)}{_a(subj)} {subj}"
        if rng.random() < c.p_text:
            word = TEXT_WORDS[int(rng.integers(len(TEXT_WORDS)))]
            write_word(img, word, rng, pick_style(rng, c.text_styles))
            attrs["text"] = word
            if rng.random() < c.text_only_caption:
                return Sample(np.asarray(img), _caption_word_only(word, rng), attrs)
            body += _caption_text_suffix(word, rng)
        return Sample(np.asarray(img), body + ".", attrs)

    def samples(self, start: int, count: int) -> Iterator[Sample]:
        for i in range(start, start + count):
            yield self.sample(i)

    def batch(self, start: int, count: int) -> tuple[np.ndarray, list[str], list[dict[str, Any]]]:
        """Images [count, H, W, 3] uint8, captions and attributes of samples start..start+count."""
        imgs = np.empty((count, IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
        caps: list[str] = []
        attrs: list[dict[str, Any]] = []
        for k, smp in enumerate(self.samples(start, count)):
            imgs[k] = smp.image
            caps.append(smp.caption)
            attrs.append(smp.attrs)
        return imgs, caps, attrs


def vocabulary() -> list[str]:
    """The world's concept words (the default steerability vocabulary for the zoo model)."""
    words: list[str] = [*BIRD_TYPES, "bird", *PLACES, *SHAPES, *COLOURS, *HAIR, "hair"]
    words += [*GENDERS, "person", "text", "word", "sign"]
    return list(dict.fromkeys(words))
