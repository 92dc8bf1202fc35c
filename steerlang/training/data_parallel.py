"""SAE training on several processes (`torchrun ... -m steerlang train-sae`, docs/scale.md).

Every rank holds the same activation tokens (captured in shards, one per rank, and gathered in
rank order, so the token table is the one-process table) and draws the same global batch from
the same seeded generator; each rank then trains on its contiguous share of that batch through
`torch.nn.parallel.DistributedDataParallel`. The per-rank losses are written as each rank's
contribution to the global batch mean, so DDP's gradient average is exactly the gradient of the
one-process loss (up to float32 summation order); the batch-level terms that do not split into
per-token sums (AuxK's normalisation and the batch variance) use all-reduced denominators. The
gradient projection, clipping, Adam step and decoder renormalisation then run on identical
gradients and identical parameters on every rank, so the ranks stay identical.

This module uses `torch.distributed` directly (the training package sits below the pipeline,
docs/architecture.md); with one process `world_size()` is 1 and nothing here is used.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn


def _dist() -> Any:
    import torch.distributed as dist

    return dist


def world_size() -> int:
    """Processes in the run: 1 unless a `torch.distributed` process group is joined."""
    dist = _dist()
    if not (dist.is_available() and dist.is_initialized()):
        return 1
    return int(dist.get_world_size())


def rank() -> int:
    return int(_dist().get_rank()) if world_size() > 1 else 0


def is_main() -> bool:
    """Rank 0: the one process that writes checkpoints and the SAE."""
    return rank() == 0


def bounds(n: int, ranks: int | None = None, r: int | None = None) -> tuple[int, int]:
    """[lo, hi) of rank r's contiguous share of n items (the first n % ranks get one more);
    the same split as `steerlang/pipeline/distributed.py`'s `shard_bounds`."""
    ranks = world_size() if ranks is None else ranks
    r = rank() if r is None else r
    base, extra = divmod(n, ranks)
    lo = r * base + min(r, extra)
    return lo, lo + base + (1 if r < extra else 0)


def _all_reduce(t: Tensor, op: Any) -> Tensor:
    """All-reduce in place; NCCL only reduces CUDA tensors, so a CPU tensor makes the round
    trip through this rank's GPU there."""
    dist = _dist()
    if dist.get_backend() == "nccl" and t.device.type != "cuda":
        tmp = t.to(f"cuda:{torch.cuda.current_device()}")
        dist.all_reduce(tmp, op=op)
        t.copy_(tmp.cpu())
    else:
        dist.all_reduce(t, op=op)
    return t


def all_reduce_sum(t: Tensor) -> Tensor:
    """The sum over ranks of `t` (in place; returned for chaining)."""
    if world_size() > 1:
        _all_reduce(t, _dist().ReduceOp.SUM)
    return t


def all_reduce_max(t: Tensor) -> Tensor:
    if world_size() > 1:
        _all_reduce(t, _dist().ReduceOp.MAX)
    return t


def gather_objects(obj: Any) -> list[Any]:
    """Every rank's picklable `obj`, in rank order ([obj] with one process)."""
    if world_size() == 1:
        return [obj]
    out: list[Any] = [None] * world_size()
    _dist().all_gather_object(out, obj)
    return out


def gather_tensors(t: Tensor) -> Tensor:
    """Every rank's `t` (any first-dimension length), concatenated in rank order on the CPU."""
    if world_size() == 1:
        return t
    parts: list[Any] = [None] * world_size()
    _dist().all_gather_object(parts, t.cpu())
    return torch.cat(parts)


class SAEForward(nn.Module):
    """The part of a training step DDP wraps: normalised input, pre-activations, latents and
    reconstruction (its backward hooks all-reduce the SAE's gradients)."""

    def __init__(self, sae: nn.Module) -> None:
        super().__init__()
        self.sae = sae

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        sae = self.sae
        xn, _ = sae.normalize(x.to(sae.dtype))
        pre = sae.pre_activation(x)
        f = sae.activate(pre)
        return xn, pre, f, f @ sae.W_dec + sae.b_dec


def wrap(sae: nn.Module) -> nn.Module:
    """`SAEForward(sae)` under DistributedDataParallel (gloo on the CPU, NCCL on a GPU: the
    process group's backend); the SAE's parameters are the wrapped module's."""
    from torch.nn.parallel import DistributedDataParallel

    fwd = SAEForward(sae)
    dev = next(sae.parameters()).device
    if dev.type == "cuda":
        return DistributedDataParallel(fwd, device_ids=[dev.index or 0])
    return DistributedDataParallel(fwd)
