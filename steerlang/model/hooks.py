"""Execute an InterventionPlan inside an open_clip vision tower through SAE hooks.

Semantics (docs/runtime.md, "Intervention semantics"): at a site with activation h and SAE
(encode, decode), an edit a -> a' replaces h by h + decode(a') - decode(a). The SAE's
reconstruction error is kept, an empty plan installs nothing (bit-identical output), and each
edit moves the output by exactly its own effect. Because the decoder is linear the delta needs only the edited latents:

    Δh = denorm( Σ_f (a'_f - a_f) · W_dec[f] )        (b_dec cancels)

`a_f` of a ReLU/JumpReLU latent depends only on its own encoder column, so the fast path costs
two small matmuls per token ([d]x[d,K] and [K]x[K,d]). A TopK latent's activation depends on its
rank among all latents, so TopK needs the full pre-activation (only for tokens where an edited
latent is positive: a non-positive pre-activation can never be an active TopK latent) plus a
k-th-value threshold, and still decodes sparsely.

Every edit is an affine map a' = α·a + β on its token scope (suppress α=0,β=0; clamp α=0,β=v;
scale α=k,β=0; add α=1,β=v; mean_ablate α=0,β=μ). Edits of one site compose in plan order into
per-(token, latent) tables, so one hook per site applies all rules with one multiply-add:
Δa = a·(A-1) + B.
"""

from __future__ import annotations

import copy
import math
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor
from torch.utils.hooks import RemovableHandle

from steerlang.errors import SteerError
from steerlang.model.sae.core import LN_EPS, SAE
from steerlang.model.sites import add_site_hook, parse_site, resolve_visual, token_mask
from steerlang.model.towers import scope_for, tower_of
from steerlang.plan import FeatureEdit, InterventionPlan, SitePlan

Mode = Literal["fast", "full"]
SaeKey = tuple[int, str]

# The largest finite float32: hooks compute in fp32, so an edit value (or the activation change
# it causes) beyond it can only produce inf, then NaN, in every later layer.
F32_MAX = float(torch.finfo(torch.float32).max)


def _affine(edit: FeatureEdit, where: str) -> tuple[float, float]:
    op, v = edit.op, edit.value
    if op == "suppress":
        return 0.0, 0.0
    if v is None:
        need = "the feature's mean on the statistics split" if op == "mean_ablate" else "a value"
        raise SteerError(
            f"{where}: {op} of feature {edit.feature} (rule {edit.rule}) has no value",
            help=f"{op} needs {need}; re-run selection to fill it",
        )
    if not math.isfinite(v) or abs(v) > F32_MAX:
        raise SteerError(
            f"{where}: {op} of feature {edit.feature} (rule {edit.rule}) with value {v:g} is "
            f"outside float32's range (±{F32_MAX:.3g}); the steered activations would be "
            "inf or NaN",
            help=(
                "the feature's mean in the statistics is not finite: delete the statistics "
                "cache entry (or run with --no-cache) to recompute it"
                if op == "mean_ablate"
                else f"use a finite {op} value well below {F32_MAX:.3g} (activations are "
                "usually below 1e3)"
            ),
        )
    if op == "clamp" or op == "mean_ablate":
        return 0.0, float(v)
    if op == "scale":
        return float(v), 0.0
    if op == "add":
        return 1.0, float(v)
    raise SteerError(f"{where}: unknown operation {op!r}")


@dataclass
class _FullEncoder:
    sae32: SAE  # fp32 copy on the model's device (the caller's SAE is never moved)
    W_enc: Tensor
    b_enc: Tensor
    b_dec: Tensor
    fp16_safe: bool  # every pre-activation provably fits in fp16 (bounded input norm)
    ranked: dict[torch.dtype, tuple[Tensor, Tensor]] = field(default_factory=dict)

    def rank_weights(self, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        """(W_enc, b_enc) in the dtype the TopK ranking runs in (cached per dtype)."""
        hit = self.ranked.get(dtype)
        if hit is None:
            with torch.inference_mode(False), torch.no_grad():
                hit = (self.W_enc.to(dtype), self.b_enc.to(dtype))
            self.ranked[dtype] = hit
        return hit


_FULL_CACHE: weakref.WeakKeyDictionary[SAE, dict[tuple[Any, ...], _FullEncoder]] = (
    weakref.WeakKeyDictionary()
)


def _full_encoder(sae: SAE, device: torch.device) -> _FullEncoder:
    """fp32 encoder of `sae` on `device`, cached per SAE object until a parameter changes in
    place, so installing hooks once per batch (as the steerability sweep does) is cheap."""
    tensors = sae.tensors()
    key = (str(device),) + tuple((t.data_ptr(), t._version) for t in tensors.values())
    per_sae = _FULL_CACHE.setdefault(sae, {})
    hit = per_sae.get(key)
    if hit is not None:
        return hit
    f32 = torch.float32
    # Normal (not inference-mode) tensors: the cache outlives the block that filled it.
    with torch.inference_mode(False), torch.no_grad():
        sae32 = (
            sae
            if sae.dtype == f32 and sae.device == device
            else copy.deepcopy(sae).to(device=device, dtype=f32)
        )
        w = sae32.W_enc.detach()
        b_enc, b_dec = sae32.b_enc.detach(), sae32.b_dec.detach()
        fp16_safe = False
        if sae.cfg.input_norm in ("per_token_ln", "constant_norm_rescale"):
            # ‖x̃‖ <= √d for both norms, so |pre_j| <= (√d + ‖b_dec‖)·‖W_j‖ + |b_j|.
            x_norm = sae.cfg.d_in**0.5 + (float(b_dec.norm()) if sae.cfg.pre_center else 0.0)
            bound = x_norm * float(w.norm(dim=0).max()) + float(b_enc.abs().max())
            fp16_safe = bound < 3.0e4
    out = _FullEncoder(sae32, w, b_enc, b_dec, fp16_safe)
    per_sae.clear()  # keep only the current version of the weights
    per_sae[key] = out
    return out


class SiteEditor:
    """All edits of one (layer, site), prepared once per hook install.

    Tensors the hook needs (the K edited encoder columns and decoder rows, in fp32 on the model's
    device) are gathered here, and the per-sequence-length affine tables are cached, so a forward
    pass does no Python work per feature.
    """

    def __init__(
        self,
        site: SitePlan,
        edits: list[FeatureEdit],
        sae: SAE,
        *,
        mode: Mode,
        device: torch.device,
        n_tokens: int | None,
    ) -> None:
        self.where = f"site blocks.{site.layer}.hook_{site.site}"
        self.mode = mode
        self.error_mode = site.error_mode
        self.sae = sae
        self.cfg = sae.cfg
        self.device = device
        d_sae = sae.cfg.d_sae
        bad = sorted({e.feature for e in edits if not 0 <= e.feature < d_sae})
        if bad:
            raise SteerError(
                f"{self.where}: feature ids {bad[:10]} are out of range for an SAE with "
                f"{d_sae} latents",
                help="the plan was made for a different SAE; recompile it against this one",
            )
        feats: dict[int, int] = {}
        for e in edits:
            feats.setdefault(e.feature, len(feats))
        self.features = list(feats)
        self.k = len(self.features)
        # Ordered (column, alpha, beta, token scope); validated now so a bad plan fails before
        # the forward pass rather than inside it.
        self.steps = [(feats[e.feature], *_affine(e, self.where), e.tokens) for e in edits]
        if n_tokens is not None:
            for _, _, _, tokens in self.steps:
                token_mask(tokens, n_tokens)
        self.needs_a = any(a != 1.0 for _, a, _, _ in self.steps) or self.error_mode != (
            "preserve_error"
        )
        self._tables: dict[int, tuple[Tensor, Tensor, Tensor | None]] = {}
        self._autocast = False

        idx = torch.tensor(self.features, dtype=torch.long, device=sae.device)
        f32 = torch.float32
        with torch.no_grad():
            self.idx = idx.to(device)
            self.W_sub = sae.W_enc.index_select(1, idx).to(device, f32).contiguous()
            self.b_sub = sae.b_enc.index_select(0, idx).to(device, f32)
            self.D_sub = sae.W_dec.index_select(0, idx).to(device, f32).contiguous()
            self.b_dec = sae.b_dec.to(device, f32)
            self.thr_sub = (
                sae.threshold.index_select(0, idx).to(device, f32)
                if sae.threshold is not None
                else None
            )
            self._check_delta_range(edits)
            self.topk = sae.cfg.activation == "topk"
            self.topk_k = int(sae.cfg.k or 0)
            # Normalisation folded into the encoder: with x̃ = (x - shift)·inv and pre-centring,
            # pre = (x·W - shift·colsum(W))·inv + (b_enc - b_dec·W), so the hook never builds
            # x̃ ([T, d]); it needs one matmul on raw x and [T, 1] statistics.
            pc = bool(sae.cfg.pre_center)
            self.csum_sub = self.W_sub.sum(0)
            self.bias_sub = self.b_sub - (self.b_dec @ self.W_sub if pc else 0.0)
            if self.topk or mode == "full" or self.error_mode != "preserve_error":
                self.enc = _full_encoder(sae, device)
                self.sae32 = self.enc.sae32

        if n_tokens is not None:
            # Build the affine tables now (host work + uploads), so the first steered forward
            # costs the same as every later one.
            self.tables(n_tokens)

    def _check_delta_range(self, edits: list[FeatureEdit]) -> None:
        """Reject an edit whose own activation change |β|·‖d_f‖ (in raw units, for
        normalisations with a fixed scale) cannot be represented in float32: it would turn
        the site's output into inf before the forward pass could say which rule did it."""
        norms = self.D_sub.double().norm(dim=1).tolist()
        scale = 1.0
        if self.cfg.input_norm == "scalar":
            scale = 1.0 / float(self.cfg.norm_scale)
        elif self.cfg.input_norm != "none":
            return  # the scale depends on each token's norm: the forward-pass check covers it
        for e, (col, _, beta, _) in zip(edits, self.steps, strict=True):
            factor = norms[col] * scale
            moved = abs(beta) * factor
            if moved > F32_MAX:
                how = f"the decoder row's norm {norms[col]:.3g}"
                if scale != 1.0:
                    how += f" times the SAE's output scale {scale:.3g}"
                raise SteerError(
                    f"{self.where}: {e.op} of feature {e.feature} (rule {e.rule}) with value "
                    f"{e.value:g} moves the activation by {moved:.3g} (the value times {how}), "
                    f"beyond float32's range (±{F32_MAX:.3g})",
                    help=f"use a smaller {e.op} value (far below {F32_MAX / factor:.3g}; "
                    "activations are usually below 1e3)",
                )

    # ------------------------------------------------------------------ tables

    def tables(self, n_tokens: int) -> tuple[Tensor, Tensor, Tensor | None]:
        """(A-1, B) as [L, K] fp32, and the token rows any edit touches (None = all)."""
        cached = self._tables.get(n_tokens)
        if cached is not None:
            return cached
        A = torch.ones(n_tokens, self.k, dtype=torch.float64)
        B = torch.zeros(n_tokens, self.k, dtype=torch.float64)
        touched = torch.zeros(n_tokens, dtype=torch.bool)
        for col, alpha, beta, tokens in self.steps:
            m = token_mask(tokens, n_tokens)
            touched |= m
            A[m, col] = alpha * A[m, col]
            B[m, col] = alpha * B[m, col] + beta
        rows = None
        if not bool(touched.all()):
            rows_cpu = touched.nonzero().flatten()
            A, B = A[rows_cpu], B[rows_cpu]
            rows = rows_cpu.to(self.device)
        am1 = (A - 1.0).to(self.device, torch.float32)
        out = (am1, B.to(self.device, torch.float32), rows)
        self._tables[n_tokens] = out
        return out

    # ------------------------------------------------------------------ maths

    def _norm_stats(self, x: Tensor) -> tuple[Tensor | None, Tensor | float, Tensor | float]:
        """(shift, inv, back) with x̃ = (x - shift)·inv and raw delta = normalised delta·back.

        Mirrors `SAE.normalize` (std is the unbiased one; eps added to it when normalising, not
        when mapping back, as Prisma/SAELens).
        """
        mode = self.cfg.input_norm
        if mode == "none":
            return None, 1.0, 1.0
        if mode == "scalar":
            return None, self.cfg.norm_scale, 1.0 / self.cfg.norm_scale
        if mode == "per_token_ln":
            std, mu = torch.std_mean(x, dim=-1, keepdim=True)
            return mu, 1.0 / (std + LN_EPS), std
        norm = x.norm(dim=-1, keepdim=True) / (self.cfg.d_in**0.5)
        inv = torch.where(norm > 0, 1.0 / norm, torch.zeros_like(norm))
        return None, inv, norm

    @staticmethod
    def _pre(
        x: Tensor, w: Tensor, csum: Tensor, bias: Tensor, shift: Tensor | None, inv: Tensor | float
    ) -> Tensor:
        """Pre-activations of the columns of `w` from raw x (normalisation folded in)."""
        p = x @ w
        if shift is not None:
            p = p - shift * csum
        if isinstance(inv, Tensor):
            p = torch.addcmul(bias, p, inv)
        elif inv != 1.0:
            p = torch.add(bias, p, alpha=inv)
        else:
            p = p + bias
        return p

    def _topk_member(self, full: Tensor, sub: Tensor) -> Tensor:
        """Exactly: is each edited latent (values `sub` [R, K], taken from `full` [R, M]) among
        the k largest of its row? Avoids a full torch.topk (the slow part of TopK on GPUs):

        the k largest of the group maxima are k distinct elements, so their minimum L is a lower
        bound of the k-th largest value τ. A latent below L is out; for the few at or above L
        the rank is counted directly (#strictly greater < k).
        """
        r, m = full.shape
        k = self.topk_k
        g = 64
        if m % g or m // g < 2 * k:
            tau = torch.topk(full, k, dim=-1, sorted=False).values.amin(-1, keepdim=True)
            return sub >= tau
        gmax = full.view(r, m // g, g).amax(-1)
        low = torch.topk(gmax, k, dim=-1, sorted=False).values.amin(-1, keepdim=True)
        member = torch.zeros_like(sub, dtype=torch.bool)
        pairs = (sub >= low).nonzero()
        for chunk in pairs.split(4096):
            rows, cols = chunk[:, 0], chunk[:, 1]
            vals = sub[rows, cols]
            greater = (full.index_select(0, rows) > vals[:, None]).sum(-1)
            member[rows, cols] = greater < k
        return member

    def _edited_acts(
        self, x: Tensor, shift: Tensor | None, inv: Tensor | float, used: Tensor | None
    ) -> Tensor:
        """Activations [T, K] of the edited latents from raw x [T, d], exact for every
        architecture. `used` [T, K] marks where the activation matters (A != 1); elsewhere the
        delta is B whatever a is, so TopK may skip those tokens."""
        pre = self._pre(x, self.W_sub, self.csum_sub, self.bias_sub, shift, inv)
        if not self.topk:
            a = torch.relu(pre)
            if self.thr_sub is not None:
                a = torch.where(pre > self.thr_sub, a, torch.zeros_like(a))
            return a
        # TopK: a latent with pre <= 0 is inactive whatever its rank, so only rows where an
        # edited latent is positive need the full pre-activation.
        a = torch.zeros_like(pre)
        need = pre > 0
        if used is not None:
            need &= used
        rows = need.any(dim=-1).nonzero().flatten()
        if rows.numel() == 0:
            return a
        # The ranking runs in fp32, or under autocast in a 16-bit dtype like the rest of the
        # model (fp16 when every pre-activation provably fits: finer than bf16, fewer ties at
        # the k-th value); activation values and the delta stay fp32.
        rank_dtype = torch.float32
        if self._autocast:
            rank_dtype = torch.float16 if self.enc.fp16_safe else torch.bfloat16
        w_r, b_r = self.enc.rank_weights(rank_dtype)
        for chunk in rows.split(4096):  # bounds the [rows, M] buffer
            xr = x.index_select(0, chunk)
            if shift is not None:
                xr = xr - shift.index_select(0, chunk)
            if isinstance(inv, Tensor):
                xr = xr * inv.index_select(0, chunk)
            elif inv != 1.0:
                xr = xr * inv
            if self.cfg.pre_center:
                xr = xr - self.enc.b_dec
            full = torch.addmm(b_r, xr.to(rank_dtype), w_r)  # bias fused into the GEMM
            sub = full.index_select(1, self.idx)
            member = self._topk_member(full, sub)
            exact = pre.index_select(0, chunk)
            a.index_copy_(0, chunk, torch.where(member, torch.relu(exact), torch.zeros_like(exact)))
        return a

    def fast(self, h: Tensor) -> Tensor:
        n, L, d = h.shape
        am1, b, rows = self.tables(L)
        x = h if h.dtype == torch.float32 else h.float()
        xs = x if rows is None else x.index_select(1, rows)
        xt = xs.reshape(-1, d)
        t = xt.shape[0] // n
        shift, inv, back = self._norm_stats(xt)
        if self.needs_a:
            used = None
            if self.topk:
                used = (am1 != 0).unsqueeze(0).expand(n, t, self.k).reshape(-1, self.k)
            a = self._edited_acts(xt, shift, inv, used).view(n, t, self.k)
            da = torch.addcmul(b, a, am1)  # a·(A-1) + B
        else:  # pure `add`: the delta does not depend on the activations
            da = b.expand(n, t, self.k)
        dh = (da.reshape(-1, self.k) @ self.D_sub).view(n, t, d)
        if isinstance(back, Tensor):  # per-token scale back to raw space
            back = back.view(n, t, 1)
            if rows is None:
                out = torch.addcmul(x, dh, back)
            else:
                out = x.index_add(1, rows, dh * back)
        else:
            if back != 1.0:
                dh = dh * back
            out = x + dh if rows is None else x.index_add(1, rows, dh)
        return out if out.dtype == h.dtype else out.to(h.dtype)

    def full(self, h: Tensor) -> Tensor:
        """Naive splice: encode every latent, decode edited and clean, add the error term."""
        n, L, d = h.shape
        am1, b, rows = self.tables(L)
        sae = self.sae32
        x = h.float()
        a, ctx = sae.encode_with_ctx(x)
        a_edit = a.clone()
        sub = a.index_select(-1, self.idx)
        if rows is None:
            new = sub + (sub * am1 + b)
        else:
            new = sub.clone()
            new[:, rows] = sub[:, rows] + (sub[:, rows] * am1 + b)
        a_edit[..., self.idx] = new
        x_hat_edit = sae.decode(a_edit, ctx)
        if self.error_mode == "reconstruct":
            out = x_hat_edit
        else:
            error = x - sae.decode(a, ctx)
            out = x_hat_edit + error
        return out.to(h.dtype)

    def __call__(self, h: Tensor) -> Tensor:
        dev = h.device.type
        self._autocast = torch.is_autocast_enabled(dev)
        if self.mode == "full" or self.error_mode != "preserve_error":
            # The naive splice runs as a user's code would: under the caller's autocast.
            return self.full(h)
        if self._autocast:
            # The delta is computed in fp32 and cast back: bf16 deltas of tiny features vanish.
            with torch.autocast(device_type=dev, enabled=False):
                return self.fast(h)
        return self.fast(h)


@dataclass
class SteerSession:
    """What `steer` installed: one editor and one hook handle per edited site."""

    editors: dict[str, SiteEditor] = field(default_factory=dict)
    handles: list[RemovableHandle] = field(default_factory=list)

    @property
    def n_hooks(self) -> int:
        return len(self.handles)


def _sae_lookup(saes: Mapping[Any, SAE]) -> dict[SaeKey, SAE]:
    out: dict[SaeKey, SAE] = {}
    for key, sae in saes.items():
        ref = parse_site(key)  # (layer, site) tuples, SiteRef or hook names
        out[(ref.layer, ref.site)] = sae
    return out


def _model_device(visual: torch.nn.Module) -> torch.device:
    for p in visual.parameters():
        return p.device
    return torch.device("cpu")


def _n_tokens(visual: torch.nn.Module) -> int | None:
    return tower_of(visual)[1].n_tokens


@contextmanager
def steer(
    model: Any,
    plan: InterventionPlan | Iterable[SitePlan] | None,
    saes: Mapping[Any, SAE],
    *,
    mode: Mode = "fast",
    check_sites: bool = True,
) -> Iterator[SteerSession]:
    """Apply `plan` to `model` (ClipHandle / CLIP / visual) inside the `with` block.

    One hook per (layer, site) with edits (sites without edits and `preserve_error` install
    nothing, so an empty plan is bit-identical). Hooks are removed on every exit path, an
    exception in the forward included, and only the handles installed here are removed, so
    nested and parallel `steer` blocks compose (inner hooks see the outer hooks' output).
    """
    if mode not in ("fast", "full"):
        raise SteerError(f"unknown steering mode {mode!r}", help="use 'fast' or 'full'")
    visual = resolve_visual(model)
    device = _model_device(visual)
    n_tokens = _n_tokens(visual)
    lookup = _sae_lookup(saes)
    sites = list(plan.sites if isinstance(plan, InterventionPlan) else (plan or []))

    merged: dict[SaeKey, tuple[SitePlan, list[FeatureEdit]]] = {}
    for sp in sites:
        key = (sp.layer, sp.site)
        if key in merged:
            merged[key][1].extend(sp.edits)
        else:
            merged[key] = (sp, list(sp.edits))

    session = SteerSession()
    editors: list[tuple[SitePlan, SiteEditor]] = []
    for key, (sp, edits) in merged.items():
        if not edits and sp.error_mode == "preserve_error":
            continue
        sae = lookup.get(key)
        name = f"blocks.{key[0]}.hook_{key[1]}"
        if sae is None:
            raise SteerError(
                f"no SAE given for {name}",
                help=f"pass saes={{({key[0]}, {key[1]!r}): load_sae({sp.sae!r})}}",
            )
        _check_sae(sae, sp, name, check_sites)
        if not tower_of(visual)[1].has_cls:  # no CLS: patches = every token, cls an error
            edits = [e.model_copy(update={"tokens": scope_for(e.tokens, False)}) for e in edits]
        editors.append(
            (sp, SiteEditor(sp, edits, sae, mode=mode, device=device, n_tokens=n_tokens))
        )

    try:
        for sp, ed in editors:
            name = f"blocks.{sp.layer}.hook_{sp.site}"
            session.handles.append(add_site_hook(visual, (sp.layer, sp.site), ed))
            session.editors[name] = ed
        yield session
    finally:
        for h in session.handles:
            h.remove()
        session.handles.clear()


def _check_sae(sae: SAE, sp: SitePlan, name: str, check_sites: bool) -> None:
    if sp.d_sae is not None and sp.d_sae != sae.d_sae:
        raise SteerError(
            f"{name}: the plan was made for an SAE with {sp.d_sae} latents, this one has "
            f"{sae.d_sae}",
            help="recompile the plan against this SAE",
        )
    if sp.sae_hash is not None and sp.sae_hash != sae.content_hash():
        raise SteerError(
            f"{name}: the SAE's content hash {sae.content_hash()} differs from the plan's "
            f"{sp.sae_hash}",
            help="the SAE file changed since the plan was made; recompile the plan",
        )
    hook = sae.cfg.hook
    if check_sites and hook.layer is not None and (hook.layer, hook.site) != (sp.layer, sp.site):
        raise SteerError(
            f"{name}: this SAE was trained on {hook.hook_name}",
            help="use the SAE trained for this site, or pass check_sites=False to force it",
        )


def blame_non_finite(
    model: Any,
    plan: InterventionPlan | Iterable[SitePlan],
    saes: Mapping[Any, SAE],
    forward: Callable[[], Tensor],
    *,
    mode: Mode = "fast",
    what: str = "image embeddings",
) -> SteerError:
    """The error to raise when `forward()` (e.g. encoding one batch) gave non-finite values
    under `plan`: which rule at which site, with which value, is responsible.

    The forward pass is re-run under each (site, rule) group of edits alone, in plan order; the
    first group that alone makes the output non-finite is named, with its largest-magnitude
    value. When no group does it alone, the combination is named. Only called after a failure,
    so the extra passes (one per group, on one batch) cost nothing on a healthy run.
    """
    sites = list(plan.sites if isinstance(plan, InterventionPlan) else plan)
    groups: dict[tuple[int, str, str], tuple[SitePlan, list[FeatureEdit]]] = {}
    for sp in sites:
        for e in sp.edits:
            groups.setdefault((sp.layer, sp.site, e.rule), (sp, []))[1].append(e)

    def value(e: FeatureEdit) -> str:
        return "no value" if e.value is None else f"value {e.value:g}"

    def biggest(edits: list[FeatureEdit]) -> FeatureEdit:
        return max(edits, key=lambda e: abs(e.value) if e.value is not None else 0.0)

    def is_finite(out: Tensor) -> bool:
        return bool(torch.isfinite(out).all())

    for (layer, site, rule), (sp, edits) in groups.items():
        alone = sp.model_copy(update={"edits": edits})
        with torch.inference_mode(), steer(model, [alone], saes, mode=mode):
            ok = is_finite(forward())
        if not ok:
            e = biggest(edits)
            return SteerError(
                f"rule {rule} at blocks.{layer}.hook_{site} makes the steered {what} "
                f"non-finite (inf or NaN): its {e.op} of feature {e.feature} with {value(e)} "
                f"({len(edits)} edit{'s' if len(edits) != 1 else ''} at this site)",
                help="the value overflows float32 inside the model (activations are usually "
                "below 1e3); use a smaller value",
            )
    every = [e for _, edits in groups.values() for e in edits]
    if not every:
        return SteerError(
            f"the steered {what} are non-finite (inf or NaN) though the plan edits nothing",
            help="the SAE's weights hold inf or NaN; check the SAE file",
        )
    e = biggest(every)
    where = ", ".join(f"{r} at blocks.{la}.hook_{si}" for la, si, r in groups)
    return SteerError(
        f"the steered {what} are non-finite (inf or NaN) under the rules together ({where}); "
        f"no rule does it alone; the largest value is rule {e.rule}'s {e.op} of feature "
        f"{e.feature} with {value(e)}",
        help="the edits add up beyond float32's range inside the model; use smaller values",
    )
