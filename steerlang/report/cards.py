"""Feature cards: what one edited (or shown) SAE feature is, as plain data the pipeline hands
over, and its images drawn for HTML.

A card holds the feature's site and id, the rule that chose it with the statistics that rule
read, the feature's mean/freq/max on the statistics split, the words a steerability sweep
found it promotes, and its strongest statistics images, each with the feature's activation
on every patch of the image. The pipeline fills the cards (steerlang/pipeline/feature_cards.py);
`templates/_cards.html.j2` renders them, for `report.html` and for `steer show`'s page.

Why the heat map is drawn with PIL rather than as a matplotlib figure: a report holds up to
(cards x k) images, and a figure per image costs tens of milliseconds and adds axes and
padding; compositing two arrays is a millisecond per image and gives a PNG exactly the size
shown. Why one colour whose opacity grows with the activation rather than a multi-colour map:
laid over a photograph, a colour map's hues mix with the image's own (blue water under
"inferno" reads as purple), so its legend no longer matches what one sees; one hue over a
silent (transparent) background reads the same on every image. Each patch is drawn as one flat
square (nearest-neighbour upsampling), because each is one token: smoothing would suggest a
resolution the model does not have.
"""

from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# Pixels a thumbnail is drawn at (rounded to a whole number of pixels per patch).
THUMB_PX = 120
# The heat maps' colour, and how opaque the strongest patch is drawn over the image.
HEAT_RGB = (255, 40, 0)
MAX_ALPHA = 0.75


@dataclass
class CardImage:
    """One of a feature's strongest images of the statistics split."""

    row: int  # row of the statistics table (or attacked view) the pass read
    activation: float  # the feature's pooled activation on the image (what it is ranked by)
    source: str  # where the image came from (file name and table row)
    label: str  # the recipe's group columns on this row, e.g. "y=1 place=0"
    pixels: np.ndarray  # [H, W, 3] uint8: the image as the model saw it (resized, cropped)
    patch_map: np.ndarray | None = None  # [g, g] activation per patch; None without a grid
    vmax: float = 0.0  # the card's largest patch activation: one colour scale per card

    @property
    def data_uri(self) -> str:
        """The thumbnail (with the heat map laid over it) as a PNG data: URI."""
        return png_data_uri(overlay(self.pixels, self.patch_map, self.vmax))

    @property
    def peak(self) -> float:
        """The largest patch activation on this image (0 without a map)."""
        if self.patch_map is None or not self.patch_map.size:
            return 0.0
        return float(np.max(self.patch_map))

    def to_json(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "activation": self.activation,
            "source": self.source,
            "label": self.label,
            "peak_patch": self.peak,
        }


@dataclass
class FeatureCard:
    """One SAE feature, the rule that chose it and its strongest images."""

    layer: int
    site: str
    feature: int
    rule: str | None  # None for `steer show --features`
    op: str | None = None  # the rule's action (suppress, clamp, ...)
    rule_text: str = ""  # the rule's line of the recipe, for display
    rank: int = 0  # 1 = the rule's strongest feature at this site
    stats: dict[str, float | str] = field(default_factory=dict)  # what the rule read
    summary: dict[str, float] = field(default_factory=dict)  # mean, freq, max
    promotes: list[tuple[str, float]] = field(default_factory=list)  # steerability words
    images: list[CardImage] = field(default_factory=list)
    images_note: str = ""  # why there are no images, when there are none
    pooling: str = "mean"
    n_images: int = 0  # statistics images the card's numbers come from
    grid: int = 0  # patches per side

    @property
    def anchor(self) -> str:
        return f"feature-L{self.layer}-{self.site}-{self.feature}"

    @property
    def site_label(self) -> str:
        return f"layer {self.layer} {self.site}"

    @property
    def stat_rows(self) -> list[tuple[str, str, bool]]:
        """(name, printed value, whether the rule read it): the rule's statistics first, then
        mean, freq and max."""
        rows = [(k, fmt_stat(v), True) for k, v in self.stats.items()]
        rows += [(k, fmt_stat(v), False) for k, v in self.summary.items() if k not in self.stats]
        return rows

    @property
    def scale(self) -> str:
        """The colour scale's top (the card's largest patch activation), printed."""
        vmax = max((im.vmax for im in self.images), default=0.0)
        return fmt_stat(vmax)

    @property
    def colorbar(self) -> str:
        return colorbar_css()

    def to_json(self) -> dict[str, Any]:
        """The card without pixels (report.json)."""
        return {
            "layer": self.layer,
            "site": self.site,
            "feature": self.feature,
            "rule": self.rule,
            "op": self.op,
            "rank": self.rank,
            "stats": dict(self.stats),
            "summary": dict(self.summary),
            "promotes": [[w, v] for w, v in self.promotes],
            "images": [im.to_json() for im in self.images],
            "n_images": self.n_images,
            "pooling": self.pooling,
        }


def fmt_stat(v: Any) -> str:
    """A statistic as the cards print it."""
    if isinstance(v, str):
        return v
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v)
    if math.isnan(f):
        return "—"
    if f != 0 and abs(f) < 1e-3:
        return f"{f:.2e}"
    return f"{f:.3f}" if abs(f) < 100 else f"{f:.4g}"


def thumb_size(grid: int) -> int:
    """The thumbnail side: THUMB_PX rounded to a whole number of pixels per patch."""
    if grid <= 0:
        return THUMB_PX
    return grid * max(1, round(THUMB_PX / grid))


def overlay(pixels: np.ndarray, patch_map: np.ndarray | None, vmax: float) -> Any:
    """The image at thumbnail size with the patch map laid over it as a heat map: each patch
    coloured by its activation over `vmax`, transparent where the feature is silent."""
    from PIL import Image

    img = Image.fromarray(np.asarray(pixels, dtype=np.uint8), "RGB")
    grid = 0 if patch_map is None else int(patch_map.shape[0])
    side = thumb_size(grid)
    img = img.resize((side, side), Image.Resampling.BICUBIC)
    if patch_map is None or vmax <= 0 or not np.isfinite(vmax):
        return img
    norm = np.clip(np.nan_to_num(np.asarray(patch_map, dtype=np.float64)) / vmax, 0.0, 1.0)
    heat = Image.new("RGB", (side, side), HEAT_RGB)
    alpha = Image.fromarray(np.round(norm * MAX_ALPHA * 255).astype(np.uint8), "L").resize(
        (side, side), Image.Resampling.NEAREST
    )
    return Image.composite(heat, img, alpha)


def colorbar_css() -> str:
    """The heat maps' scale as a CSS linear-gradient (the cards' legend): silent patches are
    transparent, the card's strongest patch is HEAT_RGB at MAX_ALPHA."""
    r, g, b = HEAT_RGB
    return f"linear-gradient(to right, rgba({r},{g},{b},0), rgba({r},{g},{b},{MAX_ALPHA}))"


def png_data_uri(img: Any) -> str:
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
