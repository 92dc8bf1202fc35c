"""SAE training: ReLU + L1 and TopK + AuxK, the recipe of the released CLIP suites, made small.

The choices follow what the released vision SAEs and the literature agree on (docs/training.md §2 lists the released suites' settings):

- the decoder's rows stay unit-norm: after every step they are renormalised (with the encoder
  rescaled so the SAE's function is unchanged), and before every step the gradient component
  parallel to each row is removed, so Adam cannot spend its updates growing norms the
  renormalisation throws away;
- the encoder starts as the decoder's transpose, so every latent starts out reading the
  direction it writes; `b_dec` starts at the data's geometric median (or mean), so the first
  steps do not spend themselves learning the offset;
- inputs are scaled by one scalar so their mean norm is √d_in: the same L1 coefficient and
  learning rate then work across layers whose residual norms differ by orders of magnitude.
  The scalar is stored in the SAE config (`input_norm="scalar"`, `norm_scale`), so the saved
  SAE takes raw activations;
- learning rate: linear warmup, then cosine decay; L1 coefficient warmed up linearly (latents
  are not killed before they have found a direction); gradient-norm clipping;
- TopK keeps exactly k latents per token; latents that have not fired for a window of tokens
  are "dead" and get the AuxK loss (Gao et al. 2024): the top `aux_k` dead latents must
  reconstruct the residual error, which gives them a gradient back to the data.

Losses are per token, in the normalised space: recon = ‖x − x̂‖² (summed over dimensions);
ReLU adds `l1 · Σ_i f_i‖W_dec,i‖`; TopK adds `aux_coef · ‖e − ê‖²/‖e‖² · mean‖x − x̄‖²`
(AuxK's normalised error, put back in recon's units).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import Tensor

from steerlang.errors import CheckpointError, SteerError
from steerlang.files import temp_dir
from steerlang.model.sae.core import SAE, SAEConfig, SAEHook
from steerlang.model.sae.load import load_sae, save_sae
from steerlang.model.sae.tensors import read_json, read_safetensors
from steerlang.plan import TokenScope
from steerlang.training import data_parallel
from steerlang.training.activations import TensorTokens, TokenSource
from steerlang.training.progress import progress_bar

if TYPE_CHECKING:
    from steerlang.model.clip import ClipHandle
    from steerlang.model.sites import SiteLike
    from steerlang.training.sae_metrics import SAEMetrics

TRAIN_STATE_FILE = "trainer_state.safetensors"
TRAIN_STATE_JSON = "trainer_state.json"
CHECKPOINT_PREFIX = "step-"

Log = Callable[[str], None]


class TrainConfig(BaseModel):
    """Hyper-parameters of one SAE training run (stored in the trained SAE's metadata)."""

    model_config = ConfigDict(extra="forbid")

    arch: Literal["relu", "topk"] = "relu"
    expansion: int = Field(8, gt=0)  # d_sae = expansion * d_in unless d_sae is given
    d_sae: int | None = Field(None, gt=0)
    k: int = Field(32, gt=0)  # topk: active latents per token
    l1: float = Field(1.0, ge=0)  # relu: L1 coefficient (inputs normalised to norm √d_in)
    l1_warmup_frac: float = Field(0.05, ge=0, le=1)
    steps: int = Field(2000, gt=0)
    batch_tokens: int = Field(1024, gt=0)
    lr: float = Field(1e-3, gt=0)
    warmup_steps: int = Field(100, ge=0)
    min_lr_frac: float = Field(0.0, ge=0, le=1)  # cosine decays to lr * min_lr_frac
    betas: tuple[float, float] = (0.9, 0.999)
    grad_clip: float | None = Field(1.0, gt=0)
    b_dec_init: Literal["geometric_median", "mean", "zeros"] = "geometric_median"
    normalize_input: bool = True
    # How inputs are normalised when normalize_input is on: one scalar so the mean token norm is
    # √d_in, or each token standardised (mean 0, std 1) as the ViT-Prisma suite does, which is
    # what gives a clamp strength s the same meaning at every layer and token.
    input_norm: Literal["scalar", "per_token_ln"] = "scalar"
    aux_k: int | None = Field(None, gt=0)  # topk: dead latents used by AuxK (default d_in // 2)
    aux_coef: float = Field(1 / 32, ge=0)  # topk: AuxK weight (0 turns AuxK off)
    dead_window_tokens: int | None = Field(None, gt=0)  # tokens without firing = dead
    init_tokens: int = Field(16384, gt=0)  # tokens sampled for b_dec and the input scale
    seed: int = 0
    device: str = "cpu"
    log_every: int = Field(100, gt=0)
    checkpoint_every: int | None = Field(None, gt=0)
    checkpoint_dir: str | None = None
    keep_checkpoints: int = Field(2, gt=0)

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        if self.checkpoint_every is not None and self.checkpoint_dir is None:
            raise ValueError("checkpoint_every needs checkpoint_dir")
        return self

    def width(self, d_in: int) -> int:
        return self.d_sae if self.d_sae is not None else self.expansion * d_in

    def dead_window(self) -> int:
        if self.dead_window_tokens is not None:
            return self.dead_window_tokens
        total = self.steps * self.batch_tokens
        return min(10_000_000, max(4 * self.batch_tokens, total // 10))

    def resume_identity(self) -> dict[str, Any]:
        """Fields a resumed run must share with the checkpoint it resumes (not the bookkeeping)."""
        return self.model_dump(
            mode="json",
            exclude={
                "device",
                "log_every",
                "checkpoint_every",
                "checkpoint_dir",
                "keep_checkpoints",
            },
        )


@dataclass
class TrainMetrics:
    """What training measured: the last logged window and the history of logged windows.

    `fvu` and `l0` here are averages over the training batches of a window (batch-mean FVU);
    held-out numbers come from `steerlang.training.sae_metrics`.
    """

    steps: int
    tokens_seen: int
    seconds: float
    final: dict[str, float]
    history: list[dict[str, float]] = field(default_factory=list)
    resumed_from_step: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ------------------------------------------------------------------------------ helpers


def as_token_source(acts: Tensor | TokenSource) -> TokenSource:
    if isinstance(acts, Tensor):
        return TensorTokens(acts)
    if isinstance(acts, TokenSource):
        return acts
    if hasattr(acts, "tokens"):  # an ActivationSet: all tokens
        return acts.tokens("all")
    raise SteerError(
        f"cannot train on a {type(acts).__name__}",
        help="pass a [tokens, d] tensor, an ActivationSet or a TokenSource",
    )


def geometric_median(x: Tensor, *, iters: int = 200, tol: float = 1e-7) -> Tensor:
    """Weiszfeld's algorithm in float64: the point minimising the sum of distances to x's rows."""
    x = x.double()
    y = x.mean(0)
    for _ in range(iters):
        w = 1.0 / (x - y).norm(dim=1).clamp_min(1e-12)
        y_new = (w[:, None] * x).sum(0) / w.sum()
        done = (y_new - y).norm() <= tol * max(1.0, float(y.norm()))
        y = y_new
        if done:
            break
    return y


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warmup over `warmup_steps`, then cosine from lr to lr * min_lr_frac at the end."""
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    span = max(1, cfg.steps - cfg.warmup_steps)
    t = min(1.0, (step - cfg.warmup_steps) / span)
    lo = cfg.lr * cfg.min_lr_frac
    return lo + (cfg.lr - lo) * 0.5 * (1.0 + math.cos(math.pi * t))


def _l1_at(step: int, cfg: TrainConfig) -> float:
    ramp = cfg.l1_warmup_frac * cfg.steps
    return cfg.l1 if ramp <= 0 else cfg.l1 * min(1.0, (step + 1) / ramp)


@torch.no_grad()
def remove_parallel_grad_(sae: SAE) -> None:
    """Project each decoder row's gradient onto the row's tangent space (rows are unit-norm)."""
    g = sae.W_dec.grad
    if g is None:
        return
    w = sae.W_dec
    g.sub_((g * w).sum(dim=1, keepdim=True) * w)


def init_sae(
    source: TokenSource, cfg: TrainConfig, *, hook: SAEHook | None = None
) -> tuple[SAE, dict[str, float]]:
    """A fresh SAE for `cfg`: random unit decoder rows, encoder = decoder transpose, b_enc = 0,
    b_dec from the data, inputs scaled so the mean token norm is √d_in (or each token
    standardised, `input_norm="per_token_ln"`)."""
    g = torch.Generator().manual_seed(cfg.seed)
    sample = source.sample(cfg.init_tokens, g).double()
    if sample.shape[0] == 0:
        raise SteerError("no activation tokens to train on")
    if not torch.isfinite(sample).all():
        raise SteerError("the training activations contain NaN or Inf values")
    d_in = int(sample.shape[1])
    mean_norm = float(sample.norm(dim=1).mean())
    per_token = cfg.normalize_input and cfg.input_norm == "per_token_ln"
    scale = math.sqrt(d_in) / mean_norm if cfg.normalize_input and mean_norm > 0 else 1.0
    if per_token:
        scale = 1.0  # each token is standardised on its own; no global scale
    d_sae = cfg.width(d_in)
    if cfg.arch == "topk" and cfg.k > d_sae:
        raise SteerError(f"k={cfg.k} exceeds the SAE width {d_sae}", help="lower --k")
    sae_cfg = SAEConfig(
        d_in=d_in,
        d_sae=d_sae,
        activation=cfg.arch,
        k=cfg.k if cfg.arch == "topk" else None,
        pre_center=True,
        input_norm=("per_token_ln" if per_token else "scalar") if cfg.normalize_input else "none",
        norm_scale=scale,
        hook=hook or SAEHook(),
    )
    sae = SAE.random(sae_cfg, seed=cfg.seed, device=cfg.device)
    # b_dec starts where training will see the data: per-token standardisation goes through the
    # SAE's own normaliser (the one formula, steerlang/model/sae/core.py).
    xs = sae.normalize(sample.to(sae.dtype))[0].double() if per_token else sample * scale
    if cfg.b_dec_init == "geometric_median":
        b_dec = geometric_median(xs)
    elif cfg.b_dec_init == "mean":
        b_dec = xs.mean(0)
    else:
        b_dec = torch.zeros(d_in, dtype=torch.float64)
    with torch.no_grad():
        sae.b_enc.zero_()
        sae.b_dec.copy_(b_dec.to(sae.b_dec))
    return sae, {"mean_norm": mean_norm, "norm_scale": scale}


# ------------------------------------------------------------------------------ checkpoints


def _checkpoints(folder: Path) -> list[tuple[int, Path]]:
    out = []
    if folder.is_dir():
        for p in folder.iterdir():
            if p.is_dir() and p.name.startswith(CHECKPOINT_PREFIX):
                try:
                    out.append((int(p.name[len(CHECKPOINT_PREFIX) :]), p))
                except ValueError:
                    continue
    return sorted(out)


def save_checkpoint(
    folder: Path,
    sae: SAE,
    opt: torch.optim.Optimizer,
    state: dict[str, Any],
    since_fired: Tensor,
    *,
    keep: int = 2,
) -> Path:
    """Write `folder/step-NNNNNNN/` (our SAE format + optimiser state) atomically.

    The step folder is assembled under a temporary name and renamed into place, so a killed
    run leaves either the complete checkpoint or none; older checkpoints beyond `keep` go.
    """
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"{CHECKPOINT_PREFIX}{state['step']:07d}"
    tmp = temp_dir(folder, f".{final.name}.")
    try:
        save_sae(sae, tmp)
        opt_sd = opt.state_dict()
        tensors = {"since_fired": since_fired.detach().cpu().contiguous()}
        for idx, st in opt_sd["state"].items():
            for name, v in st.items():
                t = v if isinstance(v, Tensor) else torch.tensor(float(v))
                tensors[f"opt.{idx}.{name}"] = t.detach().cpu().contiguous()
        save_file(tensors, str(tmp / TRAIN_STATE_FILE))
        doc = {**state, "param_groups": opt_sd["param_groups"]}
        (tmp / TRAIN_STATE_JSON).write_text(json.dumps(doc, indent=1), "utf-8")
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for _, old in _checkpoints(folder)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def load_checkpoint(
    path: Path, *, device: str = "cpu"
) -> tuple[SAE, dict[str, Any], dict[str, Tensor]]:
    """(SAE, state JSON, state tensors) of a checkpoint folder; a truncated or altered file is
    a CheckpointError naming it."""
    sae = load_sae(path, device=device)
    doc = read_json(path / TRAIN_STATE_JSON)
    tensors = read_safetensors(path / TRAIN_STATE_FILE)
    for key in ("step", "tokens_seen", "train_config", "param_groups"):
        if key not in doc:
            raise CheckpointError(
                f"{path / TRAIN_STATE_JSON}: missing {key!r}",
                help="the checkpoint is incomplete; delete this step folder to resume from an "
                "earlier one, or train from scratch",
            )
    if "since_fired" not in tensors:
        raise CheckpointError(f"{path / TRAIN_STATE_FILE}: missing tensor 'since_fired'")
    return sae, doc, tensors


def _restore_optimizer(
    opt: torch.optim.Optimizer, doc: dict[str, Any], tensors: dict[str, Tensor], path: Path
) -> None:
    state: dict[int, dict[str, Tensor]] = {}
    for name, t in tensors.items():
        if not name.startswith("opt."):
            continue
        _, idx, key = name.split(".", 2)
        state.setdefault(int(idx), {})[key] = t
    groups = doc["param_groups"]
    for g in groups:
        if "betas" in g:
            g["betas"] = tuple(g["betas"])
    try:
        opt.load_state_dict({"state": state, "param_groups": groups})
    except (ValueError, KeyError, RuntimeError) as e:
        raise CheckpointError(
            f"{path}: optimiser state does not match this SAE ({e})",
            help="delete the checkpoint folder or train from scratch",
        ) from None


# ------------------------------------------------------------------------------ training


def train_sae(
    acts: Tensor | TokenSource,
    cfg: TrainConfig,
    *,
    hook: SAEHook | None = None,
    resume: bool = False,
    progress: bool = False,
    log: Log | None = None,
    description: str = "training SAE",
) -> tuple[SAE, TrainMetrics]:
    """Train one SAE on activation tokens; returns it (raw-space in, raw-space out) and metrics.

    `acts`: a [tokens, d] (or [images, tokens, d]) tensor, an `ActivationSet`, or any
    `TokenSource` (disk shards, streaming). `hook` records where the activations came from.
    `resume=True` continues from the newest checkpoint in `cfg.checkpoint_dir` when there is one
    (same training config required). The trained SAE's `cfg.metadata["training"]` holds the
    config and the metrics.

    Under torchrun (a joined process group) every rank must pass the same tokens: each trains
    on its share of every global batch with DistributedDataParallel
    (steerlang/training/data_parallel.py), the ranks stay identical, and only rank 0 writes
    checkpoints.
    """
    source = as_token_source(acts)
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    ckpt_dir = Path(cfg.checkpoint_dir) if cfg.checkpoint_dir else None
    st = _start(source, cfg, hook, gen, ckpt_dir if resume else None, log)
    sae = st.sae
    ddp = data_parallel.wrap(sae) if data_parallel.world_size() > 1 else None
    progress = progress and data_parallel.is_main()
    window = cfg.dead_window()
    batches: Iterator[Tensor] = source.batches(cfg.batch_tokens, gen)
    acc = _Window()
    t0 = time.perf_counter()
    last: dict[str, float] = st.history[-1] if st.history else {}
    with progress_bar(progress, description, cfg.steps) as advance:
        advance(st.start_step)
        for step in range(st.start_step, cfg.steps):
            lr = lr_at(step, cfg)
            for group in st.opt.param_groups:
                group["lr"] = lr
            x = next(batches).to(sae.device, non_blocking=True)
            acc.add(
                **(
                    _step(st, x, step, cfg, window)
                    if ddp is None
                    else _step_dp(st, ddp, x, step, cfg, window)
                )
            )
            advance(1)
            done = step + 1
            if done % cfg.log_every == 0 or done == cfg.steps:
                if ddp is not None:  # the ranks' shares of each global-batch number, summed
                    acc.reduce_sum()
                last = _close_window(st, acc, done, lr, window, cfg, log)
                acc = _Window()
            if (
                ckpt_dir is not None
                and cfg.checkpoint_every
                and done % cfg.checkpoint_every == 0
                and data_parallel.is_main()
            ):
                save_checkpoint(
                    ckpt_dir,
                    sae,
                    st.opt,
                    {
                        "step": done,
                        "tokens_seen": st.tokens_seen,
                        "train_config": cfg.resume_identity(),
                        "history": st.history,
                        "init": st.init_info,
                    },
                    st.since_fired,
                    keep=cfg.keep_checkpoints,
                )
    sae.eval()
    sae.requires_grad_(False)
    metrics = TrainMetrics(
        steps=cfg.steps,
        tokens_seen=st.tokens_seen,
        seconds=time.perf_counter() - t0,
        final=last,
        history=st.history,
        resumed_from_step=st.resumed,
    )
    sae.cfg.metadata["training"] = {
        "config": cfg.model_dump(mode="json"),
        "tokens_seen": st.tokens_seen,
        "seconds": round(metrics.seconds, 3),
        "final": last,
        "init": st.init_info,
    }
    return sae, metrics


@dataclass
class _TrainState:
    """What a training run carries from step to step (and saves in a checkpoint)."""

    sae: SAE
    opt: torch.optim.Optimizer
    since_fired: Tensor  # [d_sae] tokens since each latent last fired
    init_info: dict[str, Any]
    start_step: int = 0
    tokens_seen: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    resumed: int | None = None


def _start(
    source: TokenSource,
    cfg: TrainConfig,
    hook: SAEHook | None,
    gen: torch.Generator,
    resume_dir: Path | None,
    log: Log | None,
) -> _TrainState:
    """A fresh SAE and optimiser, or the newest checkpoint in `resume_dir` when there is one
    (then `gen` is reseeded so the data order after the resume point is a fresh one)."""
    found = _checkpoints(resume_dir) if resume_dir is not None else []
    latest = found[-1] if found else None
    if latest is None:
        sae, init_info = init_sae(source, cfg, hook=hook)
        sae.train()
        sae.requires_grad_(True)
        since_fired = torch.zeros(sae.d_sae, dtype=torch.long, device=sae.device)
        return _TrainState(sae, _adam(sae, cfg), since_fired, init_info)
    sae, doc, state_t = load_checkpoint(latest[1], device=cfg.device)
    if doc["train_config"] != cfg.resume_identity():
        raise SteerError(
            f"cannot resume from {latest[1]}: it was trained with a different configuration",
            help="use the same options, or a new --checkpoint-dir to start afresh",
        )
    start_step = int(doc["step"])
    gen.manual_seed(cfg.seed + start_step)  # a fresh data order after the resume point
    if log:
        log(f"resuming from {latest[1]} (step {start_step})")
    sae.train()
    sae.requires_grad_(True)
    opt = _adam(sae, cfg)
    _restore_optimizer(opt, doc, state_t, latest[1])
    return _TrainState(
        sae,
        opt,
        state_t["since_fired"].to(sae.device),
        doc.get("init", {}),
        start_step=start_step,
        tokens_seen=int(doc["tokens_seen"]),
        history=list(doc.get("history", [])),
        resumed=start_step,
    )


def _step(
    st: _TrainState, x: Tensor, step: int, cfg: TrainConfig, window: int
) -> dict[str, Tensor]:
    """One optimiser step on the batch `x`: reconstruction loss, the sparsity penalty (ReLU)
    or the AuxK loss on dead latents (TopK), then the decoder's unit-norm constraint. Returns
    the step's numbers for the logging window."""
    sae, dev = st.sae, st.sae.device
    xn, _ = sae.normalize(x.to(sae.dtype))
    pre = sae.pre_activation(x)
    f = sae.activate(pre)
    x_hat = f @ sae.W_dec + sae.b_dec
    err = x_hat - xn
    mse = err.pow(2).sum(-1).mean()
    loss = mse
    sparsity = torch.zeros((), device=dev)
    aux = torch.zeros((), device=dev)
    if cfg.arch == "relu":
        # Σ_i f_i‖W_dec,i‖ with unit rows: the norm factor is 1 and its gradient is
        # parallel to the rows, which remove_parallel_grad_ drops, so f.sum is exact.
        sparsity = f.sum(-1).mean()
        loss = loss + _l1_at(step, cfg) * sparsity
    dead = st.since_fired >= window
    n_dead = int(dead.sum())
    if cfg.arch == "topk" and cfg.aux_coef > 0 and n_dead > 0:
        aux_k = min(cfg.aux_k or max(1, sae.d_in // 2), sae.d_sae)
        aux = _auxk_loss(sae, pre, dead, err.detach(), xn, min(aux_k, n_dead))
        loss = loss + cfg.aux_coef * aux
    st.opt.zero_grad(set_to_none=True)
    loss.backward()
    remove_parallel_grad_(sae)
    if cfg.grad_clip is not None:
        torch.nn.utils.clip_grad_norm_(sae.parameters(), cfg.grad_clip)
    st.opt.step()
    sae.normalize_decoder_()
    with torch.no_grad():
        active = f > 0
        st.since_fired += x.shape[0]
        st.since_fired[active.any(0)] = 0
        st.tokens_seen += x.shape[0]
        var = (xn - xn.mean(0)).pow(2).sum()
        return {
            "loss": loss.detach(),
            "mse": mse.detach(),
            "fvu": err.pow(2).sum() / var.clamp_min(1e-12),
            "l0": active.sum(-1).float().mean(),
            "l1": sparsity.detach(),
            "aux": aux.detach(),
        }


def _step_dp(
    st: _TrainState, ddp: torch.nn.Module, x: Tensor, step: int, cfg: TrainConfig, window: int
) -> dict[str, Tensor]:
    """`_step` on this rank's contiguous share of the global batch `x` (the same `x` on every
    rank). Each term is this rank's share of the global batch mean (a local sum over the global
    token count), so the ranks' terms add up to `_step`'s; the loss is multiplied by the world
    size because DDP averages the gradients. AuxK's normaliser and the batch variance are not
    sums over tokens: their denominators are all-reduced (no gradient flows through them in
    `_step` either: they are detached there). Gradient projection, clipping, the Adam step and
    the decoder renormalisation follow DDP's all-reduce, on identical gradients and parameters
    on every rank. Returns the shares; `_Window.reduce_sum` adds them up over the ranks."""
    sae, dev = st.sae, st.sae.device
    n = x.shape[0]
    world = data_parallel.world_size()
    lo, hi = data_parallel.bounds(n)
    xn, pre, f, x_hat = ddp(x[lo:hi])
    err = x_hat - xn
    mse = err.pow(2).sum() / n
    loss = mse
    sparsity = torch.zeros((), device=dev)
    aux = torch.zeros((), device=dev)
    if cfg.arch == "relu":
        sparsity = f.sum() / n
        loss = loss + _l1_at(step, cfg) * sparsity
    with torch.no_grad():  # the global batch's centred variance Σ‖x − x̄‖², in float64
        xd = xn.detach().double()
        mean = data_parallel.all_reduce_sum(xd.sum(0)) / n
        var = data_parallel.all_reduce_sum((xd - mean).pow(2).sum())
    dead = st.since_fired >= window
    n_dead = int(dead.sum())
    if cfg.arch == "topk" and cfg.aux_coef > 0 and n_dead > 0:
        aux_k = min(cfg.aux_k or max(1, sae.d_in // 2), sae.d_sae)
        k_aux = min(aux_k, n_dead)
        residual = err.detach()
        masked = pre.masked_fill(~dead, float("-inf"))
        vals, idx = masked.topk(k_aux, dim=-1, sorted=False)
        z = torch.zeros_like(pre).scatter(-1, idx, torch.relu(vals))
        e_hat = z @ sae.W_dec
        with torch.no_grad():
            denom = data_parallel.all_reduce_sum(residual.double().pow(2).sum()).clamp_min(1e-12)
        aux = (e_hat + residual).pow(2).sum() / denom.to(pre.dtype) * (var / n).to(pre.dtype)
        loss = loss + cfg.aux_coef * aux
    st.opt.zero_grad(set_to_none=True)
    (loss * world).backward()  # DDP all-reduces the gradients here (their mean over ranks)
    remove_parallel_grad_(sae)
    if cfg.grad_clip is not None:
        torch.nn.utils.clip_grad_norm_(sae.parameters(), cfg.grad_clip)
    st.opt.step()
    sae.normalize_decoder_()
    with torch.no_grad():
        active = f > 0
        fired = data_parallel.all_reduce_max(active.any(0).to(torch.int32))
        st.since_fired += n
        st.since_fired[fired > 0] = 0
        st.tokens_seen += n
        return {
            "loss": loss.detach(),
            "mse": mse.detach(),
            "fvu": err.detach().double().pow(2).sum() / var.clamp_min(1e-12),
            "l0": active.sum().double() / n,
            "l1": sparsity.detach(),
            "aux": aux.detach(),
        }


def _close_window(
    st: _TrainState,
    acc: _Window,
    done: int,
    lr: float,
    window: int,
    cfg: TrainConfig,
    log: Log | None,
) -> dict[str, float]:
    """The logging window's means, appended to the history; a non-finite loss stops training."""
    last = {
        "step": done,
        "lr": lr,
        **acc.mean(),
        "dead_fraction": float((st.since_fired >= window).float().mean()),
    }
    if not math.isfinite(last["loss"]):
        raise SteerError(
            f"SAE training diverged by step {done} (loss {last['loss']})",
            help="lower --lr, or the L1 coefficient (--l1)",
        )
    st.history.append(last)
    if log:
        log(
            f"step {done}/{cfg.steps}  loss {last['loss']:.4g}  fvu {last['fvu']:.4f}"
            f"  L0 {last['l0']:.1f}  dead {100 * last['dead_fraction']:.1f}%"
        )
    return last


def _adam(sae: SAE, cfg: TrainConfig) -> torch.optim.Optimizer:
    """Adam, fused where this torch build supports it: on a tiny SAE the per-tensor Python
    loop of the default implementation costs more than the forward and backward together."""
    try:
        return torch.optim.Adam(sae.parameters(), lr=cfg.lr, betas=cfg.betas, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(sae.parameters(), lr=cfg.lr, betas=cfg.betas, foreach=True)


def _auxk_loss(
    sae: SAE, pre: Tensor, dead: Tensor, residual: Tensor, xn: Tensor, k_aux: int
) -> Tensor:
    """AuxK: the top-k_aux dead latents reconstruct the main reconstruction's error.

    Normalised by the error's own power (so the signal stays strong as the error shrinks), then
    multiplied by the batch's variance (mean ‖x − x̄‖²) to share units with the main loss; the
    centred variance, not ‖x‖², so a large constant offset in the residual stream does not make
    AuxK outweigh the reconstruction.
    """
    masked = pre.masked_fill(~dead, float("-inf"))
    vals, idx = masked.topk(k_aux, dim=-1, sorted=False)
    z = torch.zeros_like(pre).scatter(-1, idx, torch.relu(vals))
    e_hat = z @ sae.W_dec
    nmse = (e_hat + residual).pow(2).sum() / residual.pow(2).sum().clamp_min(1e-12)
    xd = xn.detach()
    return nmse * (xd - xd.mean(0)).pow(2).sum(-1).mean()


class _Window:
    """Running means of the per-step numbers between two log lines.

    Kept as device tensors so a CUDA run synchronises once per log line, not once per step.
    """

    def __init__(self) -> None:
        self.sums: dict[str, Tensor] = {}
        self.n = 0

    def add(self, **vals: Tensor) -> None:
        for k, v in vals.items():
            self.sums[k] = self.sums[k] + v if k in self.sums else v.clone()
        self.n += 1

    def reduce_sum(self) -> None:
        """Sum the window's numbers over the ranks (one all-reduce per log line)."""
        if not self.sums:
            return
        keys = list(self.sums)  # the same insertion order on every rank
        flat = data_parallel.all_reduce_sum(torch.stack([self.sums[k].double() for k in keys]))
        self.sums = dict(zip(keys, flat.unbind(), strict=True))

    def mean(self) -> dict[str, float]:
        return {k: float(v) / max(1, self.n) for k, v in self.sums.items()}


# ------------------------------------------------------------------------------ many sites


@dataclass
class TrainedSAE:
    """One site's result from `train_site_saes`."""

    site: str
    sae: SAE
    train: TrainMetrics
    metrics: SAEMetrics | None = None


def train_site_saes(
    handle: ClipHandle,
    sites: Sequence[SiteLike],
    source: Any,
    cfg: TrainConfig | Mapping[str, TrainConfig],
    *,
    tokens: TokenScope = "all",
    eval_source: Any = None,
    eval_labels: Sequence[int] | Tensor | None = None,
    classes: Sequence[str] | None = None,
    templates: Sequence[str] = ("a photo of a {}.",),
    cache_dir: str | os.PathLike[str] | None = None,
    batch_size: int = 64,
    max_images: int | None = None,
    model_ref: str | None = None,
    progress: bool = False,
    log: Log | None = None,
) -> dict[str, TrainedSAE]:
    """Train an SAE at every site from ONE activation pass over `source`, then evaluate them.

    `cfg` is one config for all sites or `{hook_name: cfg}`. With `eval_source`, every SAE is
    measured on it (FVU, L0, dead/dense; with `eval_labels` and `classes` also zero-shot
    accuracy recovered) and the numbers are stored in `sae.cfg.metadata["metrics"]`.
    Returns `{hook_name: TrainedSAE}` in the order of `sites`; saving is the caller's choice
    (`save_sae(sae, folder)`).
    """
    from steerlang.model.sites import parse_site
    from steerlang.training.activations import collect_activations

    refs = [parse_site(s) for s in sites]
    acts = collect_activations(
        handle,
        refs,
        source,
        batch_size=batch_size,
        cache_dir=cache_dir,
        max_images=max_images,
        progress=progress,
        log=log,
    )
    out: dict[str, TrainedSAE] = {}
    for ref in refs:
        name = ref.hook_name
        site_cfg = cfg[name] if isinstance(cfg, Mapping) else cfg
        hook = SAEHook(
            layer=ref.layer,
            site=ref.site,
            tokens=_token_kind(tokens),
            model=model_ref or handle.ref,
        )
        sae, tm = train_sae(
            acts[name].tokens(tokens),
            site_cfg,
            hook=hook,
            progress=progress,
            log=log,
            description=f"SAE {name}",
        )
        out[name] = TrainedSAE(site=name, sae=sae, train=tm)
        if log:
            f = tm.final
            log(
                f"{name}: d_sae {sae.d_sae}, train FVU {f.get('fvu', float('nan')):.4f}, "
                f"L0 {f.get('l0', float('nan')):.1f} ({tm.seconds:.1f}s)"
            )
    del acts
    if eval_source is not None:
        from steerlang.training.sae_metrics import evaluate_saes

        results = evaluate_saes(
            handle,
            {name: t.sae for name, t in out.items()},
            eval_source,
            labels=eval_labels,
            classes=classes,
            templates=templates,
            batch_size=batch_size,
            progress=progress,
        )
        for name, met in results.items():
            out[name].metrics = met
            out[name].sae.cfg.metadata["metrics"] = met.to_dict()
    return out


def _token_kind(tokens: TokenScope) -> Literal["all", "cls", "patches"]:
    if tokens in ("all", "cls", "patches"):
        return tokens  # type: ignore[return-value]
    raise SteerError(
        "SAEs are trained on a named token scope (all, cls or patches), not explicit indices"
    )
