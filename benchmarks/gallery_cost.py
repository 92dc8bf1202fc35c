"""The cost of feature-card images: statistics-pass time with the running top-k (each
feature's k strongest images and their patch maps, steerlang/pipeline/topk.py) divided by the
time without it, measured in one process.

Setup: open_clip ViT-B-32 with random weights, a random ReLU SAE with 49,152 latents at
`blocks.7.hook_resid_post`, two binary concepts, pooling "mean", token scope "all"; the top-k
tracks every feature (as `steer run` does before it knows which features the rules select),
k = 8, 7x7 patch maps. Both passes are `compute_statistics` over the same preprocessed pixel
batches already on the device; the timed repeats alternate so drift in machine load hits both.

    python benchmarks/gallery_cost.py [--device cpu|cuda] [--batch N] [--batches N] [--k K]

Prints a table, then one JSON object on the last line. Target: ratio <= 1.10 (the gallery
costs at most a tenth of the statistics pass).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import numpy as np
import torch

TARGET = 1.10


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
    ap.add_argument("--k", type=int, default=8, help="images kept per feature")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = ap.parse_args(argv)

    from steerlang.model.clip import random_clip
    from steerlang.model.sae.core import SAE, SAEConfig, SAEHook
    from steerlang.pipeline.statistics import StatsSpec, compute_statistics
    from steerlang.pipeline.topk import RunningTopK, patch_grid

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
    side = patch_grid(handle.n_tokens)

    def run(with_gallery: bool) -> None:
        rows = [np.arange(i * batch, (i + 1) * batch) for i in range(n_batches)]
        galleries = (
            {spec: RunningTopK(args.d_sae, args.k, n_patches=side * side, device=device)}
            if with_gallery
            else None
        )
        compute_statistics(
            handle,
            {(args.layer, "resid_post"): sae},
            [spec],
            zip(rows, batches, strict=True),
            concepts,
            device=device,
            galleries=galleries,
        )

    def timed(with_gallery: bool) -> float:
        _sync(device)
        t = time.perf_counter()
        run(with_gallery)
        _sync(device)
        return time.perf_counter() - t

    timed(False)
    timed(True)
    t_plain, t_gallery = [], []
    for _ in range(args.repeats):
        t_plain.append(timed(False))
        t_gallery.append(timed(True))
    plain_s = statistics.median(t_plain)
    gallery_s = statistics.median(t_gallery)
    ratio = gallery_s / plain_s
    name = (
        torch.cuda.get_device_name(device) if on_gpu else f"cpu ({torch.get_num_threads()} threads)"
    )
    print(f"device                 {name}")
    print(f"model                  ViT-B-32 (random weights), layer {args.layer} resid_post")
    print(
        f"SAE                    ReLU, {args.d_sae} latents (random); top-k k={args.k}, {side}x{side}"
    )
    print(f"images                 {n_batches} batches x {batch} = {n_img}, {args.repeats} repeats")
    print(f"statistics             {plain_s:.3f} s (median)")
    print(f"statistics + top-k     {gallery_s:.3f} s (median)")
    print(f"ratio                  {ratio:.3f}   (target <= {TARGET})")
    print(
        json.dumps(
            {
                "benchmark": "gallery_cost",
                "device": name,
                "model": "ViT-B-32 (random)",
                "layer": args.layer,
                "d_sae": args.d_sae,
                "k": args.k,
                "patches": side * side,
                "batch": batch,
                "images": n_img,
                "repeats": args.repeats,
                "stats_s": round(plain_s, 4),
                "stats_with_topk_s": round(gallery_s, 4),
                "ratio": round(ratio, 4),
                "target": TARGET,
                "meets_target": ratio <= TARGET,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
