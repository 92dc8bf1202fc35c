"""Per-feature statistics of an SAE on a dataset split: the table every selection predicate
reads (`corr(water)`, `mean(not water)`, `freq`, `max`, ...).

Why one streaming pass: a split can be far larger than memory once expanded to tokens x
latents (ViT-B-32 x 49,152 latents is ~10 MB per image), so each batch is encoded, reduced to
per-feature sums in float64, and dropped. Several sites of one model share one forward pass,
and the forward stops after the deepest block any site needs.

Statistics are always computed on the **unsteered** model, so a recipe's selection never
depends on its own edits.

Definitions (per feature f, over the images i of the split and the tokens t in scope):
- pooled p_i = mean_t a_it (pooling "mean") or max_t a_it (pooling "max");
- `mean` = mean_i p_i; `freq` = fraction of (i, t) with a_it > 0; `max` = max_(i,t) a_it;
- `mean:c` / `mean_not:c` = mean of p_i over images where concept c is true / false;
- `corr:c` = Pearson correlation of p_i with the 0/1 indicator of c (population moments;
  0 when either is constant on the split); `corr_not:c` = -corr:c.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from steerlang.pipeline.exprs import Evaluator, ExpressionError, Lookup
from steerlang.pipeline.stats_table import StatisticsError, StatsTable, scope_from_key
from steerlang.plan import Column, Stat, stat_key

if TYPE_CHECKING:  # pragma: no cover
    import torch

log = logging.getLogger("steerlang.statistics")

# The statistics code's version, part of every statistics cache key: bump it when a change to
# this module (a definition, the pooling, the accumulator's precision) changes the numbers, so
# tables computed by the old code are never read back as the new code's.
STATS_FORMAT_VERSION = 2


# ------------------------------------------------------------------------------------------
# Streaming accumulator (torch; works on CPU and GPU)
# ------------------------------------------------------------------------------------------


class FeatureStatsAccumulator:
    """Streaming per-feature sums for one (site, token scope, pooling).

    Pooled per-image activations are merged with Chan's parallel update in float64, so the
    variance behind `corr` does not cancel catastrophically even over millions of images.
    """

    def __init__(
        self,
        n_features: int,
        concept_names: Sequence[str],
        *,
        pooling: str = "mean",
        device: torch.device | str = "cpu",
    ) -> None:
        import torch

        if pooling not in ("mean", "max"):
            raise StatisticsError(
                f"unknown pooling `{pooling}`", help='use `set pooling = "mean"` or "max"'
            )
        self.n_features = n_features
        self.concepts = list(concept_names)
        self.pooling = pooling
        dev = torch.device(device)
        f64 = torch.float64
        self.n_images = 0
        self.n_tokens = 0
        self.mean = torch.zeros(n_features, dtype=f64, device=dev)
        self.m2 = torch.zeros(n_features, dtype=f64, device=dev)
        self.fire = torch.zeros(n_features, dtype=torch.int64, device=dev)
        self.max = torch.full((n_features,), -math.inf, dtype=torch.float32, device=dev)
        self.concept_sum = torch.zeros(len(self.concepts), n_features, dtype=f64, device=dev)
        self.concept_n = torch.zeros(len(self.concepts), dtype=f64, device=dev)

    def update(self, acts: torch.Tensor, concepts: torch.Tensor | None) -> torch.Tensor | None:
        """acts: [B, T, M] latent activations of the tokens in scope; concepts: [B, C] 0/1.
        Returns the pooled per-image activations [B, M] (float64; None for an empty batch),
        which the running top-k of the feature cards ranks images by."""
        import torch

        b, t, m = acts.shape
        if m != self.n_features:
            raise StatisticsError(f"expected {self.n_features} latents, got {m}")
        if b == 0 or t == 0:
            return None
        # Token reductions run in the activations' dtype with float32 accumulation (a float64
        # cast of the [B, T, M] block would cost more than the SAE encode); only the per-image
        # [B, M] results move to float64.
        if self.pooling == "mean":
            pooled = acts.sum(dim=1, dtype=torch.float32).to(torch.float64) / t
            bmax = acts.amax(dim=1).amax(dim=0)
        else:
            pooled32 = acts.amax(dim=1)
            bmax = pooled32.amax(dim=0)
            pooled = pooled32.to(torch.float64)
        self.max = torch.maximum(self.max, bmax.to(self.max.dtype))
        # SAE activations are non-negative (ReLU, JumpReLU, TopK of ReLU), so sign() is the
        # 0/1 firing indicator; summing it is ~3x faster than counting a bool mask on a GPU.
        # Per-batch counts are exact in float32 up to 2^24 tokens.
        fired = torch.sign(acts).sum(dim=1, dtype=torch.float32).sum(dim=0)
        self.fire += fired.round().to(torch.int64)
        # Chan et al. parallel merge of (n, mean, M2).
        bmean = pooled.mean(dim=0)
        bm2 = ((pooled - bmean) ** 2).sum(dim=0)
        n_a, n_b = self.n_images, b
        n = n_a + n_b
        delta = bmean - self.mean
        self.mean += delta * (n_b / n)
        self.m2 += bm2 + delta * delta * (n_a * n_b / n)
        self.n_images = n
        self.n_tokens += b * t
        if self.concepts:
            if concepts is None or concepts.shape != (b, len(self.concepts)):
                raise StatisticsError("concept indicator batch does not match the activations")
            c = concepts.to(device=pooled.device, dtype=torch.float64)
            self.concept_sum += c.T @ pooled
            self.concept_n += c.sum(dim=0)
        return pooled

    def finalize(self) -> dict[str, np.ndarray]:
        n = self.n_images
        if n == 0:
            raise StatisticsError(
                "the statistics split has no images",
                help="check `set stats_split` and the dataset's split column",
            )
        mean = self.mean.cpu().numpy()
        var = np.maximum(self.m2.cpu().numpy() / n, 0.0)
        std = np.sqrt(var)
        cols: dict[str, np.ndarray] = {
            "mean": mean.astype(np.float64),
            "freq": self.fire.cpu().numpy().astype(np.float64) / max(self.n_tokens, 1),
            "max": self.max.cpu().numpy().astype(np.float64),
        }
        total = mean * n
        csum = self.concept_sum.cpu().numpy()
        cn = self.concept_n.cpu().numpy()
        for j, name in enumerate(self.concepts):
            n1 = float(cn[j])
            n0 = n - n1
            s1 = csum[j]
            if n1 <= 0 or n0 <= 0:
                log.warning(
                    "concept `%s` is %s on every image of the statistics split; its corr is 0",
                    name,
                    "false" if n1 <= 0 else "true",
                )
            m1 = s1 / n1 if n1 > 0 else np.zeros_like(mean)
            m0 = (total - s1) / n0 if n0 > 0 else np.zeros_like(mean)
            with np.errstate(divide="ignore", invalid="ignore"):
                r = (m1 - m0) / std * math.sqrt(max(n1 * n0, 0.0)) / n
            r = np.where((std > 0) & (n1 > 0) & (n0 > 0) & np.isfinite(r), r, 0.0)
            r = np.clip(r, -1.0, 1.0)
            cols[f"corr:{name}"] = r
            cols[f"corr_not:{name}"] = -r
            cols[f"mean:{name}"] = m1
            cols[f"mean_not:{name}"] = m0
        return cols


# ------------------------------------------------------------------------------------------
# Concept evaluation over dataset rows (ConceptDef expressions over columns)
# ------------------------------------------------------------------------------------------


def evaluate_concepts(
    concepts: Mapping[str, Any],
    column: Callable[[str], Sequence[Any]],
    n_rows: int,
    params: Mapping[str, Any] | None = None,
) -> dict[str, np.ndarray]:
    """Boolean arrays (one per concept) from `ConceptDef.expr` over dataset columns.

    `column(name)` returns a column's values (raising a DatasetError naming the column when it
    is absent). Numeric-looking strings compare as numbers, so `place == 1` works whether the
    loader returns ints or the CSV's strings.
    """
    cache: dict[str, np.ndarray] = {}
    out: dict[str, np.ndarray] = {}
    for name, cdef in concepts.items():
        expr = cdef.expr if hasattr(cdef, "expr") else cdef
        ev = Evaluator(
            _dataset_columns(name, column, cache),
            params or {},
            n_rows,
            label=f"concept `{name}`",
            text_columns=True,
            strict_logic=False,
        )
        arr = np.asarray(ev(expr))
        if arr.ndim == 0:
            arr = np.full(n_rows, bool(arr))
        if arr.dtype != bool:
            # A bare column used as a concept: nonzero / "true"-like values count as true.
            arr = np.asarray([_truthy(v) for v in arr.tolist()], dtype=bool)
        out[name] = arr
    return out


def _dataset_columns(
    concept: str, column: Callable[[str], Sequence[Any]], cache: dict[str, np.ndarray]
) -> Lookup:
    """The lookup of concept `concept`'s data leaves: dataset columns (read once, shared by
    every concept through `cache`); a feature statistic is an error."""

    def lookup(e: Stat | Column) -> np.ndarray:
        if isinstance(e, Stat):
            raise ExpressionError(
                f"concept `{concept}` uses the feature statistic `{stat_key(e)}`",
                help="concepts are defined over dataset columns, e.g. `concept water = place == 1`",
            )
        if e.name not in cache:
            cache[e.name] = _as_comparable(np.asarray(list(column(e.name)), dtype=object))
        return cache[e.name]

    return lookup


def _truthy(v: Any) -> bool:
    if isinstance(v, str):
        return v.strip().lower() not in ("", "0", "false", "no", "-1", "nan")
    try:
        f = float(v)
    except (TypeError, ValueError):
        return bool(v)
    return f > 0


def _as_comparable(values: np.ndarray) -> np.ndarray:
    """Convert a column to float64 when every value is numeric (or a numeric string)."""
    try:
        return np.asarray([float(v) for v in values.tolist()], dtype=np.float64)
    except (TypeError, ValueError):
        return np.asarray([str(v) for v in values.tolist()], dtype=object)


# ------------------------------------------------------------------------------------------
# The statistics pass
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StatsSpec:
    """One statistics table to produce: an SAE site and a token scope."""

    layer: int
    site: str
    tokens: str  # tokens_key(...)

    @property
    def label(self) -> str:
        return f"layer {self.layer} {self.site} tokens {self.tokens}"


def stats_cache_key(
    *,
    model_hash: str,
    sae_hash: str,
    spec: StatsSpec,
    dataset: Mapping[str, Any],
    concepts: Mapping[str, Any],
    concept_values: str,
    preprocess: str,
    pooling: str,
    limit: int,
    seed: int,
) -> str:
    """Content key of one statistics table: everything that changes its numbers.

    `dataset` identifies the images and the table files read (`dataset_fingerprint`),
    `concept_values` the values of every column the concepts read and the concept masks
    (`columns_digest`), `preprocess` the image transform (`preprocess_fingerprint`); the model
    and SAE enter by the hashes of their weights.
    """
    from steerlang.files import content_key

    return content_key(
        {
            "v": STATS_FORMAT_VERSION,
            "model": model_hash,
            "sae": sae_hash,
            "layer": spec.layer,
            "site": spec.site,
            "tokens": spec.tokens,
            "dataset": dict(dataset),
            "concepts": {k: _jsonable(v) for k, v in sorted(concepts.items())},
            "concept_values": concept_values,
            "preprocess": preprocess,
            "pooling": pooling,
            "limit": int(limit),
            "seed": int(seed) if limit else None,
        },
        prefix="stats-",
    )


def _jsonable(v: Any) -> Any:
    if hasattr(v, "model_dump"):
        return v.model_dump(mode="json", exclude={"span"})
    return v


def latent_chunk_rows(n_tokens: int, n_latents: int, device: torch.device | str) -> int:
    """Images per SAE-encode chunk, so one [chunk, T, M] float32 tensor stays within a memory
    budget (256 MiB on CPU, 2 GiB on an accelerator)."""
    import torch

    budget = (2 << 30) if torch.device(device).type != "cpu" else (256 << 20)
    return max(1, budget // max(1, n_tokens * n_latents * 4))


def compute_statistics(
    model: Any,
    saes: Mapping[tuple[int, str], Any],
    specs: Sequence[StatsSpec],
    batches: Iterable[tuple[np.ndarray, torch.Tensor]],
    concept_values: Mapping[str, np.ndarray],
    *,
    pooling: str = "mean",
    device: torch.device | str = "cpu",
    n_images: int | None = None,
    progress: Any = None,
    galleries: Mapping[StatsSpec, Any] | None = None,
) -> dict[StatsSpec, StatsTable]:
    """One streaming pass over `batches` computing every table in `specs`.

    All sites share one forward pass per batch and the forward stops after the deepest block
    any site needs. `concept_values[name]` is a boolean array over the dataset rows (indexed
    by the row indices the batches yield). `galleries` maps specs to running top-k states
    (`steerlang.pipeline.topk.RunningTopK`) that the same pass fills with each feature's
    strongest images, for the feature cards.
    """
    import torch

    from steerlang.model.sites import capture
    from steerlang.model.towers import tower_of

    if not specs:
        return {}
    has_cls = tower_of(model)[1].has_cls
    names = list(concept_values)
    cmat = (
        np.stack([np.asarray(concept_values[n], dtype=bool) for n in names], axis=1)
        if names
        else None
    )
    sites = sorted({(s.layer, s.site) for s in specs})
    for key in sites:
        if key not in saes:
            raise StatisticsError(f"no SAE bound at layer {key[0]} {key[1]}")
    accs: dict[StatsSpec, FeatureStatsAccumulator] = {
        s: FeatureStatsAccumulator(
            saes[(s.layer, s.site)].d_sae, names, pooling=pooling, device=device
        )
        for s in specs
    }
    by_site = {k: {s: acc for s, acc in accs.items() if (s.layer, s.site) == k} for k in sites}
    hook_names = {k: f"blocks.{k[0]}.hook_{k[1]}" for k in sites}
    task = None
    if progress is not None:
        task = progress.add_task("feature statistics", total=n_images)
    with torch.inference_mode(), capture(model, list(sites), stop_early=True) as cap:
        for rows, pixels in batches:
            acts = cap.run(pixels)
            cb = torch.from_numpy(cmat[rows]).to(device) if cmat is not None else None
            for key in sites:
                _accumulate_site(
                    saes[key],
                    acts[hook_names[key]],
                    cb,
                    by_site[key],
                    rows,
                    galleries or {},
                    has_cls,
                )
            if progress is not None and task is not None:
                progress.advance(task, len(rows))
    # Under torchrun each rank saw a shard of the images: merge exactly (pipeline/distributed.py).
    from steerlang.pipeline.distributed import merge_across_ranks, merge_galleries

    merge_across_ranks(accs)
    merge_galleries(dict(galleries or {}))  # in place: the caller's gallery objects
    return {spec: _finished_table(spec, acc, pooling) for spec, acc in accs.items()}


def _accumulate_site(
    sae: Any,
    h: torch.Tensor,
    concepts: torch.Tensor | None,
    accs: Mapping[StatsSpec, FeatureStatsAccumulator],
    rows: np.ndarray,
    galleries: Mapping[StatsSpec, Any],
    has_cls: bool = True,
) -> None:
    """Encode one site's activations [B, T, D] in memory-bounded chunks of images and feed
    every token scope's accumulator (and running top-k) at that site."""
    b, t, _ = h.shape
    step = latent_chunk_rows(t, sae.d_sae, h.device)
    for lo in range(0, b, step):
        a = encode_for_stats(sae, h[lo : lo + step])
        cpart = concepts[lo : lo + step] if concepts is not None else None
        for spec, acc in accs.items():
            pooled = acc.update(_scope_slice(a, spec.tokens, has_cls), cpart)
            gallery = galleries.get(spec)
            if gallery is not None and pooled is not None:
                gallery.update(pooled, a, rows[lo : lo + step])
        del a


def _finished_table(spec: StatsSpec, acc: FeatureStatsAccumulator, pooling: str) -> StatsTable:
    return StatsTable(
        acc.n_features,
        acc.finalize(),
        meta={
            "site_label": spec.label,
            "layer": spec.layer,
            "site": spec.site,
            "tokens": spec.tokens,
            "pooling": pooling,
            "n_images": acc.n_images,
            "n_tokens": acc.n_tokens,
            "concepts": list(acc.concepts),
        },
    )


def _scope_slice(a: torch.Tensor, tokens: str, has_cls: bool = True) -> torch.Tensor:
    """The tokens of `a` a statistics table covers, laid out as the tower lays them out (a
    tower without a CLS token has only patches: `patches` is every token, `cls` an error)."""
    from steerlang.model.sites import token_index
    from steerlang.model.towers import scope_for

    if tokens == "all":
        return a
    scope = scope_for(scope_from_key(tokens), has_cls)
    return a if scope == "all" else a[:, token_index(scope, a.shape[1])]


def encode_for_stats(sae: Any, x: torch.Tensor) -> torch.Tensor:
    """SAE latents [..., M] for the statistics pass.

    For ReLU SAEs this is `sae.encode` as one fused `addmm` plus an in-place ReLU, so under
    autocast the big [tokens, M] block is produced directly in the autocast dtype (bf16 halves
    the memory traffic of every reduction that follows). Other activations use `sae.encode`.
    """
    import torch

    if sae.cfg.activation != "relu":
        return sae.encode(x)
    xn, _ = sae.normalize(x.to(sae.dtype))
    if sae.cfg.pre_center:
        xn = xn - sae.b_dec
    shape = xn.shape
    pre = torch.addmm(sae.b_enc, xn.reshape(-1, shape[-1]), sae.W_enc)
    return torch.relu_(pre).view(*shape[:-1], pre.shape[-1])
