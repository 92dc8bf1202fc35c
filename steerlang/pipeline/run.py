"""`steer run` end to end: compile -> bind -> statistics -> selection -> evaluate -> report.

The runtime consumes the RecipeIR produced by one call to the language layer's compiler and
never parses recipe text itself. Binding resolves the recipe's names through the profile
(`steer.yaml`, or the built-in zoo profile) and the command-line overrides; everything
expensive (feature statistics, steerability sweeps, vocabulary embeddings) is cached on disk
under content keys, so a rerun of the same recipe recomputes nothing and reports the same
numbers.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from steerlang.errors import SteerError
from steerlang.plan import RecipeIR, Stat, stat_key

log = logging.getLogger("steerlang.run")

STEER_FNS = ("steerability", "promotes", "top_concept")


class RecipeError(SteerError):
    """The recipe has errors (diagnostics); `rendered` holds them as the CLI prints them."""

    def __init__(self, message: str, rendered: str, diagnostics: list[Any]) -> None:
        super().__init__(message)
        self.rendered = rendered
        self.diagnostics = diagnostics


# ------------------------------------------------------------------------------------------
# Options
# ------------------------------------------------------------------------------------------


@dataclass
class RunOptions:
    params: list[str] = field(default_factory=list)  # "k=v"
    profile: str | None = None
    model: str | None = None
    data: list[str] = field(default_factory=list)
    sae: list[str] = field(default_factory=list)
    device: str | None = None
    out: str | None = None  # folder that receives runs/<recipe>-<timestamp>/
    use_cache: bool = True
    progress: bool = True


def parse_params(items: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        name, eq, value = item.partition("=")
        if not eq or not name.strip():
            raise SteerError(f"--param {item!r} is not NAME=VALUE", help="e.g. --param thr=0.25")
        out[name.strip()] = value.strip()
    return out


# ------------------------------------------------------------------------------------------
# Compile (the one call into the language layer)
# ------------------------------------------------------------------------------------------


def compile_recipe(
    path: str | os.PathLike[str],
    params: dict[str, str] | None = None,
    n_layers: int | None = None,
    *,
    color: bool = False,
) -> tuple[RecipeIR, list[Any], str]:
    """(RecipeIR, warning diagnostics, their rendering), or RecipeError carrying the rendered
    error diagnostics. This is the runtime's only contact with recipe text."""
    from steerlang.lang.api import compile_file

    p = Path(path)
    res = compile_file(str(p), n_layers=n_layers, params=params or None)
    if not res.ok or res.ir is None:
        n = len(res.errors) or 1
        raise RecipeError(
            f"{p}: {n} error{'s' if n != 1 else ''} in the recipe",
            res.render(color=color),
            res.diagnostics,
        )
    return res.ir, res.warnings, (res.render(color=color) if res.warnings else "")


# ------------------------------------------------------------------------------------------
# Binding
# ------------------------------------------------------------------------------------------


def resolve_device(device: str | None) -> str:
    import torch

    d = (device or "auto").strip()
    if d == "auto":
        if torch.cuda.is_available():
            return "cuda"
        return "cpu"
    if d.startswith("cuda") and not torch.cuda.is_available():
        raise SteerError(f"device {d} requested but CUDA is not available", help="use --device cpu")
    return d


@dataclass
class Binding:
    profile: Any
    device: str
    model_ref: str
    handle: Any
    sae_refs: dict[tuple[int, str], str]
    saes: dict[tuple[int, str], Any]
    dataset: Any | None  # DatasetSpec
    table: Any | None  # the whole dataset (all splits)
    cache: Any  # TableCache


def _rule_sites(ir: RecipeIR) -> list[tuple[int, str]]:
    return sorted({(layer, r.scope.site) for r in ir.rules for layer in r.scope.layers})


def sae_ref_for(ir: RecipeIR, profile: Any, layer: int, site: str) -> str:
    """CLI `--sae` first, then the recipe's own `sae` lines, then the profile."""
    if (layer, site) in getattr(profile, "sae_overrides", {}):
        return profile.sae_overrides[(layer, site)]
    for key in (f"{layer}:{site}", str(layer) if site == "resid_post" else None):
        if key and key in ir.saes:
            ref = ir.saes[key]
            if ir.source and not ref.startswith(("hf:", "zoo:")) and not os.path.isabs(ref):
                ref = str(Path(ir.source).resolve().parent / ref)
            return ref
    return profile.sae_ref(ir.model, layer, site)


def bind(
    ir: RecipeIR,
    opts: RunOptions,
    *,
    need_data: bool = True,
    handle: Any = None,
    sites: Sequence[tuple[int, str]] | None = None,
) -> Binding:
    from steerlang.model.sae.load import load_sae
    from steerlang.pipeline.cache import TableCache
    from steerlang.profile import apply_overrides, load_profile

    profile = apply_overrides(
        load_profile(opts.profile),
        model=opts.model,
        data=opts.data or None,
        sae=opts.sae or None,
        device=opts.device,
    )
    device = resolve_device(opts.device or profile.device)
    model_ref = profile.model_ref(ir.model)
    if handle is None:
        from steerlang.model.clip import load_model

        log.info("loading model %s on %s", model_ref, device)
        handle = load_model(model_ref, device)
    sae_refs: dict[tuple[int, str], str] = {}
    saes: dict[tuple[int, str], Any] = {}
    for layer, site in sorted(set(_rule_sites(ir)) | set(sites or ())):
        if not 0 <= layer < handle.n_layers:
            raise SteerError(
                f"the recipe uses layer {layer} but {model_ref} has {handle.n_layers} blocks",
                help=f"use layers 0..{handle.n_layers - 1}",
            )
        ref = sae_ref_for(ir, profile, layer, site)
        sae_refs[(layer, site)] = ref
        log.info("loading SAE %s for layer %d %s", ref, layer, site)
        sae = load_sae(ref, device=device)
        if sae.d_in != handle.width:
            raise SteerError(
                f"SAE {ref} reads {sae.d_in}-wide activations but {model_ref} has width "
                f"{handle.width} at layer {layer} {site}",
                help="use an SAE trained on this model and site",
            )
        hook = getattr(sae.cfg, "hook", None)
        if hook is not None and hook.layer is not None and (hook.layer, hook.site) != (layer, site):
            raise SteerError(
                f"SAE {ref} was trained on blocks.{hook.layer}.hook_{hook.site} but the recipe "
                f"uses it at blocks.{layer}.hook_{site}",
                help=f"bind the SAE trained for layer {layer} {site} (--sae {layer}:{site}=REF)",
            )
        saes[(layer, site)] = sae
    dataset = table = None
    if need_data and ir.dataset:
        dataset = profile.dataset(ir.dataset)
        table = dataset.load()
    return Binding(
        profile=profile,
        device=device,
        model_ref=model_ref,
        handle=handle,
        sae_refs=sae_refs,
        saes=saes,
        dataset=dataset,
        table=table,
        cache=TableCache(Path(profile.cache_dir)),
    )


def split_of(table: Any, name: str, what: str) -> Any:
    sub = table.split(name)
    if not getattr(table, "has_splits", False):
        log.warning(
            "dataset %s has no splits: the %s uses all %d images (statistics and evaluation "
            "share images)",
            getattr(table, "name", "?"),
            what,
            len(sub),
        )
    if len(sub) == 0:
        raise SteerError(
            f"the {what} split `{name}` of dataset {getattr(table, 'name', '?')} is empty",
            help="choose another split with `set stats_split = ...` / `set eval_split = ...`",
        )
    return sub


# ------------------------------------------------------------------------------------------
# Statistics and steerability (cached)
# ------------------------------------------------------------------------------------------


def _stats_in_rules(ir: RecipeIR) -> list[Stat]:
    from steerlang.pipeline.selection import rule_stats

    seen: dict[str, Stat] = {}
    for r in ir.rules:
        for s in rule_stats(r):
            seen.setdefault(stat_key(s), s)
    return list(seen.values())


def steer_sites(ir: RecipeIR) -> dict[tuple[int, str], list[str]]:
    """Sites whose rules read steerability columns, with the `promotes` words they name."""
    from steerlang.pipeline.selection import rule_stats

    out: dict[tuple[int, str], list[str]] = {}
    for r in ir.rules:
        stats = rule_stats(r)
        if not any(s.fn in STEER_FNS for s in stats):
            continue
        words = [s.word for s in stats if s.fn == "promotes" and s.word]
        for layer in r.scope.layers:
            cur = out.setdefault((layer, r.scope.site), [])
            cur.extend(w for w in words if w not in cur)
    return out


def steer_units_needed(
    ir: RecipeIR, site: tuple[int, str], tables: dict[tuple[int, str, str], Any]
) -> np.ndarray | None:
    """The features whose steerability can change what the rules at `site` select, or None
    for all of them.

    A rule `... where A and B and ...` can only select a feature that passes every conjunct,
    so conjuncts that read no steerability column (e.g. `freq() > 0.01`, `corr(c) > 0.3`) are
    evaluated first from the cheap statistics and the sweep skips features that fail them.
    The selection is unchanged: skipped features get NaN steerability, and a conjunction with
    a false conjunct is false whatever the NaN comparisons give.
    """
    from steerlang.pipeline.selection import _VecEval, rule_stats, stats_in
    from steerlang.pipeline.statistics import tokens_key
    from steerlang.plan import And, TopSelector, WhereSelector

    needed: np.ndarray | None = None
    for r in ir.rules:
        if r.scope.site != site[1] or site[0] not in r.scope.layers:
            continue
        if not any(s.fn in STEER_FNS for s in rule_stats(r)):
            continue
        sel = r.selector
        where = sel.where if isinstance(sel, WhereSelector | TopSelector) else None
        if where is None:
            return None
        conj = list(where.args) if isinstance(where, And) else [where]
        cheap = [c for c in conj if not any(s.fn in STEER_FNS for s in stats_in(c))]
        table = tables.get((site[0], site[1], tokens_key(r.scope.tokens)))
        if not cheap or table is None:
            return None
        ev = _VecEval(table, ir.params, r.name)
        mask = np.ones(table.n_features, dtype=bool)
        for c in cheap:
            mask &= ev.mask(c)
        needed = mask if needed is None else (needed | mask)
    if needed is None or needed.all():
        return None
    return np.flatnonzero(needed)


@dataclass
class StatsOutcome:
    tables: dict[tuple[int, str, str], Any]  # (layer, site, tokens_key) -> StatsTable
    keys: dict[str, str]  # "layer:site:tokens" -> cache key
    cached: list[str]
    computed: list[str]
    steerability: dict[str, Any] = field(default_factory=dict)  # "layer:site" -> result


def statistics_for(
    ir: RecipeIR,
    b: Binding,
    *,
    use_cache: bool = True,
    progress: Any = None,
) -> StatsOutcome:
    """Load or compute every statistics table the rules read (one pass for all missing)."""
    from steerlang.data.batches import image_batches, subset_indices
    from steerlang.data.fingerprint import dataset_fingerprint
    from steerlang.pipeline.selection import needs_stats
    from steerlang.pipeline.statistics import (
        StatsSpec,
        StatsTable,
        compute_statistics,
        stats_cache_key,
        tokens_key,
    )

    specs = sorted(
        {
            StatsSpec(layer, r.scope.site, tokens_key(r.scope.tokens))
            for r in ir.rules
            if needs_stats(r)
            for layer in r.scope.layers
        },
        key=lambda s: (s.layer, s.site, s.tokens),
    )
    out = StatsOutcome({}, {}, [], [])
    if not specs:
        return out
    if b.table is None:
        raise SteerError(
            "the recipe's rules read feature statistics but it names no dataset",
            help="add `dataset NAME` (e.g. `dataset waterbirds`) to the recipe",
        )
    split = str(ir.setting("stats_split"))
    table = split_of(b.table, split, "statistics")
    seed = int(ir.setting("seed"))
    limit = int(ir.setting("stats_limit"))
    idx = subset_indices(len(table), limit, seed)
    data_id = dataset_fingerprint(b.dataset, table, split, idx)
    table, idx, images = stats_images_view(ir, b, table, idx)
    if images:
        data_id["images"] = images
    concept_vals = _concepts_or_hint(ir, table)
    pooling = str(ir.setting("pooling"))
    model_hash = b.handle.content_hash
    keys = {
        s: stats_cache_key(
            model_hash=model_hash,
            sae_hash=b.saes[(s.layer, s.site)].content_hash(),
            spec=s,
            dataset=data_id,
            concepts=ir.concepts,
            pooling=pooling,
            limit=limit,
            seed=seed,
        )
        for s in specs
    }
    missing: list[StatsSpec] = []
    for s in specs:
        label = f"{s.layer}:{s.site}:{s.tokens}"
        out.keys[label] = keys[s]
        hit = b.cache.load("stats", keys[s]) if use_cache else None
        if hit is not None:
            cols, meta = hit
            n = int(meta.get("n_features", len(next(iter(cols.values())))))
            out.tables[(s.layer, s.site, s.tokens)] = StatsTable(n, cols, key=keys[s], meta=meta)
            out.cached.append(keys[s])
            log.info("using cached statistics %s (%s)", keys[s], s.label)
        else:
            missing.append(s)
    if missing:
        log.info(
            "computing statistics for %s on %s/%s (%d images)",
            ", ".join(s.label for s in missing),
            getattr(b.table, "name", "?"),
            split,
            len(idx),
        )
        batches = image_batches(
            table, idx, b.handle.preprocess, int(ir.setting("batch_size")), device=b.device
        )
        sub_concepts = {k: v for k, v in concept_vals.items()}
        tables = compute_statistics(
            b.handle,
            b.saes,
            missing,
            batches,
            sub_concepts,
            pooling=pooling,
            device=b.device,
            n_images=len(idx),
            progress=progress,
        )
        for s, t in tables.items():
            t.key = keys[s]
            t.meta["n_features"] = t.n_features
            t.meta["dataset"] = data_id
            cols = {k: v for k, v in t.columns.items() if k != "id"}
            b.cache.store("stats", keys[s], cols, t.meta)
            out.tables[(s.layer, s.site, s.tokens)] = t
            out.computed.append(keys[s])
            log.info("stored statistics %s (%s)", keys[s], s.label)
    return out


def steerability_for(
    ir: RecipeIR,
    b: Binding,
    site: tuple[int, str],
    *,
    units: np.ndarray | None = None,
    neurons: bool = False,
    promote_words: Sequence[str] = (),
    use_cache: bool = True,
    progress: Any = None,
    n_images: int | None = None,
) -> Any:
    """Load or run one steerability sweep (SAE features, or residual coordinates)."""
    import torch

    from steerlang.data.batches import image_batches
    from steerlang.data.fingerprint import dataset_fingerprint
    from steerlang.pipeline.steerability import (
        SteerabilityConfig,
        SteerabilityResult,
        load_vocabulary,
        steer_cache_key,
        sweep,
    )

    layer, kind = site
    cfg = SteerabilityConfig(
        strength=float(ir.setting("steer_strength")),
        threshold=float(ir.setting("steer_threshold")),
        n_images=int(n_images if n_images is not None else ir.setting("steer_images")),
        logit_scale=float(ir.setting("logit_scale")),
        vocabulary=str(ir.setting("vocabulary")),
    )
    words = load_vocabulary(cfg.vocabulary, extra=promote_words, model_ref=b.model_ref)
    if b.table is None:
        raise SteerError(
            "steerability needs images: the recipe names no dataset",
            help="add `dataset NAME` to the recipe or pass --data NAME=PATH",
        )
    split = str(ir.setting("stats_split"))
    table = split_of(b.table, split, "steerability")
    idx = np.arange(min(cfg.n_images, len(table)))  # the first N, unshuffled (as the authors)
    sae = None if neurons else b.saes[site]
    n_units = b.handle.width if neurons else sae.d_sae
    ids = np.arange(n_units) if units is None else np.asarray(units, dtype=np.int64)
    key = steer_cache_key(
        model_hash=b.handle.content_hash,
        sae_hash=None if neurons else sae.content_hash(),
        layer=layer,
        site=kind,
        images=dataset_fingerprint(b.dataset, table, split, idx),
        vocabulary=words,
        units=ids,
        cfg=cfg,
        promote_words=promote_words,
    )
    what = f"{'neurons' if neurons else 'SAE features'} at layer {layer} {kind}"
    hit = b.cache.load("steer", key) if use_cache else None
    if hit is not None:
        log.info("using cached steerability %s (%s)", key, what)
        res = SteerabilityResult.from_cache(hit[0], hit[1], key)
        res.threshold = cfg.threshold
        return res
    log.info("steerability sweep of %d %s over %d images", len(ids), what, len(idx))
    vocab_emb = _vocab_embeddings(b, words)
    pixels = torch.cat(
        [
            px
            for _, px in image_batches(
                table, idx, b.handle.preprocess, int(ir.setting("batch_size")), device=b.device
            )
        ]
    )
    res = sweep(
        b.handle,
        layer,
        kind,
        pixels,
        vocab_emb,
        words,
        sae=sae,
        units=ids,
        cfg=cfg,
        promote_words=list(promote_words),
        progress=progress,
    )
    res.key = key
    cols, meta = res.to_cache()
    b.cache.store("steer", key, cols, meta)
    return res


def _vocab_embeddings(b: Binding, words: Sequence[str]) -> Any:
    import torch

    from steerlang.files import content_key
    from steerlang.pipeline.steerability import text_embeddings

    key = content_key(
        {
            "model": b.handle.content_hash,
            "words": hashlib.sha256("\n".join(words).encode()).hexdigest(),
        },
        prefix="vocab-",
    )
    hit = b.cache.load("text", key)
    if hit is not None and "emb" in hit[0] and hit[0]["emb"].shape[0] == len(words):
        return torch.as_tensor(hit[0]["emb"], dtype=torch.float32, device=b.device)
    emb = text_embeddings(b.handle, words)
    b.cache.store("text", key, {"emb": emb.double().cpu().numpy()}, {"n": len(words)})
    return emb


# ------------------------------------------------------------------------------------------
# Plan (statistics + selection) and run
# ------------------------------------------------------------------------------------------


@dataclass
class PlanOutcome:
    ir: RecipeIR
    binding: Binding
    stats: StatsOutcome
    selection: Any  # SelectionResult
    timings: dict[str, float] = field(default_factory=dict)


def plan_ir(
    ir: RecipeIR,
    opts: RunOptions,
    *,
    handle: Any = None,
    progress: Any = None,
    near_miss_eps: float = 0.05,
) -> PlanOutcome:
    from steerlang.files import content_key
    from steerlang.pipeline.selection import SiteInfo, select

    t0 = time.perf_counter()
    b = bind(ir, opts, handle=handle)
    t1 = time.perf_counter()
    stats = statistics_for(ir, b, use_cache=opts.use_cache, progress=progress)
    t2 = time.perf_counter()
    for site, words in steer_sites(ir).items():
        units = steer_units_needed(ir, site, stats.tables)
        if units is not None:
            log.info(
                "steerability at layer %d %s: %d of %d features can change the selection",
                site[0],
                site[1],
                len(units),
                b.saes[site].d_sae,
            )
        res = steerability_for(
            ir,
            b,
            site,
            units=units,
            promote_words=words,
            use_cache=opts.use_cache,
            progress=progress,
        )
        stats.steerability[f"{site[0]}:{site[1]}"] = res
        for (layer, kind, tok), t in list(stats.tables.items()):
            if (layer, kind) == site:
                stats.tables[(layer, kind, tok)] = t.with_columns(res.columns(t.n_features))
    t3 = time.perf_counter()
    sites = {
        k: SiteInfo(sae=b.sae_refs[k], d_sae=s.d_sae, sae_hash=s.content_hash())
        for k, s in b.saes.items()
    }
    stats_key = (
        content_key(sorted(stats.keys.values()) + [r.key for r in stats.steerability.values()])
        if stats.keys
        else None
    )
    sel = select(
        ir, stats.tables, sites, model=b.model_ref, stats_key=stats_key, near_miss_eps=near_miss_eps
    )
    t4 = time.perf_counter()
    return PlanOutcome(
        ir=ir,
        binding=b,
        stats=stats,
        selection=sel,
        timings={
            "bind": t1 - t0,
            "statistics": t2 - t1,
            "steerability": t3 - t2,
            "selection": t4 - t3,
        },
    )


def attack_style_for(ir: RecipeIR, b: Binding) -> str:
    """`attack_style`, with "auto" resolved: the zoo CLIP reads SynthWorld's notes (DP's
    scaled-down type is clutter at 64 px), real models read DP's text."""
    style = str(ir.setting("attack_style"))
    if style == "auto":
        return "note" if b.dataset is not None and b.dataset.is_zoo else "dp"
    return style


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
    ident = {"copies": mode, "style": style, "seed": seed, "classes": list(ir.task.classes)}
    return view, np.arange(len(view)), ident


def _concepts_or_hint(ir: RecipeIR, table: Any) -> dict[str, np.ndarray]:
    """Concept masks over the statistics rows; a concept that reads an attack column on clean
    images gets told which setting provides it."""
    from steerlang.facts import ATTACK_COLUMNS
    from steerlang.pipeline.statistics import evaluate_concepts

    def column(name: str) -> Any:
        if name in ATTACK_COLUMNS and name not in table.columns:
            raise SteerError(
                f"a concept reads the column `{name}`, which exists only on attacked copies "
                "of the statistics images",
                help='add `set attack = "typographic"` and `set stats_images = "both"` (each '
                'image clean and attacked) or `"attacked"` to the recipe',
            )
        return table.column(name)

    return evaluate_concepts(ir.concepts, column, len(table), ir.params)


@dataclass
class RunOutcome:
    plan: PlanOutcome
    report: dict[str, Any]
    run_dir: Path | None
    eval_result: Any | None


def evaluation_spec(ir: RecipeIR, table: Any, style: str = "dp") -> Any:
    from steerlang.pipeline.evaluate import TYPOGRAPHIC_DATASETS, EvalSpec

    assert ir.task is not None
    attack = str(ir.setting("attack"))
    attack_col = None
    if getattr(table, "format", "") in TYPOGRAPHIC_DATASETS:
        attack_col = table.meta.get("attack_column", "text")
        if attack == "typographic":
            log.warning(
                "dataset %s is already a typographic-attack set; `attack = typographic` is ignored",
                table.name,
            )
            attack = "none"
    return EvalSpec(
        label_column=ir.task.label,
        classes=list(ir.task.classes),
        groups=list(ir.groups),
        attack=attack,
        attack_column=attack_col,
        attack_seed=int(ir.setting("seed")),
        attack_style=style,
    )


def run_ir(
    ir: RecipeIR,
    opts: RunOptions,
    *,
    handle: Any = None,
    progress: Any = None,
    argv: Sequence[str] | None = None,
    write: bool = True,
) -> RunOutcome:
    """Everything after compilation; tests call it with hand-built IRs."""
    from steerlang.data.batches import image_batches, subset_indices
    from steerlang.pipeline.evaluate import (
        evaluate,
        group_spec,
        train_linear_probe,
        zero_shot_classifier,
    )
    from steerlang.report import document as R

    started = time.time()
    po = plan_ir(ir, opts, handle=handle, progress=progress)
    b = po.binding
    ev = None
    classifier_info: dict[str, Any] | None = None
    t0 = time.perf_counter()
    if ir.task is not None:
        if b.table is None:
            raise SteerError(
                "the recipe has a task but names no dataset",
                help="add `dataset NAME` to the recipe",
            )
        spec = evaluation_spec(ir, b.table, attack_style_for(ir, b))
        eval_table = split_of(b.table, str(ir.setting("eval_split")), "evaluation")
        idx = subset_indices(
            len(eval_table), int(ir.setting("eval_limit")), int(ir.setting("seed"))
        )
        kind = str(ir.setting("classifier"))
        if kind == "zero_shot":
            clf = zero_shot_classifier(b.handle, spec.classes, ir.task.prompts)
        elif kind == "linear_probe":
            clf = _probe(ir, b, spec, train_linear_probe, image_batches)
        else:
            raise SteerError(
                f"unknown classifier `{kind}`",
                help='use `set classifier = "zero_shot"` or "linear_probe"',
            )
        classifier_info = {"kind": clf.kind, "classes": clf.classes, **clf.info}
        gspec = group_spec(b.table, list(ir.groups))
        ev = evaluate(
            b.handle,
            po.selection.plan,
            b.saes,
            eval_table,
            idx,
            spec,
            clf,
            groups=gspec,
            batch_size=int(ir.setting("batch_size")),
            device=b.device,
            progress=progress,
        )
    po.timings["evaluation"] = time.perf_counter() - t0
    report = R.build_report(
        po, ev, classifier_info=classifier_info, started=started, argv=list(argv or [])
    )
    run_dir = None
    if write:
        run_dir = R.write_run_folder(po, report, out_root=opts.out)
        report["run_dir"] = str(run_dir)
    return RunOutcome(plan=po, report=report, run_dir=run_dir, eval_result=ev)


def _probe(
    ir: RecipeIR, b: Binding, spec: Any, train: Callable[..., Any], batches: Callable[..., Any]
) -> Any:
    import torch

    from steerlang.data.batches import subset_indices
    from steerlang.pipeline.evaluate import task_labels

    split = str(ir.setting("probe_split"))
    table = split_of(b.table, split, "probe")
    idx = subset_indices(len(table), int(ir.setting("stats_limit")), int(ir.setting("seed")))
    sub = table.subset(idx)
    labels = task_labels(sub, spec.label_column, spec.classes)
    feats = []
    with torch.inference_mode():
        for _, px in batches(
            sub,
            np.arange(len(sub)),
            b.handle.preprocess,
            int(ir.setting("batch_size")),
            device=b.device,
        ):
            feats.append(b.handle.encode_image(px).float().cpu())
    x = torch.cat(feats)
    log.info("trained a linear probe on %d %s images", len(sub), split)
    return train(x, labels, len(spec.classes), seed=int(ir.setting("seed")), classes=spec.classes)


def run_recipe(
    path: str | os.PathLike[str],
    opts: RunOptions,
    *,
    progress: Any = None,
    argv: Sequence[str] | None = None,
) -> RunOutcome:
    ir, _, rendered = compile_recipe(path, parse_params(opts.params))
    if rendered:
        log.warning("recipe warnings:\n%s", rendered.rstrip())
    return run_ir(ir, opts, progress=progress, argv=argv)
