"""The steerability stage of a run: for rules that read `steerability()`, `promotes(word)` or
`top_concept()`, a cached sweep that clamps each feature and reads the change in CLIP's output
against a vocabulary (see steerlang/pipeline/steerability.py for the measure itself).

Sweeps are the expensive part of a run, so a sweep covers only the features whose steerability
can change what the rules select, and its result is cached under a content key like the
statistics tables.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from steerlang.data.batches import image_batches
from steerlang.data.fingerprint import dataset_fingerprint, preprocess_fingerprint
from steerlang.errors import SteerError
from steerlang.files import content_key
from steerlang.pipeline.bind import Binding, split_of
from steerlang.pipeline.exprs import stats_in
from steerlang.pipeline.selection import rule_evaluator, rule_stats
from steerlang.pipeline.stats_pass import StatsOutcome
from steerlang.pipeline.stats_table import tokens_key
from steerlang.pipeline.steerability import (
    SteerabilityConfig,
    SteerabilityResult,
    SuffixRunner,
    load_vocabulary,
    push_norms,
    steer_cache_key,
    sweep,
    text_embeddings,
)
from steerlang.plan import And, Fn, RandomSelector, RecipeIR, TopSelector, WhereSelector
from steerlang.report.steer_curve import curve_rows, parse_strengths

log = logging.getLogger("steerlang.run")

STEER_FNS = ("steerability", "promotes", "top_concept")


def steer_sites(ir: RecipeIR) -> dict[tuple[int, str], list[str]]:
    """Sites whose rules read steerability columns, with the `promotes` words they name."""
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


def reads_whole_column(sel: Any) -> bool:
    """The selector uses `rank` or `quantile`, whose value for one feature depends on every
    feature's: skipping features in the sweep would change them."""
    stack = [getattr(sel, "where", None), getattr(sel, "by", None)]
    while stack:
        e = stack.pop()
        if isinstance(e, Fn):
            if e.fn in ("rank", "quantile"):
                return True
            stack.extend(e.args)
        elif e is not None and hasattr(e, "args"):
            stack.extend(e.args)
        elif e is not None:
            stack.extend(getattr(e, f, None) for f in ("left", "right", "arg"))
    return False


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
    needed: np.ndarray | None = None
    for r in ir.rules:
        if r.scope.site != site[1] or site[0] not in r.scope.layers:
            continue
        if not any(s.fn in STEER_FNS for s in rule_stats(r)):
            continue
        sel = r.selector
        where = sel.where if isinstance(sel, WhereSelector | TopSelector | RandomSelector) else None
        if where is None or reads_whole_column(sel):
            return None
        conj = list(where.args) if isinstance(where, And) else [where]
        cheap = [c for c in conj if not any(s.fn in STEER_FNS for s in stats_in(c))]
        table = tables.get((site[0], site[1], tokens_key(r.scope.tokens)))
        if not cheap or table is None:
            return None
        ev = rule_evaluator(table, ir.params, r.name)
        mask = np.ones(table.n_features, dtype=bool)
        for c in cheap:
            mask &= ev.mask(c)
        needed = mask if needed is None else (needed | mask)
    if needed is None or needed.all():
        return None
    return np.flatnonzero(needed)


def add_steerability(
    ir: RecipeIR, b: Binding, stats: StatsOutcome, *, use_cache: bool, progress: Any
) -> None:
    """Sweep every site whose rules read steerability and add the columns to its tables."""
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
            use_cache=use_cache,
            progress=progress,
        )
        curve = str(ir.setting("steer_curve")).strip()
        if curve:
            res.curve = strength_curve(
                ir, b, site, parse_strengths(curve), units, words, use_cache, progress
            )
        stats.steerability[f"{site[0]}:{site[1]}"] = res
        for (layer, kind, tok), t in list(stats.tables.items()):
            if (layer, kind) == site:
                stats.tables[(layer, kind, tok)] = t.with_columns(res.columns(t.n_features))


def strength_curve(
    ir: RecipeIR,
    b: Binding,
    site: tuple[int, str],
    strengths: Sequence[float],
    units: np.ndarray | None,
    words: Sequence[str],
    use_cache: bool,
    progress: Any,
) -> list[dict[str, Any]]:
    """`set steer_curve = "5,10,..."`: the steerable fraction of the run's swept SAE features,
    of the neurons and of the push-matched neurons at each strength (each a cached sweep), as
    the rows of steerlang/report/steer_curve.py, which the run report's steerability summary
    carries as `curve`."""
    summaries = []
    for s in strengths:
        for neurons, push in ((False, "overwrite"), (True, "overwrite"), (True, "matched")):
            r = steerability_for(
                ir,
                b,
                site,
                units=None if neurons else units,
                neurons=neurons,
                push=push,
                promote_words=() if neurons else words,
                use_cache=use_cache,
                progress=progress,
                strength=s,
            )
            summaries.append({"layer": site[0], "site": site[1], **r.summary()})
    return curve_rows(summaries)


def steer_config(
    ir: RecipeIR,
    n_images: int | None = None,
    *,
    model_logit_scale: float | None = None,
    strength: float | None = None,
    push: str = "overwrite",
) -> SteerabilityConfig:
    """The sweep settings of a recipe. `logit_scale = "model"` resolves to
    `model_logit_scale` (the model's exp(logit_scale)); `strength` overrides
    `steer_strength` (one point of a strength curve)."""
    scale, source = resolve_logit_scale(ir.setting("logit_scale"), model_logit_scale)
    return SteerabilityConfig(
        strength=float(ir.setting("steer_strength") if strength is None else strength),
        threshold=float(ir.setting("steer_threshold")),
        n_images=int(n_images if n_images is not None else ir.setting("steer_images")),
        logit_scale=scale,
        vocabulary=str(ir.setting("vocabulary")),
        logit_scale_source=source,
        push=push,
    )


def resolve_logit_scale(value: Any, model_logit_scale: float | None) -> tuple[float, str]:
    """(readout scale, "fixed" | "model") for a `logit_scale` setting: a number, or "model"
    for the model's own exp(logit_scale)."""
    if isinstance(value, str):
        if value != "model":
            raise SteerError(
                f'logit_scale {value!r} is neither a number nor "model"',
                help='use e.g. `set logit_scale = 100` or `set logit_scale = "model"`',
            )
        if model_logit_scale is None:
            raise SteerError(
                'logit_scale = "model" needs the model, which is not loaded here',
                help="give a number instead",
            )
        return float(model_logit_scale), "model"
    return float(value), "fixed"


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
    strength: float | None = None,
    push: str = "overwrite",
) -> Any:
    """Load or run one steerability sweep (SAE features, or residual coordinates; with
    `push = "matched"` neurons pushed by the SAE clamp's mean residual norm, see
    steerlang/pipeline/steerability.py). `strength` overrides the recipe's `steer_strength`."""
    layer, kind = site
    cfg = steer_config(
        ir,
        n_images,
        model_logit_scale=_model_logit_scale(b),
        strength=strength,
        push=push if neurons else "overwrite",
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
    match_sae = b.saes[site] if neurons and cfg.push == "matched" else None
    n_units = b.handle.width if neurons else sae.d_sae
    ids = np.arange(n_units) if units is None else np.asarray(units, dtype=np.int64)
    hashed = sae if sae is not None else match_sae
    key = steer_cache_key(
        model_hash=b.handle.content_hash,
        sae_hash=None if hashed is None else hashed.content_hash(),
        layer=layer,
        site=kind,
        images=dataset_fingerprint(b.dataset, table, split, idx),
        preprocess=preprocess_fingerprint(b.handle.preprocess),
        vocabulary=words,
        units=ids,
        cfg=cfg,
        promote_words=promote_words,
    )
    who = "neurons (matched push)" if match_sae is not None else "neurons"
    what = f"{who if neurons else 'SAE features'} at layer {layer} {kind} (s = {cfg.strength:g})"
    hit = b.cache.load("steer", key, check=_sweep_check(len(ids))) if use_cache else None
    if hit is not None:
        log.info("using cached steerability %s (%s)", key, what)
        res = SteerabilityResult.from_cache(hit[0], hit[1], key)
        res.threshold = cfg.threshold
        res.logit_scale, res.logit_scale_source = cfg.logit_scale, cfg.logit_scale_source
        return res
    log.info("steerability sweep of %d %s over %d images", len(ids), what, len(idx))
    vocab_emb = _vocab_embeddings(b, words)
    res = sweep(
        b.handle,
        layer,
        kind,
        _pixels(ir, b, table, idx),
        vocab_emb,
        words,
        sae=sae,
        match_sae=match_sae,
        units=ids,
        cfg=cfg,
        promote_words=list(promote_words),
        progress=progress,
    )
    res.key = key
    cols, meta = res.to_cache()
    b.cache.store("steer", key, cols, meta)
    return res


def push_norms_for(
    ir: RecipeIR, b: Binding, site: tuple[int, str], strengths: Sequence[float]
) -> list[dict[str, float]]:
    """The residual move of an SAE clamp and of a coordinate overwrite at each strength, on
    the sweep's images (steerlang.pipeline.steerability.push_norms)."""
    cfg = steer_config(ir, model_logit_scale=_model_logit_scale(b))
    split = str(ir.setting("stats_split"))
    table = split_of(b.table, split, "steerability")
    idx = np.arange(min(cfg.n_images, len(table)))
    h, _ = SuffixRunner(b.handle, site[0], site[1]).prepare(_pixels(ir, b, table, idx))
    return push_norms(b.saes[site], h, strengths, cfg.tokens)


def _model_logit_scale(b: Binding) -> float | None:
    """The bound model's exp(logit_scale), or None when the handle has none."""
    try:
        return float(b.handle.logit_scale)
    except (AttributeError, TypeError):
        return None


def _sweep_check(n_units: int) -> Any:
    """What a cached sweep must hold for `SteerabilityResult.from_cache`: one value per swept
    unit in every column, the `promotes` columns its metadata names, and its kind."""

    def check(cols: dict[str, np.ndarray], meta: dict[str, Any]) -> str | None:
        want = {"units", "steerability", "power", "top_concept"}
        want |= {f"promotes:{w}" for w in meta.get("promotes", [])}
        missing = sorted(want - set(cols))
        if missing:
            return f"it lacks the columns {missing}"
        if not isinstance(meta.get("kind"), str):
            return "its metadata names no sweep kind"
        for name, col in cols.items():
            if col.shape[:1] != (n_units,):
                return f"column `{name}` has {col.shape[:1]} rows, expected {n_units}"
        return None

    return check


def _pixels(ir: RecipeIR, b: Binding, table: Any, idx: np.ndarray) -> Any:
    """The sweep's images, preprocessed, as one tensor on the device."""
    import torch

    batches = image_batches(
        table, idx, b.handle.preprocess, int(ir.setting("batch_size")), device=b.device
    )
    return torch.cat([px for _, px in batches])


def _vocab_embeddings(b: Binding, words: Sequence[str]) -> Any:
    """The vocabulary's text embeddings, cached per model and word list."""
    import torch

    key = content_key(
        {
            "model": b.handle.content_hash,
            "words": hashlib.sha256("\n".join(words).encode()).hexdigest(),
        },
        prefix="vocab-",
    )

    def check(cols: dict[str, np.ndarray], meta: dict[str, Any]) -> str | None:
        emb = cols.get("emb")
        if emb is None or emb.ndim != 2 or emb.shape[0] != len(words):
            return f"it holds no [{len(words)}, E] embedding matrix"
        return None

    hit = b.cache.load("text", key, check=check)
    if hit is not None:
        return torch.as_tensor(hit[0]["emb"], dtype=torch.float32, device=b.device)
    emb = text_embeddings(b.handle, words)
    b.cache.store("text", key, {"emb": emb.double().cpu().numpy()}, {"n": len(words)})
    return emb
