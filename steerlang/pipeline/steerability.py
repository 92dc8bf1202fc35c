"""Steerability S_f exactly as the authors of the SAE-steerability paper coded it (described
in docs/running.md, "`steer sweep`"), and the neuron baseline.

For feature f, clamp f := s at every token (s = 150, "the asymptote"), keeping the SAE error
term, so the residual moves by σ_tok·(s − a_f)·W_dec[f]. Read the output out against a
vocabulary of raw words: p_i(v) = softmax_v(100·⟨e_i, t_v⟩) with L2-normalised image and text
embeddings and a *fixed* scale of 100. Then

    Δ_f(v) = mean_i [p_i^s(v) − p_i^0(v)],     S_f = Σ_v Δ_f(v)²,     steerable ⇔ S_f > 0.10

plus power P_f = max_v Δ_f(v) and the top promoted concept argmax_v Δ_f(v). The neuron
baseline overwrites coordinate j of the site activation with s (no SAE, no error term).

The readout scale is a setting (`logit_scale`): the authors' fixed 100 by default, or "model",
the model's own exp(logit_scale) (resolved by the caller; the result records which it was).

**Push-matched neurons** (`SteerabilityConfig.push = "matched"`). At the same nominal s an SAE
clamp and a coordinate overwrite move the residual by different amounts, so their steerable
fractions do not compare like for like. The matched neuron push is defined per token: for image
i and token t in scope,

    m_{i,t}(s) = (1/M) Σ_f ‖σ_{i,t}·(s − a_f(i,t))·W_dec[f]‖ = σ_{i,t}·(1/M) Σ_f |s − a_f(i,t)|·‖W_dec[f]‖

the norm of the SAE clamp's residual move averaged over all M features of the SAE at that site
(σ_{i,t} the SAE's input-normalisation scale for the token, a_f its activation), and neuron j is
pushed by *adding* m_{i,t}(s) to coordinate j (tokens outside the scope are untouched). So at
every token the neuron edit's residual norm equals the mean SAE edit's residual norm
(tests/pipeline/test_steer_curve.py checks this to float tolerance); `matched_push_norms`
computes m.

Why it is fast: the clean forward up to the site is shared by every feature, so the site
activation (and the residual stream where the edit enters) is captured once for the N images;
each chunk of features then broadcasts its single-row deltas over the images and runs only the
blocks after the site, as one batch of (features × images).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from steerlang.errors import SteerError
from steerlang.facts import SITE_KINDS

log = logging.getLogger("steerlang.steerability")

# The sweep code's version, part of every sweep's cache key: bump it when a change to the
# measure changes the numbers, so sweeps by the old code are never read back as the new code's.
STEER_FORMAT_VERSION = 2
DEFAULT_VOCABULARY = "default"


class SteerabilityError(SteerError):
    """The steerability sweep cannot run (vocabulary, model structure, site)."""


# ------------------------------------------------------------------------------------------
# Settings and vocabulary
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SteerabilityConfig:
    """The authors' defaults: s = 150, threshold 0.10, N = 192 images, readout scale 100."""

    strength: float = 150.0
    threshold: float = 0.1
    n_images: int = 192
    logit_scale: float = 100.0
    tokens: str = "all"
    vocabulary: str = DEFAULT_VOCABULARY
    # "fixed" (a number from the recipe, the authors' 100 by default) or "model" (the model's
    # own exp(logit_scale)); only the number enters the cache key.
    logit_scale_source: str = "fixed"
    # neurons only: "overwrite" (coordinate := s, the authors' baseline) or "matched" (add the
    # SAE clamp's mean residual norm, see the module docstring)
    push: str = "overwrite"

    def key(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "strength": float(self.strength),
            "n_images": int(self.n_images),
            "logit_scale": float(self.logit_scale),
            "tokens": self.tokens,
        }
        if self.push != "overwrite":  # keeps the keys of earlier sweeps valid
            out["push"] = self.push
        return out


def _vocab_file(name: str) -> list[str]:
    text = resources.files("steerlang.pipeline.vocab").joinpath(name).read_text("utf-8")
    return [w.strip() for w in text.splitlines() if w.strip() and not w.startswith("#")]


def is_zoo_model(model_ref: str | None) -> bool:
    return bool(model_ref) and (model_ref == "default" or str(model_ref).startswith("zoo:"))


def load_vocabulary(
    spec: str = DEFAULT_VOCABULARY, extra: Iterable[str] = (), *, model_ref: str | None = None
) -> list[str]:
    """The readout vocabulary: `default` or a path to a file with one word per line.

    `default` (see vocab/PROVENANCE.md) is the 5,000 most frequent English words followed by
    the zoo world's words, except for the zoo's tiny CLIP (`model_ref` `zoo:...`), whose
    tokenizer only knows its world's words: there it is the world's words alone. Words in
    `extra` (e.g. those a recipe's `promotes("word")` names) are appended when missing, so
    their Δ is always measured."""
    if spec in ("default", "", None):
        world = _vocab_file("synthworld.txt")
        words = world if is_zoo_model(model_ref) else _vocab_file("common_en_5000.txt") + world
    else:
        p = Path(spec).expanduser()
        if not p.is_file():
            raise SteerabilityError(
                f"vocabulary file {p} not found",
                help='use `set vocabulary = "default"` or a path to a file with one word per line',
            )
        words = [w.strip() for w in p.read_text("utf-8").splitlines() if w.strip()]
    out = list(dict.fromkeys(words))
    seen = set(out)
    for w in extra:
        if w not in seen:
            out.append(w)
            seen.add(w)
    if not out:
        raise SteerabilityError(f"the vocabulary {spec!r} is empty")
    return out


def text_embeddings(handle: Any, words: Sequence[str], *, batch_size: int = 256) -> Any:
    """L2-normalised text embeddings of the raw words (no prompt template), [V, E] fp32."""
    import torch

    outs = []
    with torch.inference_mode():
        for lo in range(0, len(words), batch_size):
            e = handle.encode_text(list(words[lo : lo + batch_size])).float()
            outs.append(torch.nn.functional.normalize(e, dim=-1))
    return torch.cat(outs)


# ------------------------------------------------------------------------------------------
# Running the vision tower from a site onward
# ------------------------------------------------------------------------------------------


class SuffixRunner:
    """Captures, once, what a site edit needs, and re-runs only the blocks after the site.

    An edit δ of the site activation enters the residual stream at:
    - resid_post L and mlp_out L: resid_post L (then blocks L+1..);
    - resid_pre L: the input of block L (then blocks L..);
    - attn_out L: resid_mid L = resid_pre L + attn_out L (then block L's MLP half, L+1..).
    """

    def __init__(self, handle: Any, layer: int, site: str) -> None:
        from steerlang.model.sites import resolve_visual

        self.visual = resolve_visual(handle)
        if not hasattr(self.visual, "transformer"):  # the runner re-implements open_clip's head
            raise SteerabilityError(
                f"steerability sweeps run on open_clip ViT towers; this model's vision tower is "
                f"{type(self.visual).__name__} (SigLIP / Hugging Face towers are not supported "
                "there yet)",
                help="leave steerability/promotes out of the recipe for this model, or use an "
                "openclip:ViT-* model",
            )
        blocks = self.visual.transformer.resblocks
        if not 0 <= layer < len(blocks):
            raise SteerabilityError(
                f"layer {layer} does not exist: the model has {len(blocks)} blocks",
                help=f"use a layer in 0..{len(blocks) - 1}",
            )
        if site not in SITE_KINDS:
            raise SteerabilityError(f"unknown site kind {site!r}")
        self.layer = layer
        self.site = site
        self.batch_first = bool(getattr(self.visual.transformer, "batch_first", True))
        if site == "attn_out":
            blk = blocks[layer]
            if not all(hasattr(blk, a) for a in ("ln_2", "mlp", "ls_2")):
                raise SteerabilityError(
                    f"block {layer} ({type(blk).__name__}) is not a standard open_clip block; "
                    "cannot continue from attn_out",
                    help="sweep a resid_post or mlp_out site instead",
                )

    def capture_sites(self) -> list[tuple[int, str]]:
        L = self.layer
        if self.site == "resid_post":
            return [(L, "resid_post")]
        if self.site == "mlp_out":
            return [(L, "mlp_out"), (L, "resid_post")]
        if self.site == "resid_pre":
            return [(L, "resid_pre")]
        return [(L, "resid_pre"), (L, "attn_out")]

    def prepare(self, pixels: Any) -> tuple[Any, Any]:
        """(site activation, residual where an edit of it enters), both [N, T, d]."""
        import torch

        from steerlang.model.sites import capture

        with (
            torch.inference_mode(),
            capture(self.visual, self.capture_sites(), stop_early=True) as cap,
        ):
            acts = cap.run(pixels)
        L = self.layer
        if self.site == "resid_post":
            h = acts[f"blocks.{L}.hook_resid_post"]
            return h, h
        if self.site == "mlp_out":
            return acts[f"blocks.{L}.hook_mlp_out"], acts[f"blocks.{L}.hook_resid_post"]
        if self.site == "resid_pre":
            h = acts[f"blocks.{L}.hook_resid_pre"]
            return h, h
        a = acts[f"blocks.{L}.hook_attn_out"]
        return a, acts[f"blocks.{L}.hook_resid_pre"] + a

    def run(self, resid: Any) -> Any:
        """Residual [N, T, d] at the entry point -> L2-normalised image embeddings [N, E]."""
        import torch

        with torch.inference_mode():
            return self._run(resid)

    def _run(self, resid: Any) -> Any:
        import torch

        v = self.visual
        blocks = v.transformer.resblocks
        x = resid if self.batch_first else resid.transpose(0, 1)
        L = self.layer
        if self.site == "attn_out":
            blk = blocks[L]
            x = x + blk.ls_2(blk.mlp(blk.ln_2(x)))
            start = L + 1
        elif self.site == "resid_pre":
            start = L
        else:
            start = L + 1
        for blk in list(blocks)[start:]:
            x = blk(x, attn_mask=None)
        if not self.batch_first:
            x = x.transpose(0, 1)
        pooled, _ = v._pool(x)
        if v.proj is not None:
            pooled = pooled @ v.proj
        return torch.nn.functional.normalize(pooled.float(), dim=-1)


# ------------------------------------------------------------------------------------------
# The sweep
# ------------------------------------------------------------------------------------------


@dataclass
class SteerabilityResult:
    """Per swept unit (SAE feature or residual coordinate): S, power, top concept, and Δ for
    the words asked for. `units` are the ids swept (a subset when sampling)."""

    kind: str  # "sae" | "neuron"
    units: np.ndarray
    steerability: np.ndarray
    power: np.ndarray
    top_concept: np.ndarray
    promotes: dict[str, np.ndarray] = field(default_factory=dict)
    top_words: np.ndarray | None = None  # [n, 5] indices into vocabulary
    top_deltas: np.ndarray | None = None  # [n, 5]
    vocabulary: list[str] = field(default_factory=list)
    threshold: float = 0.1
    strength: float = 150.0
    n_images: int = 0
    key: str | None = None
    logit_scale: float = 100.0
    logit_scale_source: str = "fixed"
    push: str = "clamp"  # SAE features: "clamp"; neurons: "overwrite" | "matched"
    # a run with `set steer_curve`: the steerable fraction at each strength (report/steer_curve)
    curve: list[dict[str, Any]] | None = None

    @property
    def steerable(self) -> np.ndarray:
        return self.steerability > self.threshold

    @property
    def fraction_steerable(self) -> float:
        return float(self.steerable.mean()) if len(self.units) else math.nan

    def summary(self, *, top: int = 10) -> dict[str, Any]:
        steer = self.steerable
        words, counts = np.unique(self.top_concept[steer].astype(str), return_counts=True)
        order = np.lexsort((words, -counts))
        best = np.argsort(-self.steerability, kind="stable")[:top]
        return {
            "kind": self.kind,
            "n_units": int(len(self.units)),
            "n_steerable": int(steer.sum()),
            "fraction_steerable": self.fraction_steerable,
            "threshold": self.threshold,
            "strength": self.strength,
            "n_images": self.n_images,
            "logit_scale": self.logit_scale,
            "logit_scale_source": self.logit_scale_source,
            "push": self.push,
            "distinct_top_concepts": int(len(words)),
            "top_concepts": [[str(words[i]), int(counts[i])] for i in order[:top]],
            "most_steerable": [
                {
                    "unit": int(self.units[i]),
                    "steerability": float(self.steerability[i]),
                    "power": float(self.power[i]),
                    "top_concept": str(self.top_concept[i]),
                }
                for i in best
            ],
            "steerability_histogram": _histogram(self.steerability),
            "key": self.key,
            **({"curve": self.curve} if self.curve is not None else {}),
        }

    def columns(self, n_features: int) -> dict[str, np.ndarray]:
        """Statistics-table columns over all `n_features` (NaN / "" where not swept)."""
        s = np.full(n_features, np.nan)
        p = np.full(n_features, np.nan)
        t = np.full(n_features, "", dtype=object)
        s[self.units] = self.steerability
        p[self.units] = self.power
        t[self.units] = self.top_concept
        out = {"steerability": s, "power": p, "top_concept": t}
        for w, vals in self.promotes.items():
            c = np.full(n_features, np.nan)
            c[self.units] = vals
            out[f"promotes:{w}"] = c
        return out

    def to_cache(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        cols: dict[str, np.ndarray] = {
            "units": self.units.astype(np.float64),
            "steerability": self.steerability,
            "power": self.power,
            "top_concept": self.top_concept,
        }
        for w, v in self.promotes.items():
            cols[f"promotes:{w}"] = v
        if self.top_words is not None and self.top_deltas is not None:
            for j in range(self.top_words.shape[1]):
                cols[f"top_word_{j}"] = self.top_words[:, j].astype(np.float64)
                cols[f"top_delta_{j}"] = self.top_deltas[:, j]
        meta = {
            "kind": self.kind,
            "vocabulary": self.vocabulary,
            "threshold": self.threshold,
            "strength": self.strength,
            "n_images": self.n_images,
            "promotes": list(self.promotes),
            "logit_scale": self.logit_scale,
            "logit_scale_source": self.logit_scale_source,
            "push": self.push,
        }
        return cols, meta

    @classmethod
    def from_cache(
        cls, cols: Mapping[str, np.ndarray], meta: Mapping[str, Any], key: str | None
    ) -> SteerabilityResult:
        n_top = sum(1 for k in cols if k.startswith("top_word_"))
        tw = (
            np.stack([cols[f"top_word_{j}"] for j in range(n_top)], 1).astype(np.int64)
            if n_top
            else None
        )
        td = np.stack([cols[f"top_delta_{j}"] for j in range(n_top)], 1) if n_top else None
        return cls(
            kind=meta["kind"],
            units=np.asarray(cols["units"]).astype(np.int64),
            steerability=np.asarray(cols["steerability"], dtype=np.float64),
            power=np.asarray(cols["power"], dtype=np.float64),
            top_concept=np.asarray(cols["top_concept"], dtype=object),
            promotes={w: np.asarray(cols[f"promotes:{w}"]) for w in meta.get("promotes", [])},
            top_words=tw,
            top_deltas=td,
            vocabulary=list(meta.get("vocabulary", [])),
            threshold=float(meta.get("threshold", 0.1)),
            strength=float(meta.get("strength", 150.0)),
            n_images=int(meta.get("n_images", 0)),
            key=key,
            logit_scale=float(meta.get("logit_scale", 100.0)),
            logit_scale_source=str(meta.get("logit_scale_source", "fixed")),
            push=str(meta.get("push", "clamp" if meta["kind"] == "sae" else "overwrite")),
        )


def _histogram(values: np.ndarray, bins: int = 20) -> dict[str, list[float]]:
    v = values[np.isfinite(values)]
    if v.size == 0:
        return {"edges": [], "counts": []}
    hi = max(float(v.max()), 1e-6)
    counts, edges = np.histogram(v, bins=bins, range=(0.0, hi))
    return {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]}


def parse_sample(spec: str | None, n: int) -> np.ndarray:
    """`None` -> all units; `1/20` -> every 20th unit (0, 20, 40, ...); `A:B` -> range;
    `3,7,11` -> those ids."""
    if spec is None or spec in ("", "all"):
        return np.arange(n)
    s = spec.strip()
    try:
        if "/" in s:
            num, den = s.split("/", 1)
            if int(num) != 1 or int(den) < 1:
                raise ValueError
            return np.arange(0, n, int(den))
        if ":" in s:
            lo, hi = s.split(":", 1)
            return np.arange(int(lo or 0), min(int(hi) if hi else n, n))
        ids = np.asarray([int(t) for t in s.split(",") if t.strip()], dtype=np.int64)
    except ValueError:
        raise SteerabilityError(
            f"cannot read the unit selection {spec!r}",
            help="use 1/20 (every 20th), 0:1000 (a range) or 3,7,11 (explicit ids)",
        ) from None
    bad = ids[(ids < 0) | (ids >= n)]
    if bad.size:
        raise SteerabilityError(
            f"unit {int(bad[0])} is out of range (0..{n - 1})", help=f"use ids below {n}"
        )
    return ids


def _autocast(device: Any, precision: str) -> Any:
    import contextlib

    import torch

    dev = torch.device(device)
    if precision == "auto":
        precision = "bf16" if dev.type == "cuda" else "fp32"
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=dev.type, dtype=torch.bfloat16)


@dataclass
class _SaeEdit:
    """What clamping an SAE feature adds to the residual: per-token normalisation scale and
    (for TopK) the full activations, computed once, since a TopK latent's value depends on
    all the others."""

    sae: Any
    norm_scale: Any  # [N, T, 1] tensor on the sweep device, or a float
    full_acts: Any | None  # [N, T, M] on the SAE's device (TopK only)

    @classmethod
    def prepare(cls, sae: Any, h: Any, device: Any) -> _SaeEdit:
        import torch

        hs = h.to(sae.device)
        _, ctx = sae.normalize(hs.to(sae.dtype))
        norm_scale = ctx.scale
        if isinstance(norm_scale, torch.Tensor):
            norm_scale = norm_scale.to(device, torch.float32)  # [N, T, 1]
        full_acts = sae.encode(hs) if sae.cfg.activation == "topk" else None  # [N, T, M]
        return cls(sae, norm_scale, full_acts)

    def edited(
        self, hb: Any, rb: Any, lo: int, chunk_t: Any, s: float, tok_f: Any, device: Any
    ) -> Any:
        """[k, b, T, d]: the residual batch `rb` with each feature of `chunk_t` clamped to s."""
        import torch

        sae, sae_dev = self.sae, self.sae.device
        k, b, d = len(chunk_t), hb.shape[0], rb.shape[-1]
        if self.full_acts is not None:
            a = self.full_acts[lo : lo + b].index_select(-1, chunk_t.to(sae_dev))
        else:
            a = sae.encode_subset(hb.to(sae_dev), chunk_t.to(sae_dev))
        a = a.to(device, torch.float32)  # [b, T, k]
        coef = (s - a) * tok_f  # clamp f := s on the token scope
        if isinstance(self.norm_scale, torch.Tensor):
            coef = coef * self.norm_scale[lo : lo + b]
        elif self.norm_scale != 1.0:
            coef = coef * float(self.norm_scale)
        rows = sae.W_dec.index_select(0, chunk_t.to(sae_dev)).to(device, torch.float32)
        # [k, b, T, d] = coef[k, b, T, 1] * rows[k, 1, 1, d]
        delta = coef.permute(2, 0, 1).unsqueeze(-1) * rows.view(k, 1, 1, d)
        return rb.unsqueeze(0).to(torch.float32) + delta


def _neuron_edited(hb: Any, rb: Any, chunk_t: Any, s: float, tok_f: Any) -> Any:
    """[k, b, T, d]: the neuron baseline, coordinate j of the site activation overwritten
    with s for each j of `chunk_t`."""
    import torch

    k, b, n_tok = len(chunk_t), hb.shape[0], hb.shape[1]
    cur = hb.index_select(-1, chunk_t).permute(2, 0, 1)  # [k, b, T]
    add = ((s - cur) * tok_f.view(1, 1, n_tok)).unsqueeze(-1).to(torch.float32)
    edited = rb.unsqueeze(0).to(torch.float32).repeat(k, 1, 1, 1)
    edited.scatter_add_(-1, chunk_t.view(k, 1, 1, 1).expand(k, b, n_tok, 1), add)
    return edited


def matched_push_norms(sae: Any, h: Any, s: float, tok_f: Any, device: Any) -> Any:
    """[N, T] float32: m_{i,t}(s), the norm of the SAE clamp's residual move at strength s
    averaged over all the SAE's features, per token (0 outside the token scope `tok_f`,
    [1, T, 1]); the module docstring defines it. Computed image by image in chunks so a
    49,152-feature SAE does not hold [N, T, M] at once."""
    import torch

    with torch.inference_mode():
        w_norm = sae.W_dec.float().norm(dim=-1)  # [M]
        m = sae.d_sae
        out = []
        step = max(1, (1 << 24) // max(1, h.shape[1] * m))
        for lo in range(0, h.shape[0], step):
            hb = h[lo : lo + step].to(sae.device)
            a, ctx = sae.encode_with_ctx(hb)
            mean_norm = (s - a.float()).abs() @ w_norm / m  # [b, T]
            scale = ctx.scale
            if isinstance(scale, torch.Tensor):
                mean_norm = mean_norm * scale.float().squeeze(-1)
            else:
                mean_norm = mean_norm * float(scale)
            out.append(mean_norm.to(device))
        return torch.cat(out) * tok_f.view(1, -1).to(device)


def push_norms(sae: Any, h: Any, strengths: Sequence[float], tokens: str = "all") -> list[dict]:
    """How far each kind of edit moves the residual, per strength, averaged over the tokens in
    scope of the N images (site activations `h` [N, T, d]):

    - `sae_clamp`: the mean over features of ‖σ·(s − a_f)·W_dec[f]‖ (the matched push m);
    - `neuron_overwrite`: the mean over coordinates j of |s − h_j| (coordinate := s);
    - `ratio`: sae_clamp / neuron_overwrite, how much further the SAE clamp pushes at the
      same nominal s."""
    import torch

    from steerlang.model.sites import token_mask

    with torch.inference_mode():
        n_tok = h.shape[1]
        tok = token_mask(tokens, n_tok, h.device).to(torch.float32).view(1, n_tok, 1)
        n_in = float(tok.sum()) * h.shape[0]
        out = []
        for s in strengths:
            m = matched_push_norms(sae, h, float(s), tok, h.device)
            sae_move = float(m.sum()) / n_in
            over = float(((float(s) - h.float()).abs().mean(-1, keepdim=True) * tok).sum()) / n_in
            out.append(
                {
                    "strength": float(s),
                    "sae_clamp": sae_move,
                    "neuron_overwrite": over,
                    "ratio": sae_move / over if over > 0 else math.nan,
                }
            )
    return out


def _neuron_pushed(rb: Any, chunk_t: Any, push: Any) -> Any:
    """[k, b, T, d]: the push-matched neuron baseline, `push` [b, T] added to coordinate j of
    the residual batch `rb` for each j of `chunk_t`."""
    import torch

    k, (b, n_tok, _) = len(chunk_t), rb.shape
    add = push.to(torch.float32).view(1, b, n_tok, 1).expand(k, b, n_tok, 1)
    edited = rb.unsqueeze(0).to(torch.float32).repeat(k, 1, 1, 1)
    edited.scatter_add_(-1, chunk_t.view(k, 1, 1, 1).expand(k, b, n_tok, 1), add.contiguous())
    return edited


class _SweepColumns:
    """The per-unit results of a sweep, filled chunk by chunk from Δ_f(v)."""

    def __init__(
        self, n: int, n_vocab: int, vocabulary: Sequence[str], promote_words: Sequence[str]
    ) -> None:
        self.vocabulary = list(vocabulary)
        self.S = np.zeros(n)
        self.P = np.zeros(n)
        self.top = np.empty(n, dtype=object)
        self.k_top = min(5, n_vocab)
        self.top_w = np.zeros((n, self.k_top), dtype=np.int64)
        self.top_d = np.zeros((n, self.k_top))
        self.prom = {w: np.zeros(n) for w in promote_words}
        self.word_idx = {w: self.vocabulary.index(w) for w in promote_words}

    def record(self, sl: slice, delta_v: Any) -> None:
        """Steerability, power, top concepts and promoted words of the units in `sl`."""
        self.S[sl] = (delta_v**2).sum(-1).cpu().numpy()
        pv, pi = delta_v.max(-1)
        self.P[sl] = pv.cpu().numpy()
        self.top[sl] = [self.vocabulary[int(i)] for i in pi.cpu().tolist()]
        tv, ti = delta_v.topk(self.k_top, dim=-1)
        self.top_w[sl] = ti.cpu().numpy()
        self.top_d[sl] = tv.cpu().numpy()
        for w, j in self.word_idx.items():
            self.prom[w][sl] = delta_v[:, j].cpu().numpy()


def _batch_sizes(
    rows_per_batch: int | None, n_img: int, n_tok: int, d: int, device: Any
) -> tuple[int, int]:
    """(images, features) per forward, so that one batch of edited residuals fits the budget."""
    if rows_per_batch is None:
        budget = (1 << 28) if device.type != "cpu" else (1 << 24)
        rows_per_batch = max(1, budget // max(1, n_tok * d))
    img_bs = min(n_img, rows_per_batch)
    return img_bs, max(1, rows_per_batch // img_bs)


def sweep(
    handle: Any,
    layer: int,
    site: str,
    pixels: Any,
    vocab_emb: Any,
    vocabulary: Sequence[str],
    *,
    sae: Any | None = None,
    match_sae: Any | None = None,
    units: Sequence[int] | np.ndarray | None = None,
    cfg: SteerabilityConfig = SteerabilityConfig(),
    promote_words: Sequence[str] = (),
    rows_per_batch: int | None = None,
    precision: str = "auto",
    progress: Any = None,
    on_chunk: Callable[[int], None] | None = None,
) -> SteerabilityResult:
    """Steerability of SAE features (`sae` given) or of site coordinates (neuron baseline).

    `pixels` are the N preprocessed images [N, 3, H, W]; `vocab_emb` the [V, E] normalised
    word embeddings of `vocabulary`. With `cfg.push == "matched"` (neurons only) `match_sae`
    is the SAE whose clamp the neuron push matches (module docstring).
    """
    import torch

    from steerlang.model.sites import token_mask

    runner = SuffixRunner(handle, layer, site)
    device = pixels.device
    with torch.inference_mode():
        h, resid = runner.prepare(pixels)
        n_img, n_tok, d = h.shape
        n_units = sae.d_sae if sae is not None else d
        ids = np.arange(n_units) if units is None else np.asarray(units, dtype=np.int64)
        if ids.size and (ids.min() < 0 or ids.max() >= n_units):
            raise SteerabilityError(f"unit ids must lie in 0..{n_units - 1}")
        T = vocab_emb.to(device=device, dtype=torch.float32)
        scale = float(cfg.logit_scale)
        s = float(cfg.strength)
        tok = token_mask(cfg.tokens if cfg.tokens != "all" else "all", n_tok, device)
        tok_f = tok.to(torch.float32).view(1, n_tok, 1)
        img_bs, feat_bs = _batch_sizes(rows_per_batch, n_img, n_tok, d, device)

        def readout(resid_batch: Any) -> Any:
            with _autocast(device, precision):
                e = runner.run(resid_batch)
            return torch.softmax(scale * (e.float() @ T.T), dim=-1)

        p0 = torch.zeros(T.shape[0], dtype=torch.float64, device=device)
        for lo in range(0, n_img, img_bs):
            p0 += readout(resid[lo : lo + img_bs]).sum(0, dtype=torch.float64)
        p0 /= n_img

        edit = _SaeEdit.prepare(sae, h, device) if sae is not None else None
        # Under torchrun each rank sweeps a contiguous share of the units; gathered below.
        from steerlang.pipeline.distributed import gather_rows, shard

        all_ids, ids = ids, shard(ids)
        push = None
        if sae is None and cfg.push == "matched":
            if match_sae is None:
                raise SteerabilityError("a push-matched neuron sweep needs the SAE it matches")
            push = matched_push_norms(match_sae, h, s, tok_f, device)  # [N, T]
        out = _SweepColumns(len(ids), T.shape[0], vocabulary, promote_words)
        task = (
            progress.add_task(f"steerability L{layer} {site}", total=len(ids)) if progress else None
        )
        for c0 in range(0, len(ids), feat_bs):
            chunk = ids[c0 : c0 + feat_bs]
            k = len(chunk)
            ps = torch.zeros(k, T.shape[0], dtype=torch.float64, device=device)
            chunk_t = torch.as_tensor(chunk, dtype=torch.long, device=device)
            for lo in range(0, n_img, img_bs):
                hb = h[lo : lo + img_bs]
                rb = resid[lo : lo + img_bs]
                b = hb.shape[0]
                if edit is not None:
                    edited = edit.edited(hb, rb, lo, chunk_t, s, tok_f, device)
                elif push is not None:
                    edited = _neuron_pushed(rb, chunk_t, push[lo : lo + b])
                else:
                    edited = _neuron_edited(hb, rb, chunk_t, s, tok_f)
                pr = readout(edited.reshape(k * b, n_tok, d).to(rb.dtype))
                ps += pr.view(k, b, -1).sum(1, dtype=torch.float64)
                del edited
            out.record(slice(c0, c0 + k), ps / n_img - p0.unsqueeze(0))  # Δ_f(v), [k, V]
            if progress is not None and task is not None:
                progress.advance(task, k)
            if on_chunk is not None:
                on_chunk(k)

    cols = gather_rows(
        {"S": out.S, "P": out.P, "top": out.top, "top_w": out.top_w, "top_d": out.top_d}
        | {f"promotes:{w}": v for w, v in out.prom.items()}
    )
    return SteerabilityResult(
        kind="sae" if sae is not None else "neuron",
        units=all_ids,
        steerability=cols["S"],
        power=cols["P"],
        top_concept=cols["top"],
        promotes={w: cols[f"promotes:{w}"] for w in out.prom},
        top_words=cols["top_w"],
        top_deltas=cols["top_d"],
        vocabulary=list(vocabulary),
        threshold=float(cfg.threshold),
        strength=s,
        n_images=n_img,
        logit_scale=scale,
        logit_scale_source=cfg.logit_scale_source,
        push="clamp" if sae is not None else cfg.push,
    )


def steer_cache_key(
    *,
    model_hash: str,
    sae_hash: str | None,
    layer: int,
    site: str,
    images: Mapping[str, Any],
    preprocess: str,
    vocabulary: Sequence[str],
    units: np.ndarray,
    cfg: SteerabilityConfig,
    promote_words: Sequence[str],
) -> str:
    """Content key of one sweep (the threshold is applied at read time, so it is not in it)."""
    import hashlib

    from steerlang.files import content_key

    vocab_hash = hashlib.sha256("\n".join(vocabulary).encode()).hexdigest()
    units_hash = hashlib.sha256(np.asarray(units, dtype=np.int64).tobytes()).hexdigest()
    return content_key(
        {
            "v": STEER_FORMAT_VERSION,
            "model": model_hash,
            "sae": sae_hash,
            "layer": layer,
            "site": site,
            "images": dict(images),
            "preprocess": preprocess,
            "vocab": vocab_hash,
            "units": units_hash,
            "cfg": cfg.key(),
            "promotes": sorted(promote_words),
        },
        prefix="steer-",
    )
