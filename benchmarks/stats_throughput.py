"""Statistics-pass throughput ÷ plain forward throughput, measured in one process.

Setup (issue 4): open_clip ViT-B-32 with random weights, a random ReLU SAE with 49,152 latents
at `blocks.7.hook_resid_post`, two binary concepts, pooling "mean", token scope "all". Both
passes see the same preprocessed pixel batches already on the device (image decoding is the
same for both and left out). The plain pass is `encode_image` (the whole model); the
statistics pass is `steerlang.pipeline.statistics.compute_statistics` (forward up to block 7,
SAE encode, float64 accumulators for mean/freq/max/corr/mean-given-concept).

    python benchmarks/stats_throughput.py [--device cpu|cuda] [--batch N] [--batches N]

Prints a table, then one JSON object on the last line. Target: ratio >= 0.7.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from typing import Any

import numpy as np
import torch


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batch", type=int, default=None, help="images per batch")
    ap.add_argument("--batches", type=int, default=None, help="batches per timed pass")
    ap.add_argument("--repeats", type=int, default=3, help="timed repetitions (median)")
    ap.add_argument("--d-sae", type=int, default=49152)
    ap.add_argument("--layer", type=int, default=7)
    ap.add_argument(
        "--dtype",
        choices=["fp32", "bf16"],
        default="fp32",
        help="autocast dtype for both passes (accumulators stay float64)",
    )
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = ap.parse_args(argv)

    from steerlang.model.clip import random_clip
    from steerlang.model.sae.core import SAE, SAEConfig, SAEHook
    from steerlang.pipeline.statistics import StatsSpec, compute_statistics

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    on_gpu = device.type == "cuda"
    batch = args.batch or (256 if on_gpu else 8)
    n_batches = args.batches or (8 if on_gpu else 3)

    handle = random_clip("ViT-B-32", device=device, seed=0)
    cfg = SAEConfig(
        d_in=handle.width, d_sae=args.d_sae, hook=SAEHook(layer=args.layer, site="resid_post")
    )
    sae = SAE.random(cfg, seed=0, device=device)
    sae.requires_grad_(False)
    g = torch.Generator().manual_seed(0)
    batches = [torch.randn(batch, 3, 224, 224, generator=g).to(device) for _ in range(n_batches)]
    rng = np.random.default_rng(0)
    n_img = batch * n_batches
    concepts = {"a": rng.random(n_img) < 0.3, "b": rng.random(n_img) < 0.5}
    spec = StatsSpec(args.layer, "resid_post", "all")
    autocast: Any = (
        torch.autocast(device_type=device.type, dtype=torch.bfloat16)
        if args.dtype == "bf16"
        else torch.autocast(device_type=device.type, enabled=False)
    )

    def plain() -> None:
        with torch.inference_mode(), autocast:
            for px in batches:
                handle.encode_image(px)

    def stats() -> None:
        rows = [np.arange(i * batch, (i + 1) * batch) for i in range(n_batches)]
        with autocast:
            compute_statistics(
                handle,
                {(args.layer, "resid_post"): sae},
                [spec],
                zip(rows, batches, strict=True),
                concepts,
                device=device,
            )

    def timed(fn: Any) -> float:
        _sync(device)
        t = time.perf_counter()
        fn()
        _sync(device)
        return time.perf_counter() - t

    # Warm up both (allocator, kernels, thread pools), then interleave the timed repeats so
    # drift in machine load hits both passes alike.
    timed(plain)
    timed(stats)
    t_plain, t_stats = [], []
    for _ in range(args.repeats):
        t_plain.append(timed(plain))
        t_stats.append(timed(stats))
    plain_s = statistics.median(t_plain)
    stats_s = statistics.median(t_stats)
    plain_ips = n_img / plain_s
    stats_ips = n_img / stats_s
    ratio = stats_ips / plain_ips
    name = (
        torch.cuda.get_device_name(device) if on_gpu else f"cpu ({torch.get_num_threads()} threads)"
    )
    print(f"device          {name}")
    print(f"model           ViT-B-32 (random weights), layer {args.layer} resid_post, {args.dtype}")
    print(f"SAE             ReLU, {args.d_sae} latents (random)")
    print(f"images          {n_batches} batches x {batch} = {n_img}, {args.repeats} repeats")
    print(f"plain forward   {plain_ips:10.1f} img/s   (median {plain_s:.3f} s)")
    print(f"statistics pass {stats_ips:10.1f} img/s   (median {stats_s:.3f} s)")
    print(f"ratio           {ratio:.3f}   (target >= 0.7)")
    print(
        json.dumps(
            {
                "benchmark": "stats_throughput",
                "device": name,
                "dtype": args.dtype,
                "model": "ViT-B-32 (random)",
                "layer": args.layer,
                "d_sae": args.d_sae,
                "batch": batch,
                "images": n_img,
                "repeats": args.repeats,
                "plain_img_per_s": round(plain_ips, 2),
                "stats_img_per_s": round(stats_ips, 2),
                "ratio": round(ratio, 4),
                "target": 0.7,
                "meets_target": ratio >= 0.7,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
