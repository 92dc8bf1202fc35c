"""Several processes, one run: `torchrun --nproc-per-node N -m steerlang run ...` (docs/scale.md).

`torchrun` starts N copies of the command with `RANK`, `WORLD_SIZE`, `LOCAL_RANK` and the
rendezvous address in the environment; `init_from_env` (called by the CLI before any command)
joins them into one `torch.distributed` process group: gloo on the CPU, NCCL on CUDA, each rank on
its own GPU (`LOCAL_RANK`). Multi-node runs are what torchrun always does (`--nnodes`,
`--rdzv-endpoint`).

The stages split their work with the helpers here:

- statistics: each rank reads a contiguous shard of the images (`shard`), and the float64
  sufficient statistics are merged exactly (`merge_stats`: Chan's parallel update of the pooled
  mean and centred second moment, sums of firing counts and per-concept sums, the max of maxima),
  in rank order, so every rank finishes with the same table;
- evaluation: each rank predicts a contiguous shard and the predictions are gathered in rank
  order (`gather_rows`), so metrics are computed on all images, in table order;
- only rank 0 writes caches, reports and run folders (`is_main`).

A failure in any rank stops the whole run: the failing rank prints its error and exits non-zero,
and torchrun then stops the other ranks (its default `--max-restarts 0`).
With one process (no torchrun) every helper is the identity and nothing imports
`torch.distributed`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np


def world_size() -> int:
    """Processes in the run (1 without torchrun)."""
    if not _initialised():
        return 1
    import torch.distributed as dist

    return int(dist.get_world_size())


def rank() -> int:
    if not _initialised():
        return 0
    import torch.distributed as dist

    return int(dist.get_rank())


def is_main() -> bool:
    """Rank 0: the one process that writes caches, reports and checkpoints."""
    return rank() == 0


def _initialised() -> bool:
    import sys

    if "torch.distributed" not in sys.modules:
        return False
    import torch.distributed as dist

    return bool(dist.is_available() and dist.is_initialized())


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1") or 1) > 1 and "RANK" in os.environ


def init_from_env(device: str | None = None) -> bool:
    """Join the process group torchrun describes in the environment; False when not launched
    by torchrun with more than one process. The backend follows the device: NCCL when CUDA is
    used, else gloo (`STEER_DIST_BACKEND` overrides)."""
    if not launched_by_torchrun() or _initialised():
        return _initialised()
    import torch
    import torch.distributed as dist

    want_cuda = (device or "auto").startswith(("auto", "cuda")) and torch.cuda.is_available()
    backend = os.environ.get("STEER_DIST_BACKEND") or ("nccl" if want_cuda else "gloo")
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend=backend)
    return True


def shard_bounds(n: int, ranks: int | None = None, r: int | None = None) -> tuple[int, int]:
    """[lo, hi) of rank r's contiguous share of n items (the first n % ranks get one more)."""
    ranks = world_size() if ranks is None else ranks
    r = rank() if r is None else r
    base, extra = divmod(n, ranks)
    lo = r * base + min(r, extra)
    return lo, lo + base + (1 if r < extra else 0)


def shard(items: Sequence[Any] | np.ndarray) -> Any:
    """This rank's contiguous share of `items` (all of them with one process)."""
    if world_size() == 1:
        return items
    lo, hi = shard_bounds(len(items))
    return items[lo:hi]


def gather_objects(obj: Any) -> list[Any]:
    """Every rank's `obj`, in rank order ([obj] with one process)."""
    if world_size() == 1:
        return [obj]
    import torch.distributed as dist

    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def gather_rows(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per-row arrays of each rank's contiguous shard, concatenated in rank order (= row order)."""
    if world_size() == 1:
        return arrays
    parts = gather_objects({k: np.asarray(v) for k, v in arrays.items()})
    return {k: np.concatenate([p[k] for p in parts]) for k in arrays}


def barrier() -> None:
    if world_size() > 1:
        import torch.distributed as dist

        dist.barrier()


# ------------------------------------------------------------------------------ statistics


_STATE = ("n_images", "n_tokens", "mean", "m2", "fire", "max", "concept_sum", "concept_n")


def stats_state(acc: Any) -> dict[str, Any]:
    """An accumulator's sufficient statistics as CPU values (what crosses between ranks)."""
    out: dict[str, Any] = {}
    for name in _STATE:
        v = getattr(acc, name)
        out[name] = v.detach().cpu() if hasattr(v, "detach") else v
    return out


def merge_stats(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Two accumulators' sufficient statistics -> those of the union of their images (exact up
    to float64 rounding): Chan's parallel merge of (n, mean, M2), sums, the max of maxima."""
    import torch

    na, nb = int(a["n_images"]), int(b["n_images"])
    if na == 0:
        return dict(b)
    if nb == 0:
        return dict(a)
    n = na + nb
    delta = b["mean"] - a["mean"]
    return {
        "n_images": n,
        "n_tokens": int(a["n_tokens"]) + int(b["n_tokens"]),
        "mean": a["mean"] + delta * (nb / n),
        "m2": a["m2"] + b["m2"] + delta * delta * (na * nb / n),
        "fire": a["fire"] + b["fire"],
        "max": torch.maximum(a["max"], b["max"]),
        "concept_sum": a["concept_sum"] + b["concept_sum"],
        "concept_n": a["concept_n"] + b["concept_n"],
    }


def merge_across_ranks(accs: dict[Any, Any]) -> dict[Any, Any]:
    """Replace every accumulator's state by the merge of all ranks' (in rank order), so each
    rank finalises the statistics of all images. An accumulator with more state (e.g. running
    top-k galleries) merges it through its own `merge_state(states)` when it has one."""
    if world_size() == 1:
        return accs
    keys = list(accs)
    parts = gather_objects([stats_state(accs[k]) for k in keys])
    for i, k in enumerate(keys):
        merged = parts[0][i]
        for p in parts[1:]:
            merged = merge_stats(merged, p[i])
        acc = accs[k]
        for name in _STATE:
            v = merged[name]
            cur = getattr(acc, name)
            setattr(acc, name, v.to(cur.device) if hasattr(cur, "device") else v)
    return accs


def merge_galleries(galleries: dict[Any, Any]) -> dict[Any, Any]:
    """Under torchrun, replace every running top-k gallery (steerlang/pipeline/topk.py) by the
    merge of all ranks' galleries, in rank order: each rank saw a contiguous shard of the rows,
    so folding rank 1's candidates after rank 0's is the order one process sees them in, and
    `RunningTopK.merge` gives one pass's top-k. The float32 values and patch maps cross as they
    are (not the cache's float16 maps). Every rank ends with the same galleries."""
    if world_size() == 1 or not galleries:
        return galleries
    from steerlang.pipeline.topk import RunningTopK

    keys = list(galleries)

    def state(g: Any) -> dict[str, Any]:
        maps = g.maps
        return {
            "values": g.values.cpu(),
            "rows": g.rows.cpu(),
            "maps": None if maps is None else maps.cpu(),
            "n_rows": g.n_rows,
        }

    def load(g: Any, st: dict[str, Any]) -> None:
        dev = g.values.device
        g.values = st["values"].to(dev)
        g.rows = st["rows"].to(dev)
        if st["maps"] is not None:
            g.maps = st["maps"].to(dev)  # the setter lays the maps out in fresh slots
        g.n_rows = st["n_rows"]

    parts = gather_objects([state(galleries[k]) for k in keys])
    for i, k in enumerate(keys):
        g = galleries[k]
        load(g, parts[0][i])
        for p in parts[1:]:
            other = RunningTopK(
                g.n_features,
                g.k,
                features=None if g.all_features else g.features.cpu(),
                n_patches=g.n_patches,
                prefix_tokens=g.prefix_tokens,
                device=g.values.device,
            )
            load(other, p[i])
            g.merge(other)
    return galleries


def finish() -> None:
    """Leave the process group (at the end of a command run under torchrun)."""
    if _initialised():
        import torch.distributed as dist

        dist.destroy_process_group()
