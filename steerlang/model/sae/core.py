"""The one in-memory SAE every loader converts to, and every hook, statistic and trainer uses.

Activations multiply on the right (`x @ W_enc`, `a @ W_dec`), so row i of `W_dec` is feature
i's direction (docs/runtime.md, "The canonical SAE"). Every file format (ours, SAELens,
ViT-Prisma) is read into this canonical form (`SAEParts`) and assembled by
`steerlang.model.sae.load`, so the encode/decode maths lives here exactly once.

Normalisation is part of the SAE, not of the caller: `encode` takes *raw* site activations and
`decode` returns raw-space reconstructions. The per-token context (`NormCtx`) produced while
normalising is what lets a feature-space delta be mapped back to a residual delta
(`denormalize_delta`) without touching the decoder bias, which cancels in h + dec(a') - dec(a).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import Tensor, nn

from steerlang.errors import CheckpointError, validation_summary
from steerlang.facts import SiteKind

SAE_SCHEMA_VERSION = 1  # of `SAEConfig` as our own format stores it
# ViT-Prisma / SAELens `layer_norm` epsilon: added to the std (not the variance) when
# normalising; both libraries undo the normalisation with the bare std (no epsilon), and so do we.
LN_EPS = 1e-5

Activation = Literal["relu", "topk", "jumprelu"]
InputNorm = Literal["none", "scalar", "per_token_ln", "constant_norm_rescale"]
TokenKind = Literal["all", "cls", "patches"]

_DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "float64": torch.float64,
}


def parse_dtype(name: str | torch.dtype) -> torch.dtype:
    """Accept 'float32', 'torch.float32', 'fp32', 'bf16', ... as written by the common tools."""
    if isinstance(name, torch.dtype):
        return name
    key = str(name).removeprefix("torch.").lower()
    key = {"fp32": "float32", "fp16": "float16", "half": "float16", "bf16": "bfloat16"}.get(
        key, key
    )
    key = {"float": "float32", "double": "float64"}.get(key, key)
    if key not in _DTYPES:
        raise CheckpointError(
            f"unsupported SAE dtype {name!r}", help=f"use one of {', '.join(_DTYPES)}"
        )
    return _DTYPES[key]


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


class SAEHook(BaseModel):
    """Where the SAE was trained: compared against the plan's site at compile/bind time."""

    model_config = ConfigDict(extra="forbid")

    layer: int | None = None
    site: SiteKind = "resid_post"
    tokens: TokenKind = "all"
    model: str | None = None

    @property
    def hook_name(self) -> str | None:
        return None if self.layer is None else f"blocks.{self.layer}.hook_{self.site}"


class SAEConfig(BaseModel):
    """Everything besides the tensors that is needed to reproduce `encode`/`decode` exactly."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int = SAE_SCHEMA_VERSION
    d_in: int = Field(gt=0)
    d_sae: int = Field(gt=0)
    activation: Activation = "relu"
    k: int | None = None  # topk: active latents per token
    pre_center: bool = False  # subtract b_dec from the (normalised) input before encoding
    input_norm: InputNorm = "none"
    norm_scale: float = 1.0  # input_norm == "scalar": x_norm = x * norm_scale
    hook: SAEHook = Field(default_factory=SAEHook)
    dtype: str = "float32"
    metadata: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> SAEConfig:
        if self.activation == "topk":
            if self.k is None or not (0 < self.k <= self.d_sae):
                raise ValueError(f"topk SAE needs 0 < k <= d_sae, got k={self.k}")
        try:
            parse_dtype(self.dtype)
        except CheckpointError as e:
            raise ValueError(e.message) from None
        if not math.isfinite(self.norm_scale) or self.norm_scale <= 0:
            raise ValueError(f"norm_scale must be finite and > 0, got {self.norm_scale}")
        return self

    @property
    def torch_dtype(self) -> torch.dtype:
        return parse_dtype(self.dtype)

    def core_dict(self) -> dict[str, Any]:
        """Fields that change the maths (hashing ignores metadata such as training metrics)."""
        d = self.model_dump(exclude={"metadata", "schema_version"})
        return d


@dataclass
class NormCtx:
    """Per-token quantities saved while normalising, needed to map deltas back to raw space.

    `scale` multiplies a normalised-space vector to give raw space (shape [..., 1] or scalar);
    `shift` is added after scaling when mapping full reconstructions (per_token_ln mean).
    """

    scale: Tensor | float = 1.0
    shift: Tensor | None = None


class SAE(nn.Module):
    """Canonical SAE: W_enc [d, M], b_enc [M], W_dec [M, d], b_dec [d], threshold [M]."""

    def __init__(self, cfg: SAEConfig, *, device: str | torch.device = "cpu") -> None:
        super().__init__()
        self.cfg = cfg
        d, m = cfg.d_in, cfg.d_sae
        dt = cfg.torch_dtype
        self.W_enc = nn.Parameter(torch.zeros(d, m, dtype=dt, device=device))
        self.b_enc = nn.Parameter(torch.zeros(m, dtype=dt, device=device))
        self.W_dec = nn.Parameter(torch.zeros(m, d, dtype=dt, device=device))
        self.b_dec = nn.Parameter(torch.zeros(d, dtype=dt, device=device))
        if cfg.activation == "jumprelu":
            self.threshold = nn.Parameter(torch.zeros(m, dtype=dt, device=device))
        else:
            self.threshold = None
        self._hash_cache: tuple[tuple[int, ...], str] | None = None

    # ---------------------------------------------------------------- construction helpers

    @classmethod
    def random(
        cls,
        cfg: SAEConfig,
        *,
        seed: int = 0,
        device: str | torch.device = "cpu",
        threshold: float = 0.0,
    ) -> SAE:
        """A randomly initialised SAE (tied init, unit-norm decoder rows) for tests/benchmarks
        and as the starting point of training."""
        sae = cls(cfg, device=device)
        g = torch.Generator(device="cpu").manual_seed(seed)
        w = torch.randn(cfg.d_sae, cfg.d_in, generator=g)
        w = w / w.norm(dim=1, keepdim=True)
        with torch.no_grad():
            sae.W_dec.copy_(w)
            sae.W_enc.copy_(w.t())
            sae.b_enc.copy_(0.1 * torch.randn(cfg.d_sae, generator=g))
            sae.b_dec.copy_(0.1 * torch.randn(cfg.d_in, generator=g))
            if sae.threshold is not None:
                sae.threshold.fill_(threshold)
        return sae

    @property
    def d_in(self) -> int:
        return self.cfg.d_in

    @property
    def d_sae(self) -> int:
        return self.cfg.d_sae

    @property
    def device(self) -> torch.device:
        return self.W_enc.device

    @property
    def dtype(self) -> torch.dtype:
        return self.W_enc.dtype

    # ---------------------------------------------------------------- normalisation

    def normalize(self, x: Tensor) -> tuple[Tensor, NormCtx]:
        """Raw site activations -> the space the SAE was trained in, plus the context to undo it."""
        mode = self.cfg.input_norm
        if mode == "none":
            return x, NormCtx()
        if mode == "scalar":
            s = self.cfg.norm_scale
            return x * s, NormCtx(scale=1.0 / s)
        if mode == "per_token_ln":
            mu = x.mean(dim=-1, keepdim=True)
            xc = x - mu
            std = xc.std(dim=-1, keepdim=True)
            return xc / (std + LN_EPS), NormCtx(scale=std, shift=mu)
        if mode == "constant_norm_rescale":
            norm = x.norm(dim=-1, keepdim=True) / math.sqrt(self.cfg.d_in)
            # A zero token stays zero and its deltas are scaled by 0, as in SAELens' formula.
            inv = torch.where(norm > 0, 1.0 / norm, torch.zeros_like(norm))
            return x * inv, NormCtx(scale=norm)
        raise AssertionError(mode)

    def denormalize(self, x_hat: Tensor, ctx: NormCtx) -> Tensor:
        out = x_hat * ctx.scale if not _is_one(ctx.scale) else x_hat
        if ctx.shift is not None:
            out = out + ctx.shift
        return out

    def denormalize_delta(self, delta: Tensor, ctx: NormCtx) -> Tensor:
        """A normalised-space difference of reconstructions -> raw-space difference (no shift)."""
        return delta * ctx.scale if not _is_one(ctx.scale) else delta

    # ---------------------------------------------------------------- encode / decode

    def _centered(self, x: Tensor) -> tuple[Tensor, NormCtx]:
        xn, ctx = self.normalize(x.to(self.dtype))
        if self.cfg.pre_center:
            xn = xn - self.b_dec
        return xn, ctx

    def pre_activation(self, x: Tensor) -> Tensor:
        xc, _ = self._centered(x)
        return xc @ self.W_enc + self.b_enc

    def activate(self, pre: Tensor) -> Tensor:
        """Latent activations from pre-activations [..., M] (all latents)."""
        act = self.cfg.activation
        if act == "relu":
            return torch.relu(pre)
        if act == "jumprelu":
            assert self.threshold is not None
            return torch.relu(pre) * (pre > self.threshold).to(pre.dtype)
        if act == "topk":
            k = int(self.cfg.k or 0)
            vals, idx = torch.topk(pre, k, dim=-1, sorted=False)
            return torch.zeros_like(pre).scatter_(-1, idx, torch.relu(vals))
        raise AssertionError(act)

    def encode(self, x: Tensor) -> Tensor:
        """Raw activations [..., d] -> latents [..., M] (input norm and pre-centring applied)."""
        return self.activate(self.pre_activation(x))

    def encode_with_ctx(self, x: Tensor) -> tuple[Tensor, NormCtx]:
        xc, ctx = self._centered(x)
        return self.activate(xc @ self.W_enc + self.b_enc), ctx

    def decode(self, a: Tensor, ctx: NormCtx | None = None) -> Tensor:
        """Latents -> raw-space reconstruction. `ctx` comes from `normalize`/`encode_with_ctx`
        on the same tokens; it is required for per-token normalisations."""
        x_hat = a.to(self.dtype) @ self.W_dec + self.b_dec
        if self.cfg.input_norm == "none":
            return x_hat
        if ctx is None:
            if self.cfg.input_norm == "scalar":
                ctx = NormCtx(scale=1.0 / self.cfg.norm_scale)
            else:
                raise ValueError(
                    f"decode of a {self.cfg.input_norm} SAE needs the NormCtx of its input tokens"
                )
        return self.denormalize(x_hat, ctx)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x -> (x_hat in raw space, latents)."""
        a, ctx = self.encode_with_ctx(x)
        return self.decode(a, ctx), a

    # ---------------------------------------------------------------- sparse helpers

    def encode_subset(self, x: Tensor, idx: Tensor | list[int]) -> Tensor:
        """Activations of the latents `idx` only: [..., len(idx)].

        Exact and cheap for ReLU/JumpReLU (only those encoder columns are touched); TopK needs
        the full encode to know each latent's rank, so it encodes everything and gathers.
        """
        idx_t = torch.as_tensor(idx, dtype=torch.long, device=self.device)
        if self.cfg.activation == "topk":
            return self.encode(x).index_select(-1, idx_t)
        xc, _ = self._centered(x)
        pre = xc @ self.W_enc.index_select(1, idx_t) + self.b_enc.index_select(0, idx_t)
        out = torch.relu(pre)
        if self.cfg.activation == "jumprelu":
            assert self.threshold is not None
            out = out * (pre > self.threshold.index_select(0, idx_t)).to(pre.dtype)
        return out

    def decode_delta(
        self, delta_a: Tensor, idx: Tensor | list[int], ctx: NormCtx | None = None
    ) -> Tensor:
        """Raw-space Δh = denorm(Σ_f delta_a_f · W_dec[f]) for the latents `idx` (b_dec cancels)."""
        idx_t = torch.as_tensor(idx, dtype=torch.long, device=self.device)
        d = delta_a.to(self.dtype) @ self.W_dec.index_select(0, idx_t)
        if ctx is None:
            if self.cfg.input_norm in ("per_token_ln", "constant_norm_rescale"):
                raise ValueError("decode_delta of a per-token-normalised SAE needs its NormCtx")
            ctx = (
                NormCtx(scale=1.0 / self.cfg.norm_scale)
                if self.cfg.input_norm == "scalar"
                else NormCtx()
            )
        return self.denormalize_delta(d, ctx)

    # ---------------------------------------------------------------- training helpers

    @torch.no_grad()
    def normalize_decoder_(self) -> Tensor:
        """Rescale decoder rows to unit norm in place; returns the old norms [M].

        Encoder columns, b_enc and the threshold are rescaled by the same norms so the SAE's
        function (x -> x_hat) is unchanged for ReLU/JumpReLU; TopK rankings may change.
        """
        norms = self.W_dec.norm(dim=1)
        safe = torch.where(norms > 0, norms, torch.ones_like(norms))
        self.W_dec.div_(safe[:, None])
        self.W_enc.mul_(safe[None, :])
        self.b_enc.mul_(safe)
        if self.threshold is not None:
            self.threshold.mul_(safe)
        return norms

    # ---------------------------------------------------------------- identity

    def tensors(self) -> dict[str, Tensor]:
        out = {"W_enc": self.W_enc, "b_enc": self.b_enc, "W_dec": self.W_dec, "b_dec": self.b_dec}
        if self.threshold is not None:
            out["threshold"] = self.threshold
        return out

    def content_hash(self) -> str:
        """sha256 over the maths-relevant config and every tensor's name, dtype, shape and bytes.

        Cached until a parameter is modified in place (tracked by tensor version counters).
        """
        tensors = self.tensors()
        versions = tuple(t._version for t in tensors.values()) + (id(self.cfg),)
        if self._hash_cache is not None and self._hash_cache[0] == versions:
            return self._hash_cache[1]
        h = hashlib.sha256()
        h.update(json.dumps(self.cfg.core_dict(), sort_keys=True).encode())
        for name in sorted(tensors):
            t = tensors[name].detach().contiguous().cpu()
            h.update(f"{name}|{dtype_name(t.dtype)}|{list(t.shape)}|".encode())
            h.update(_tensor_bytes(t))
        digest = "sha256:" + h.hexdigest()
        self._hash_cache = (versions, digest)
        return digest


def _is_one(x: Tensor | float) -> bool:
    return isinstance(x, float | int) and x == 1.0


def _tensor_bytes(t: Tensor) -> bytes:
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    return t.numpy().tobytes()


def checked_config(source: Path, **fields: Any) -> SAEConfig:
    """`SAEConfig(**fields)` with a validation failure turned into a CheckpointError naming the
    file and each bad field (a format reader's config is user input)."""
    try:
        return SAEConfig(**fields)
    except ValueError as e:  # pydantic's ValidationError is a ValueError
        raise CheckpointError(
            validation_summary(e, f"{source}: invalid SAE config")
            if hasattr(e, "errors")
            else f"{source}: invalid SAE config: {e}",
            help="fix the named keys in the config file so they match the weights",
        ) from None


@dataclass(frozen=True)
class SAEParts:
    """What a format reader hands back: the config and the canonical tensors, already oriented
    and validated against it (`steerlang.model.sae.tensors.validate_tensors`).

    `claimed_hash` is the content hash the files record (our format), checked once the SAE is
    built; `source` names the folder in errors.
    """

    cfg: SAEConfig
    tensors: dict[str, Tensor]
    source: Path
    claimed_hash: str | None = None


def build_sae(
    cfg: SAEConfig, tensors: dict[str, Tensor], *, device: str | torch.device = "cpu"
) -> SAE:
    """Assemble an SAE from canonical tensors (already oriented); shapes must match `cfg`."""
    sae = SAE(cfg, device="meta")
    dt = cfg.torch_dtype
    params: dict[str, Tensor] = {}
    for name in ("W_enc", "b_enc", "W_dec", "b_dec") + (
        ("threshold",) if cfg.activation == "jumprelu" else ()
    ):
        params[name] = tensors[name].to(device=device, dtype=dt)
    for name, t in params.items():
        setattr(sae, name, nn.Parameter(t.contiguous(), requires_grad=True))
    return sae
