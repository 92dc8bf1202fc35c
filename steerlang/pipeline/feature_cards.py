"""Feature cards from a planned run: for every feature the plan edits, strongest first per rule
and site (`steerlang.pipeline.strength`), at most `gallery_cards` per rule and site, a
`steerlang.report.cards.FeatureCard` with the statistics the rule read, mean/freq/max, the
words a steerability sweep found it promotes, and its strongest statistics images from the
running top-k the statistics pass kept (`steerlang.pipeline.topk`; no second pass over the
data). `steer show` builds the same cards for features it is given.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from steerlang.pipeline.stats_table import StatsTable, tokens_key
from steerlang.report.cards import CardImage, FeatureCard

SUMMARY_STATS = ("mean", "freq", "max")


def cards_for_plan(ir: Any, selection: Any, stats: Any, preprocess: Any) -> list[FeatureCard]:
    """The cards of a planned run (`stats`: the run's StatsOutcome)."""
    cap = int(ir.setting("gallery_cards"))
    rules = {r.name: r for r in ir.rules}
    views = ImageViews(stats.images_table, preprocess, list(ir.groups))
    cards: list[FeatureCard] = []
    for res in selection.per_rule:
        won = set(res.won)
        order = res.strongest()
        chosen = [f for f in order if f in won][: max(cap, 0)]
        if not chosen:
            continue
        key = (res.layer, res.site, tokens_key(res.tokens))
        rule = rules.get(res.rule)
        rank = {f: i + 1 for i, f in enumerate(order)}
        for f in chosen:
            cards.append(
                feature_card(
                    res.layer,
                    res.site,
                    f,
                    table=stats.tables.get(key),
                    gallery=stats.galleries.get(key),
                    views=views,
                    steerability=stats.steerability.get(f"{res.layer}:{res.site}"),
                    rule=res.rule,
                    op=rule.action.op if rule is not None else None,
                    rule_text=rule_line(rule) if rule is not None else "",
                    rank=rank[f],
                    rule_stats=res.values.get(f, {}),
                    pooling=str(ir.setting("pooling")),
                    gallery_k=int(ir.setting("gallery_k")),
                )
            )
    return cards


def feature_card(
    layer: int,
    site: str,
    feature: int,
    *,
    table: StatsTable | None,
    gallery: Any,
    views: ImageViews | None,
    steerability: Any = None,
    rule: str | None = None,
    op: str | None = None,
    rule_text: str = "",
    rank: int = 0,
    rule_stats: dict[str, float | str] | None = None,
    pooling: str = "mean",
    gallery_k: int = 8,
) -> FeatureCard:
    """One feature's card from its statistics table, running top-k and steerability sweep."""
    card = FeatureCard(
        layer=layer,
        site=site,
        feature=int(feature),
        rule=rule,
        op=op,
        rule_text=rule_text,
        rank=rank,
        stats=dict(rule_stats or {}),
        pooling=pooling,
    )
    if table is not None:
        card.summary = {k: float(table.column(k)[feature]) for k in SUMMARY_STATS if table.has(k)}
        card.n_images = int(table.meta.get("n_images", 0) or 0)
    card.promotes = promoted_words(steerability, feature)
    if gallery is None or views is None:
        card.images_note = (
            "no images: `set gallery_k = 0`"
            if gallery_k <= 0
            else "no images: the rule reads no statistics, so no statistics pass ran "
            f"(`steer show --layer {layer} --features {feature}` shows them)"
        )
        return card
    top = [(r, v, m) for r, v, m in gallery.top(feature) if v > 0]
    if not top:
        card.images_note = (
            f"no images: the feature never fires on the {card.n_images} statistics images"
        )
        return card
    grid = int(round(np.sqrt(gallery.n_patches))) if gallery.n_patches else 0
    card.grid = grid
    vmax = max((float(np.max(m)) for _, _, m in top if m is not None), default=0.0)
    for row, value, patch_map in top:
        card.images.append(
            CardImage(
                row=row,
                activation=value,
                source=views.source(row),
                label=views.label(row),
                pixels=views.pixels(row),
                patch_map=patch_map.reshape(grid, grid) if patch_map is not None and grid else None,
                vmax=vmax,
            )
        )
    return card


def promoted_words(result: Any, feature: int, top: int = 5) -> list[tuple[str, float]]:
    """The words a steerability sweep found the feature promotes most, with their Δ."""
    if result is None or getattr(result, "kind", None) != "sae":
        return []
    if result.top_words is None or result.top_deltas is None or not result.vocabulary:
        return []
    hits = np.flatnonzero(np.asarray(result.units) == feature)
    if not hits.size:
        return []
    i = int(hits[0])
    return [
        (str(result.vocabulary[int(w)]), float(d))
        for w, d in zip(result.top_words[i][:top], result.top_deltas[i][:top], strict=False)
    ]


def rule_line(rule: Any) -> str:
    """The rule's own line of its recipe file, for display only (never parsed)."""
    span = getattr(rule, "span", None)
    if span is None or not span.file:
        return ""
    try:
        lines = Path(span.file).read_text("utf-8").splitlines()
        return lines[span.line - 1].strip()
    except (OSError, IndexError, UnicodeDecodeError):
        return ""


class ImageViews:
    """The statistics images as the model saw them (resized and cropped by its preprocessing,
    the normalisation undone), each read once however many cards show it."""

    def __init__(self, table: Any, preprocess: Any, label_columns: Sequence[str]) -> None:
        self.table = table
        self.preprocess = preprocess
        self.label_columns = list(label_columns)
        self._pixels: dict[int, np.ndarray] = {}
        self._columns: dict[str, np.ndarray | None] = {}

    def pixels(self, row: int) -> np.ndarray:
        if row not in self._pixels:
            self._pixels[row] = model_view(self.preprocess, self.table.image(row))
        return self._pixels[row]

    def source(self, row: int) -> str:
        try:
            return f"{Path(self.table.path(row)).name} (row {row})"
        except (AttributeError, IndexError, TypeError):
            return f"row {row}"

    def label(self, row: int) -> str:
        parts = []
        for c in self.label_columns:
            col = self._column(c)
            if col is not None:
                v = col[row]
                parts.append(f"{c}={v.item() if hasattr(v, 'item') else v}")
        return " ".join(parts)

    def _column(self, name: str) -> np.ndarray | None:
        if name not in self._columns:
            try:
                self._columns[name] = np.asarray(self.table.column(name))
            except Exception:  # a view without the column: the label just omits it
                self._columns[name] = None
        return self._columns[name]


def model_view(preprocess: Any, image: Any) -> np.ndarray:
    """[H, W, 3] uint8: `image` after the model's preprocessing with its normalisation undone,
    so the patch grid lies exactly over what the model saw."""
    import torch

    x = image if isinstance(image, torch.Tensor) else preprocess(image)
    x = x.detach().float().cpu()
    mean = std = None
    for t in getattr(preprocess, "transforms", []) or []:
        if type(t).__name__ == "Normalize":
            mean = torch.as_tensor(t.mean, dtype=torch.float32).view(-1, 1, 1)
            std = torch.as_tensor(t.std, dtype=torch.float32).view(-1, 1, 1)
    if mean is not None and std is not None:
        x = x * std + mean
    arr = (x.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    return np.ascontiguousarray(arr[:, :, :3])
