"""SAE quality metrics: how well an SAE reconstructs its site, how sparse it is, and what the
model loses when the SAE replaces the site (docs/training.md §5 tabulates the same definitions).

- FVU = Σ‖x − x̂‖² / Σ‖x − x̄‖² with x̄ the **per-dimension** mean over all evaluated tokens,
  accumulated in float64 (Chan's parallel variance merge, so chunked streaming gives the same
  number as one pass); explained variance = 1 − FVU.
- L0 = mean number of nonzero latents per token, over the SAE's token scope, and separately for
  the CLS token (index 0) and the patch tokens.
- dead fraction = latents that never fired on the evaluated tokens; dense fraction = latents
  firing on more than `dense_threshold` of them (1e-2 as in saev).
- zero-shot accuracy with the site replaced by: nothing (clean), the SAE reconstruction
  (spliced), zeros (zero-ablated) and each token position's mean activation (mean-ablated);
  recovered = (acc_spliced − acc_zero) / (acc_clean − acc_zero). Logits include CLIP's logit
  scale, and KL(clean ‖ spliced) over the class softmax is reported too.

Only the tokens in the SAE's scope are replaced or measured; the splice is a forward hook on the
site, always removed (also when the forward raises).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import Tensor

from steerlang.errors import DatasetError, SteerError
from steerlang.model.sae.core import SAE
from steerlang.model.sites import add_site_hook, capture, parse_site, token_index
from steerlang.model.zero_shot import DEFAULT_TEMPLATE, class_embeddings, zero_shot_logits
from steerlang.plan import TokenScope
from steerlang.training import data_parallel
from steerlang.training.activations import _Pick, count_images, iter_pixel_batches
from steerlang.training.progress import progress_bar

if TYPE_CHECKING:
    from steerlang.model.clip import ClipHandle

DENSE_THRESHOLD = 1e-2
CHUNK_TOKENS = 8192  # tokens encoded at once (bounds the [tokens, d_sae] latent matrix)


@dataclass
class ReconMetrics:
    """Reconstruction and sparsity of one SAE on a set of tokens."""

    n_tokens: int
    fvu: float
    explained_variance: float
    mse: float  # mean over tokens of ‖x − x̂‖² in raw activation units
    l0: float
    l0_cls: float | None
    l0_patches: float | None
    dead_fraction: float
    dense_fraction: float
    dense_threshold: float
    freq: list[float] | None = None  # per-latent firing frequency (omitted from to_dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("freq")
        return d


@dataclass
class SpliceMetrics:
    """Zero-shot accuracy with the SAE's site clean, spliced, zero- and mean-ablated."""

    n_images: int
    acc_clean: float
    acc_spliced: float
    acc_zero: float
    acc_mean: float
    recovered: float | None  # None when zero-ablation does not hurt (ratio undefined)
    kl_spliced: float  # mean KL(clean ‖ spliced) over the class softmax, nats

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SAEMetrics:
    """Everything `steer sae-stats` prints for one SAE (one row of the layer-wise table)."""

    site: str
    layer: int | None
    d_sae: int
    tokens: str
    recon: ReconMetrics
    splice: SpliceMetrics | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "site": self.site,
            "layer": self.layer,
            "d_sae": self.d_sae,
            "tokens": self.tokens,
            **self.recon.to_dict(),
            "splice": self.splice.to_dict() if self.splice is not None else None,
        }


class ReconAccumulator:
    """Streams activation chunks through an SAE and accumulates the reconstruction metrics.

    `update` takes all-token site activations [N, L, D] (the scope is applied here, so CLS and
    patch L0 can be told apart) or already-selected tokens [T, D] (no CLS/patch split).
    """

    def __init__(
        self,
        sae: SAE,
        *,
        tokens: TokenScope | None = None,
        dense_threshold: float = DENSE_THRESHOLD,
    ) -> None:
        self.sae = sae
        self.tokens: TokenScope = tokens if tokens is not None else sae.cfg.hook.tokens
        self.dense_threshold = dense_threshold
        d = sae.d_in
        self.n = 0
        self.mean = torch.zeros(d, dtype=torch.float64)
        self.m2 = torch.zeros(d, dtype=torch.float64)
        self.sse = 0.0
        self.counts = torch.zeros(sae.d_sae, dtype=torch.int64)
        self.l0_sum = {"all": 0, "cls": 0, "patches": 0}
        self.l0_n = {"all": 0, "cls": 0, "patches": 0}

    @torch.no_grad()
    def update(self, acts: Tensor) -> None:
        if acts.ndim == 3:
            n_tok = acts.shape[1]
            idx = token_index(self.tokens, n_tok)
            positions = torch.arange(n_tok)[idx]
            sel = acts[:, idx]
            is_cls = (positions == 0).repeat(acts.shape[0])
            x = sel.reshape(-1, acts.shape[-1])
        elif acts.ndim == 2:
            x, is_cls = acts, None
        else:
            raise SteerError(f"activations must be [N, L, D] or [T, D], got {list(acts.shape)}")
        for start in range(0, x.shape[0], CHUNK_TOKENS):
            xc = x[start : start + CHUNK_TOKENS].to(self.sae.device)
            x_hat, a = self.sae(xc)
            fired = a > 0
            l0 = fired.sum(-1).cpu()
            self.counts += fired.sum(0).cpu()
            self.l0_sum["all"] += int(l0.sum())
            self.l0_n["all"] += int(l0.numel())
            if is_cls is not None:
                c = is_cls[start : start + CHUNK_TOKENS]
                self.l0_sum["cls"] += int(l0[c].sum())
                self.l0_n["cls"] += int(c.sum())
                self.l0_sum["patches"] += int(l0[~c].sum())
                self.l0_n["patches"] += int((~c).sum())
            x64 = xc.double().cpu()
            self.sse += float((x64 - x_hat.double().cpu()).pow(2).sum())
            self._merge(x64)

    def _merge(self, x: Tensor) -> None:
        """Chan et al.'s pairwise update of per-dimension (count, mean, M2)."""
        nb = x.shape[0]
        if nb == 0:
            return
        mean_b = x.mean(0)
        m2_b = (x - mean_b).pow(2).sum(0)
        n = self.n + nb
        delta = mean_b - self.mean
        self.mean = self.mean + delta * (nb / n)
        self.m2 = self.m2 + m2_b + delta.pow(2) * (self.n * nb / n)
        self.n = n

    def result(self) -> ReconMetrics:
        if self.n == 0:
            raise SteerError("no tokens were evaluated (empty evaluation set?)")
        var = float(self.m2.sum())
        fvu = self.sse / var if var > 0 else (0.0 if self.sse == 0 else math.inf)
        freq = self.counts.double() / self.n

        def l0(kind: str) -> float | None:
            return self.l0_sum[kind] / self.l0_n[kind] if self.l0_n[kind] else None

        return ReconMetrics(
            n_tokens=self.n,
            fvu=fvu,
            explained_variance=1.0 - fvu,
            mse=self.sse / self.n,
            l0=float(l0("all") or 0.0),
            l0_cls=l0("cls"),
            l0_patches=l0("patches"),
            dead_fraction=float((self.counts == 0).double().mean()),
            dense_fraction=float((freq > self.dense_threshold).double().mean()),
            dense_threshold=self.dense_threshold,
            freq=freq.tolist(),
        )


def reconstruction_metrics(
    sae: SAE,
    acts: Tensor | Iterable[Tensor] | Any,
    *,
    tokens: TokenScope | None = None,
    dense_threshold: float = DENSE_THRESHOLD,
) -> ReconMetrics:
    """Metrics of `sae` on activations: a tensor ([N, L, D] all tokens, or [T, D]), chunks of
    them, or an `ActivationSet`."""
    acc = ReconAccumulator(sae, tokens=tokens, dense_threshold=dense_threshold)
    if hasattr(acts, "chunks"):
        acts = acts.chunks()
    for chunk in [acts] if isinstance(acts, Tensor) else acts:
        acc.update(chunk)
    return acc.result()


# ------------------------------------------------------------------------------ splicing


SpliceMode = Literal["sae", "zero", "mean"]


def splice_hook(
    sae: SAE | None, mode: SpliceMode, tokens: TokenScope, mean_act: Tensor | None = None
) -> Any:
    """The replacement function for `add_site_hook`: the site's tokens in scope become the SAE
    reconstruction, zeros, or the per-position mean activation."""

    def fn(h: Tensor) -> Tensor:
        idx = token_index(tokens, h.shape[1])
        out = h.clone()
        if mode == "sae":
            assert sae is not None
            a, ctx = sae.encode_with_ctx(h[:, idx])
            out[:, idx] = sae.decode(a, ctx).to(h.dtype)
        elif mode == "zero":
            out[:, idx] = 0
        else:
            assert mean_act is not None
            out[:, idx] = mean_act[idx].to(device=h.device, dtype=h.dtype)
        return out

    return fn


def _logits(handle: ClipHandle, pixels: Tensor, classifier: Tensor) -> Tensor:
    feats = handle.model.encode_image(pixels, normalize=True)
    return zero_shot_logits(feats, classifier, handle.logit_scale)


# ------------------------------------------------------------------------------ evaluation


def evaluate_saes(
    handle: ClipHandle,
    saes: Mapping[str, SAE] | Sequence[SAE],
    source: Any,
    *,
    labels: Sequence[int] | Tensor | None = None,
    classes: Sequence[str] | None = None,
    templates: Sequence[str] = (DEFAULT_TEMPLATE,),
    batch_size: int = 64,
    max_images: int | None = None,
    dense_threshold: float = DENSE_THRESHOLD,
    progress: bool = False,
) -> dict[str, SAEMetrics]:
    """Metrics of several SAEs of one model on one image source.

    One clean pass captures every site at once (reconstruction and sparsity metrics, clean
    accuracy, per-position means); with `labels` and `classes`, a second pass runs each site
    spliced, zero-ablated and mean-ablated. Keys are site hook names; SAEs given as a list are
    placed at the site recorded in their config.

    Under torchrun (a joined process group) each rank measures a contiguous share of the
    images and the sufficient statistics are merged exactly (`_merge_ranks`): every rank
    returns the metrics of all images.
    """
    by_site = _sites_of(saes)
    n_total = count_images(source, max_images)
    zs: _ZeroShot | None = None
    if labels is not None and classes is not None:
        zs = _ZeroShot.make(handle, labels, classes, templates, n_total)
    if data_parallel.world_size() > 1:
        source, max_images, zs = _rank_share(source, n_total, zs)
        progress = progress and data_parallel.is_main()
    batches = (source, handle.preprocess, batch_size)
    clean = _clean_pass(handle, by_site, batches, max_images, zs, dense_threshold, progress)
    if data_parallel.world_size() > 1:
        _merge_ranks(clean)
    splices: dict[str, SpliceMetrics] = {}
    if zs is not None:
        splices = _splice_pass(handle, by_site, batches, max_images, zs, clean, progress)
    out: dict[str, SAEMetrics] = {}
    for name, sae in by_site.items():
        ref = parse_site(name)
        out[name] = SAEMetrics(
            site=name,
            layer=ref.layer,
            d_sae=sae.d_sae,
            tokens=str(sae.cfg.hook.tokens),
            recon=clean.recon[name].result(),
            splice=splices.get(name),
        )
    return out


@dataclass
class _ZeroShot:
    """Labels and class embeddings for the accuracy part of `evaluate_saes`."""

    labels: Tensor  # [N] long
    classifier: Tensor  # [C, E]

    @staticmethod
    def make(
        handle: ClipHandle,
        labels: Sequence[int] | Tensor,
        classes: Sequence[str],
        templates: Sequence[str],
        n_total: int | None,
    ) -> _ZeroShot:
        label_t = torch.as_tensor(list(labels) if not isinstance(labels, Tensor) else labels)
        label_t = label_t.long().reshape(-1)
        if n_total is not None and label_t.numel() < n_total:
            raise DatasetError(
                f"{label_t.numel()} labels for {n_total} evaluation images",
                help="give one label per image",
            )
        if not classes:
            raise SteerError("zero-shot evaluation needs at least one class name")
        return _ZeroShot(label_t, class_embeddings(handle.encode_text, classes, templates))


@dataclass
class _CleanPass:
    """What the clean pass leaves for the splice pass and the results."""

    recon: dict[str, ReconAccumulator]
    sums: dict[str, Tensor]  # per-site sum of activations over images [L, D], float64
    n_images: int
    clean_logp: list[Tensor]  # per batch, log-softmax of the clean logits
    clean_correct: int


def _clean_pass(
    handle: ClipHandle,
    by_site: dict[str, SAE],
    batches: tuple[Any, Any, int],
    max_images: int | None,
    zs: _ZeroShot | None,
    dense_threshold: float,
    progress: bool,
) -> _CleanPass:
    """Every site captured at once: reconstruction metrics, per-position sums, clean accuracy."""
    res = _CleanPass(
        recon={
            name: ReconAccumulator(sae, dense_threshold=dense_threshold)
            for name, sae in by_site.items()
        },
        sums={},
        n_images=0,
        clean_logp=[],
        clean_correct=0,
    )
    dev = handle.device
    desc = f"evaluating {len(by_site)} SAE(s): clean pass"
    with (
        torch.inference_mode(),
        capture(handle.model, list(by_site), stop_early=zs is None) as cap,
        progress_bar(progress, desc, count_images(batches[0], max_images)) as advance,
    ):
        for pixels in iter_pixel_batches(*batches, limit=max_images):
            pixels = pixels.to(dev)
            if zs is not None:
                cap.clear()
                logits = _logits(handle, pixels, zs.classifier)
                acts = dict(cap.acts)
                y = _labels_for(zs.labels, res.n_images, pixels.shape[0], dev)
                res.clean_correct += int((logits.argmax(-1) == y).sum())
                res.clean_logp.append(torch.log_softmax(logits, -1).cpu())
            else:
                acts = cap.run(pixels)
            for name, a in acts.items():
                res.recon[name].update(a)
                s = a.double().sum(0).cpu()
                res.sums[name] = res.sums[name] + s if name in res.sums else s
            res.n_images += pixels.shape[0]
            advance(pixels.shape[0])
    if res.n_images == 0:
        raise DatasetError("the evaluation image source is empty")
    return res


def _splice_pass(
    handle: ClipHandle,
    by_site: dict[str, SAE],
    batches: tuple[Any, Any, int],
    max_images: int | None,
    zs: _ZeroShot,
    clean: _CleanPass,
    progress: bool,
) -> dict[str, SpliceMetrics]:
    """Accuracy with each site replaced by the SAE reconstruction, zeros, or its mean."""
    dev = handle.device
    n_images = clean.n_images
    means = {name: (s / n_images).float().to(dev) for name, s in clean.sums.items()}
    correct = {name: {"sae": 0, "zero": 0, "mean": 0} for name in by_site}
    kl = dict.fromkeys(by_site, 0.0)
    seen = 0
    desc = f"evaluating {len(by_site)} SAE(s): spliced / ablated"
    n_total = count_images(batches[0], max_images)
    with torch.inference_mode(), progress_bar(progress, desc, n_total) as advance:
        for b, pixels in enumerate(iter_pixel_batches(*batches, limit=max_images)):
            pixels = pixels.to(dev)
            y = _labels_for(zs.labels, seen, pixels.shape[0], dev)
            for name, sae in by_site.items():
                for mode in ("sae", "zero", "mean"):
                    fn = splice_hook(sae, mode, sae.cfg.hook.tokens, means[name])  # type: ignore[arg-type]
                    handle_ = add_site_hook(handle.model, name, fn)
                    try:
                        logits = _logits(handle, pixels, zs.classifier)
                    finally:
                        handle_.remove()
                    correct[name][mode] += int((logits.argmax(-1) == y).sum())
                    if mode == "sae":
                        lp = clean.clean_logp[b]
                        lq = torch.log_softmax(logits, -1).cpu()
                        kl[name] += float((lp.exp() * (lp - lq)).sum())
            seen += pixels.shape[0]
            advance(pixels.shape[0])
    if data_parallel.world_size() > 1:  # the ranks' counts and KL sums, added up
        names = list(by_site)
        flat = torch.tensor(
            [float(correct[n][m]) for n in names for m in ("sae", "zero", "mean")]
            + [kl[n] for n in names],
            dtype=torch.float64,
        )
        flat = data_parallel.all_reduce_sum(flat).tolist()
        for i, n in enumerate(names):
            correct[n] = {m: round(flat[3 * i + j]) for j, m in enumerate(("sae", "zero", "mean"))}
            kl[n] = flat[3 * len(names) + i]
    acc_clean = clean.clean_correct / n_images
    out: dict[str, SpliceMetrics] = {}
    for name in by_site:
        c = correct[name]
        acc_sp, acc_z, acc_m = (c["sae"] / n_images, c["zero"] / n_images, c["mean"] / n_images)
        denom = acc_clean - acc_z
        out[name] = SpliceMetrics(
            n_images=n_images,
            acc_clean=acc_clean,
            acc_spliced=acc_sp,
            acc_zero=acc_z,
            acc_mean=acc_m,
            recovered=(acc_sp - acc_z) / denom if abs(denom) > 1e-12 else None,
            kl_spliced=kl[name] / n_images,
        )
    return out


def _rank_share(
    source: Any, n_total: int | None, zs: _ZeroShot | None
) -> tuple[Any, None, _ZeroShot | None]:
    """This rank's contiguous share of the first `n_total` images (and of their labels)."""
    if n_total is None:
        raise SteerError(
            "sae-stats under torchrun needs a dataset with a known length",
            help="use a dataset table (--data or --dataset), or run one process",
        )
    lo, hi = data_parallel.bounds(n_total)
    share = source[lo:hi] if isinstance(source, Tensor) else _Pick(source, list(range(lo, hi)))
    if zs is not None:
        zs = _ZeroShot(zs.labels[lo:hi], zs.classifier)
    return share, None, zs


def _merge_ranks(clean: _CleanPass) -> None:
    """Replace this rank's clean-pass statistics by those of all ranks' images: Chan's merge
    of (n, mean, M2) in rank order, sums of squared errors, firing counts, L0 sums, per-position
    activation sums and correct counts (all float64 or integers, so equal to one process's to
    float64 rounding)."""
    names = sorted(clean.recon)
    mine = {
        "recon": [
            (r.n, r.mean, r.m2, r.sse, r.counts, r.l0_sum, r.l0_n)
            for r in (clean.recon[n] for n in names)
        ],
        "sums": [clean.sums[n] for n in names],
        "n_images": clean.n_images,
        "correct": clean.clean_correct,
    }
    parts = data_parallel.gather_objects(mine)
    for i, name in enumerate(names):
        acc = clean.recon[name]
        n, mean, m2, sse, counts, l0_sum, l0_n = parts[0]["recon"][i]
        for p in parts[1:]:
            nb, mean_b, m2_b, sse_b, counts_b, l0s_b, l0n_b = p["recon"][i]
            if nb:
                tot = n + nb
                delta = mean_b - mean
                mean = mean + delta * (nb / tot)
                m2 = m2 + m2_b + delta.pow(2) * (n * nb / tot)
                n = tot
            sse += sse_b
            counts = counts + counts_b
            l0_sum = {k: l0_sum[k] + l0s_b[k] for k in l0_sum}
            l0_n = {k: l0_n[k] + l0n_b[k] for k in l0_n}
        acc.n, acc.mean, acc.m2, acc.sse, acc.counts = n, mean, m2, sse, counts
        acc.l0_sum, acc.l0_n = l0_sum, l0_n
        total = parts[0]["sums"][i]
        for p in parts[1:]:
            total = total + p["sums"][i]
        clean.sums[name] = total
    clean.n_images = sum(p["n_images"] for p in parts)
    clean.clean_correct = sum(p["correct"] for p in parts)


def _labels_for(labels: Tensor, start: int, n: int, device: torch.device) -> Tensor:
    if start + n > labels.numel():
        raise DatasetError(
            f"only {labels.numel()} labels for at least {start + n} evaluation images",
            help="give one label per image",
        )
    return labels[start : start + n].to(device)


def _sites_of(saes: Mapping[str, SAE] | Sequence[SAE]) -> dict[str, SAE]:
    if isinstance(saes, Mapping):
        items = [(parse_site(k).hook_name, v) for k, v in saes.items()]
    else:
        items = []
        for sae in saes:
            name = sae.cfg.hook.hook_name
            if name is None:
                raise SteerError(
                    "an SAE without a recorded layer cannot be placed in the model",
                    help="pass {site: sae}, e.g. {'blocks.7.hook_resid_post': sae}",
                )
            items.append((name, sae))
    out: dict[str, SAE] = {}
    for name, sae in items:
        if name in out:
            raise SteerError(
                f"two SAEs for the same site {name}", help="evaluate them in separate runs"
            )
        out[name] = sae
    if not out:
        raise SteerError("no SAEs to evaluate")
    return out
