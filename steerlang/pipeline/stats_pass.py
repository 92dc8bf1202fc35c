"""The statistics stage of a run: every feature-statistics table the rules read, loaded from
the cache or computed in one pass of the unsteered model over the statistics images.

The images are the recipe's `stats_split` (at most `stats_limit` rows, drawn with `seed`), clean
or with the typographic attack written on them per `stats_images`. A table's cache key covers
the model and SAE weights, the site and token scope, the images and the table files they were
listed in, the values of the columns the concepts read, the words the attack writes, the
preprocessing, the pooling, the sampling and the statistics code's version, so a rerun of the
same recipe recomputes nothing and a relabelled dataset never reads back stale statistics.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from steerlang.data.batches import image_batches, subset_indices
from steerlang.data.fingerprint import columns_digest, dataset_fingerprint, preprocess_fingerprint
from steerlang.errors import SteerError
from steerlang.facts import ATTACK_COLUMNS
from steerlang.pipeline.bind import Binding, attack_style_for, split_of
from steerlang.pipeline.selection import needs_stats
from steerlang.pipeline.statistics import (
    StatsSpec,
    compute_statistics,
    evaluate_concepts,
    stats_cache_key,
)
from steerlang.pipeline.stats_table import StatsTable, tokens_key
from steerlang.pipeline.topk import RunningTopK, TopKError, patch_grid
from steerlang.plan import RecipeIR

log = logging.getLogger("steerlang.run")


@dataclass
class StatsOutcome:
    tables: dict[tuple[int, str, str], Any]  # (layer, site, tokens_key) -> StatsTable
    keys: dict[str, str]  # "layer:site:tokens" -> cache key
    cached: list[str]
    computed: list[str]
    steerability: dict[str, Any] = field(default_factory=dict)  # "layer:site" -> result
    # (layer, site, tokens_key) -> RunningTopK: each feature's strongest statistics images
    # (`set gallery_k`), kept by the same pass and cached beside the table.
    galleries: dict[tuple[int, str, str], Any] = field(default_factory=dict)
    images_table: Any = None  # the table (or attacked view) the gallery rows index


@dataclass
class _StatsImages:
    """The rows a statistics pass reads, and what identifies them for the cache key."""

    split: str
    table: Any
    idx: np.ndarray
    data_id: dict[str, Any]


@dataclass
class _Concepts:
    """The concept masks over the statistics rows, and the digest of every value they came
    from (the columns the concepts read and the masks themselves) for the cache key."""

    masks: dict[str, np.ndarray]
    digest: str


def stats_specs(ir: RecipeIR) -> list[StatsSpec]:
    """One table per (layer, site, token scope) that some rule reads statistics from."""
    return sorted(
        {
            StatsSpec(layer, r.scope.site, tokens_key(r.scope.tokens))
            for r in ir.rules
            if needs_stats(r)
            for layer in r.scope.layers
        },
        key=lambda s: (s.layer, s.site, s.tokens),
    )


def statistics_for(
    ir: RecipeIR,
    b: Binding,
    *,
    use_cache: bool = True,
    progress: Any = None,
) -> StatsOutcome:
    """Load or compute every statistics table the rules read (one pass for all missing)."""
    specs = stats_specs(ir)
    out = StatsOutcome({}, {}, [], [])
    if not specs:
        return out
    if b.table is None:
        raise SteerError(
            "the recipe's rules read feature statistics but it names no dataset",
            help="add `dataset NAME` (e.g. `dataset waterbirds`) to the recipe",
        )
    images = _statistics_images(ir, b)
    out.images_table = images.table
    concepts = _concepts_or_hint(ir, images.table)
    keys = {s: _cache_key(ir, b, s, images.data_id, concepts.digest) for s in specs}
    k = int(ir.setting("gallery_k"))
    missing: list[StatsSpec] = []
    for s in specs:
        out.keys[f"{s.layer}:{s.site}:{s.tokens}"] = keys[s]
        check = _entry_check(list(ir.concepts), b.saes[(s.layer, s.site)].d_sae)
        hit = b.cache.load("stats", keys[s], check=check) if use_cache else None
        if hit is not None and k > 0:
            # A table cached without its images (an older run, or another `gallery_k`) is
            # recomputed with them: the cards need the statistics pass's own top-k.
            gallery = load_gallery(b.cache, keys[s], k, b.saes[(s.layer, s.site)].d_sae)
            if gallery is None:
                hit = None
            else:
                out.galleries[(s.layer, s.site, s.tokens)] = gallery
        if hit is not None:
            cols, meta = hit
            n = int(meta["n_features"])
            out.tables[(s.layer, s.site, s.tokens)] = StatsTable(n, cols, key=keys[s], meta=meta)
            out.cached.append(keys[s])
            log.info("using cached statistics %s (%s)", keys[s], s.label)
        else:
            missing.append(s)
    if missing:
        _compute_missing(ir, b, missing, keys, images, concepts.masks, out, progress)
    return out


def _entry_check(concepts: list[str], n_features: int) -> Any:
    """What a cached statistics table must hold beyond what the cache itself verifies: every
    column the statistics define (steerlang/pipeline/statistics.py), one value per SAE feature.
    """
    want = {"mean", "freq", "max"}
    for c in concepts:
        want |= {f"corr:{c}", f"corr_not:{c}", f"mean:{c}", f"mean_not:{c}"}

    def check(cols: dict[str, np.ndarray], meta: dict[str, Any]) -> str | None:
        if meta.get("n_features") != n_features:
            return f"it records {meta.get('n_features')!r} features, the SAE has {n_features}"
        missing = sorted(want - set(cols))
        if missing:
            return f"it lacks the columns {missing}"
        for name, col in cols.items():
            if col.shape != (n_features,):
                return f"column `{name}` has shape {list(col.shape)}, expected [{n_features}]"
        return None

    return check


def _statistics_images(ir: RecipeIR, b: Binding) -> _StatsImages:
    split = str(ir.setting("stats_split"))
    table = split_of(b.table, split, "statistics")
    idx = subset_indices(len(table), int(ir.setting("stats_limit")), int(ir.setting("seed")))
    data_id = dataset_fingerprint(b.dataset, table, split, idx)
    table, idx, images = stats_images_view(ir, b, table, idx)
    if images:
        data_id["images"] = images
    return _StatsImages(split, table, idx, data_id)


def _cache_key(
    ir: RecipeIR, b: Binding, s: StatsSpec, data_id: dict[str, Any], concept_values: str
) -> str:
    return stats_cache_key(
        model_hash=b.handle.content_hash,
        sae_hash=b.saes[(s.layer, s.site)].content_hash(),
        spec=s,
        dataset=data_id,
        concepts=ir.concepts,
        concept_values=concept_values,
        preprocess=preprocess_fingerprint(b.handle.preprocess),
        pooling=str(ir.setting("pooling")),
        limit=int(ir.setting("stats_limit")),
        seed=int(ir.setting("seed")),
    )


def _compute_missing(
    ir: RecipeIR,
    b: Binding,
    missing: list[StatsSpec],
    keys: dict[StatsSpec, str],
    images: _StatsImages,
    concept_vals: dict[str, np.ndarray],
    out: StatsOutcome,
    progress: Any,
) -> None:
    """One pass of the model for every missing table; each is stored in the cache."""
    log.info(
        "computing statistics for %s on %s/%s (%d images)",
        ", ".join(s.label for s in missing),
        getattr(b.table, "name", "?"),
        images.split,
        len(images.idx),
    )
    from steerlang.pipeline.distributed import shard

    batches = image_batches(
        images.table,
        shard(images.idx),  # this rank's images under torchrun; all of them otherwise
        b.handle.preprocess,
        int(ir.setting("batch_size")),
        device=b.device,
    )
    k = int(ir.setting("gallery_k"))
    galleries = {s: new_gallery(b, s, k) for s in missing} if k > 0 else {}
    tables = compute_statistics(
        b.handle,
        b.saes,
        missing,
        batches,
        concept_vals,
        pooling=str(ir.setting("pooling")),
        device=b.device,
        n_images=len(images.idx),
        progress=progress,
        galleries=galleries,
    )
    for s, gallery in galleries.items():
        store_gallery(b.cache, keys[s], gallery)
        out.galleries[(s.layer, s.site, s.tokens)] = gallery
    for s, t in tables.items():
        t.key = keys[s]
        t.meta["n_features"] = t.n_features
        t.meta["dataset"] = images.data_id
        cols = {k: v for k, v in t.columns.items() if k != "id"}
        b.cache.store("stats", keys[s], cols, t.meta)
        out.tables[(s.layer, s.site, s.tokens)] = t
        out.computed.append(keys[s])
        log.info("stored statistics %s (%s)", keys[s], s.label)


def gallery_key(stats_key: str, k: int) -> str:
    """The cache key of the running top-k kept beside statistics table `stats_key`."""
    from steerlang.files import content_key

    return content_key({"stats": stats_key, "k": int(k)}, prefix="gallery-")


def new_gallery(b: Binding, s: StatsSpec, k: int, features: Any = None) -> RunningTopK:
    """An empty running top-k for every feature (or `features`) of the SAE at `s`'s site,
    with patch maps when the model's patch tokens (those after its CLS token, if it has one:
    the tower's `prefix_tokens`) form a square grid."""
    n_tokens = int(getattr(b.handle, "n_tokens", 0) or 0)
    prefix = int(getattr(b.handle, "prefix_tokens", 1))
    side = patch_grid(n_tokens, prefix)
    return RunningTopK(
        b.saes[(s.layer, s.site)].d_sae,
        k,
        features=features,
        n_patches=side * side if side else None,
        prefix_tokens=prefix,
        device=b.device,
    )


def store_gallery(cache: Any, stats_key: str, gallery: RunningTopK) -> None:
    cache.store("gallery", gallery_key(stats_key, gallery.k), gallery.to_columns(), gallery.meta())


def load_gallery(cache: Any, stats_key: str, k: int, n_features: int) -> RunningTopK | None:
    """The cached running top-k of a statistics table, or None (absent, or not one for every
    feature of an SAE of this size)."""

    def check(cols: dict[str, np.ndarray], meta: dict[str, Any]) -> str | None:
        if meta.get("n_features") != n_features or not meta.get("all_features"):
            return f"it is not a top-k over all {n_features} features"
        try:
            RunningTopK.from_columns(cols, meta)
        except TopKError as e:
            return e.message
        return None

    hit = cache.load("gallery", gallery_key(stats_key, k), check=check)
    return RunningTopK.from_columns(*hit) if hit is not None else None


def stats_images_view(
    ir: RecipeIR, b: Binding, table: Any, idx: np.ndarray
) -> tuple[Any, np.ndarray, dict[str, Any]]:
    """The statistics images per `stats_images`: the clean rows, or a view that writes the
    typographic attack on them (every row attacked, or each row clean then attacked), with
    the rows to read and what identifies the rendering for the cache key."""
    from steerlang.data.attack import attack_table
    from steerlang.pipeline.evaluate import TYPOGRAPHIC_DATASETS, task_labels, with_label_indices

    mode = str(ir.setting("stats_images"))
    if mode == "clean":
        return table, idx, {}
    if ir.task is None:
        raise SteerError(
            f'`set stats_images = "{mode}"` writes a wrong class word on the statistics '
            "images, but the recipe has no task to draw the words from",
            help='add a `task classify COLUMN as [...]` line, or use `set stats_images = "clean"`',
        )
    if getattr(table, "format", "") in TYPOGRAPHIC_DATASETS:
        raise SteerError(
            f"dataset {table.name} is a typographic-attack set (its images already carry "
            f'words), so `set stats_images = "{mode}"` would write a second word on them',
            help='use `set stats_images = "clean"`; its `text` column names the written word',
        )
    sub = table.subset(idx)
    labels = task_labels(sub, ir.task.label, ir.task.classes)
    style = attack_style_for(ir, b)
    seed = int(ir.setting("seed"))
    view = attack_table(
        with_label_indices(sub, ir.task.label, labels),
        classes=list(ir.task.classes),
        label_column="__label__",
        seed=seed,
        style=style,
        copies="both" if mode == "both" else "attacked",
    )
    # The words written follow the task's labels, so the key holds the words themselves.
    ident = {
        "copies": mode,
        "style": style,
        "seed": seed,
        "classes": list(ir.task.classes),
        "words": columns_digest({c: view.column(c) for c in ("attack", "attacked")}),
    }
    return view, np.arange(len(view)), ident


def _concepts_or_hint(ir: RecipeIR, table: Any) -> _Concepts:
    """Concept masks over the statistics rows, with the digest of the columns they read and of
    the masks; a concept that reads an attack column on clean images gets told which setting
    provides it."""
    read: dict[str, Any] = {}

    def column(name: str) -> Any:
        if name in ATTACK_COLUMNS and name not in table.columns:
            raise SteerError(
                f"a concept reads the column `{name}`, which exists only on attacked copies "
                "of the statistics images",
                help='add `set attack = "typographic"` and `set stats_images = "both"` (each '
                'image clean and attacked) or `"attacked"` to the recipe',
            )
        read[f"column:{name}"] = values = table.column(name)
        return values

    masks = evaluate_concepts(ir.concepts, column, len(table), ir.params)
    digest = columns_digest({**read, **{f"concept:{k}": v for k, v in masks.items()}})
    return _Concepts(masks, digest)
