"""End-to-end throughput: reading real JPEGs, and the cost of evaluation, measured in one process.

1. Loading. A folder of real-size JPEGs (500x375, as in Waterbirds) is generated in the
   Waterbirds layout and loaded with the Waterbirds reader. The statistics pass
   (`steerlang.pipeline.statistics.compute_statistics`, one SAE at `blocks.L.hook_resid_post`)
   runs over batches read from the files by `steerlang.data.batches.image_batches` and over
   the same images preprocessed beforehand (tensors already on the device). Reported:
   files ÷ preloaded throughput for 0 workers, N workers and, on CUDA, GPU decoding
   (steerlang/data/gpu_decode.py). Target: >= 0.9 with workers on the CPU, >= 0.8 on a GPU
   with the better of workers and GPU decoding.
2. Evaluation. Per batch, evaluation embeds the images unsteered and steered. Its cost ÷ one
   plain forward, without and with the shared prefix (steerlang/model/prefix.py), against the
   shared-prefix ideal 1 + (blocks from the first steered one ÷ all blocks). Target: with the
   shared prefix <= 1.05 x the ideal.

    python benchmarks/e2e_throughput.py [--device cpu|cuda] [--images N] [--workers N]

Random model weights (open_clip ViT-B-32) and a random SAE: throughput does not depend on the
values. Prints a table, then one JSON object on the last line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def make_jpeg_waterbirds(root: Path, n: int, seed: int = 0) -> Path:
    """A Waterbirds-layout folder whose `n` images are 500x375 JPEGs (smooth noise, so they
    compress like photographs rather than like flat colour)."""
    from PIL import Image

    from steerlang.data.fixtures import make_waterbirds_fixture
    from steerlang.data.formats.waterbirds import load_waterbirds

    scale = max(1, int(np.ceil(n * 100 / 119)) + 5)  # scale=100 gives 119 images
    make_waterbirds_fixture(root, scale=scale, seed=seed, image_size=8)
    table = load_waterbirds(root)
    rng = np.random.default_rng(seed)
    base = np.cumsum(np.cumsum(rng.normal(0, 3, (375, 500, 3)), axis=0), axis=1)
    base = (base - base.min()) / (np.ptp(base) + 1e-9) * 255
    for i in range(len(table)):
        shift = rng.integers(0, 60, size=3)
        img = np.clip(base + shift + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(table.path(i), quality=90)
    return root


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--model", default="ViT-B-32", help="open_clip architecture (random weights)")
    ap.add_argument("--images", type=int, default=None, help="images per pass")
    ap.add_argument("--batch", type=int, default=None)
    ap.add_argument("--workers", type=int, default=None, help="N (default: from the core count)")
    ap.add_argument("--layer", type=int, default=7, help="statistics site and first steered block")
    ap.add_argument("--d-sae", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=3, help="timed repetitions (median)")
    ap.add_argument("--root", default=None, help="reuse/keep the JPEG folder here")
    args = ap.parse_args(argv)

    from steerlang.data.batches import image_batches
    from steerlang.data.formats.waterbirds import load_waterbirds
    from steerlang.data.loader import default_workers
    from steerlang.model.clip import random_clip
    from steerlang.model.hooks import steer
    from steerlang.model.prefix import SharedPrefix, first_hooked_layer
    from steerlang.model.sae.core import SAE, SAEConfig, SAEHook
    from steerlang.pipeline.statistics import StatsSpec, compute_statistics
    from steerlang.plan import FeatureEdit, InterventionPlan, SitePlan

    device = torch.device(args.device)
    on_gpu = device.type == "cuda"
    n_img = args.images or (2048 if on_gpu else 48)
    batch = args.batch or (256 if on_gpu else 16)
    workers = args.workers if args.workers is not None else max(1, default_workers())
    d_sae = args.d_sae or (49152 if on_gpu else 8192)

    tmp = None
    if args.root:
        root = Path(args.root)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="steer_e2e_")
        root = Path(tmp.name) / "waterbirds"
    if not (root / "metadata.csv").is_file():
        t0 = time.perf_counter()
        make_jpeg_waterbirds(root, n_img)
        print(f"wrote JPEGs in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    table = load_waterbirds(root)
    idx = np.arange(min(n_img, len(table)))
    n_img = len(idx)

    handle = random_clip(args.model, device=device, seed=0)
    pre = handle.preprocess
    n_layers = handle.n_layers
    cfg = SAEConfig(
        d_in=handle.width, d_sae=d_sae, hook=SAEHook(layer=args.layer, site="resid_post")
    )
    sae = SAE.random(cfg, seed=0, device=device)
    sae.requires_grad_(False)
    saes = {(args.layer, "resid_post"): sae}
    spec = StatsSpec(args.layer, "resid_post", "all")
    rng = np.random.default_rng(0)
    concepts = {"a": rng.random(len(table)) < 0.3}

    # ---------------------------------------------------------------- loading
    preloaded = list(image_batches(table, idx, pre, batch, device=device, workers=0))

    def stats_over(batches: Any) -> None:
        compute_statistics(handle, saes, [spec], batches, concepts, device=device)

    def timed(fn: Any) -> float:
        _sync(device)
        t = time.perf_counter()
        fn()
        _sync(device)
        return time.perf_counter() - t

    passes: dict[str, Any] = {
        "preloaded": lambda: stats_over(iter(preloaded)),
        "workers_0": lambda: stats_over(
            image_batches(table, idx, pre, batch, device=device, workers=0)
        ),
        f"workers_{workers}": lambda: stats_over(
            image_batches(table, idx, pre, batch, device=device, workers=workers)
        ),
    }
    if on_gpu:
        from steerlang.data.loader import loader_batches

        passes["gpu_decode"] = lambda: stats_over(
            loader_batches(
                table, idx, pre, batch, device=device, workers=workers, decode_on_device=True
            )
        )
    for fn in passes.values():  # warm-up: allocator, kernels, page cache
        timed(fn)
    times: dict[str, list[float]] = {k: [] for k in passes}
    for _ in range(args.repeats):  # interleaved, so load drift hits every variant alike
        for k, fn in passes.items():
            times[k].append(timed(fn))
    med = {k: statistics.median(v) for k, v in times.items()}
    load_ratio = {k: med["preloaded"] / med[k] for k in passes if k != "preloaded"}

    # ---------------------------------------------------------------- evaluation
    edits = [
        FeatureEdit(feature=f, op="suppress", tokens="all", rule="r", rule_index=0)  # type: ignore[arg-type]
        for f in range(0, min(d_sae, 512), 4)
    ]
    plan = InterventionPlan(
        recipe="bench",
        model=handle.ref,
        sites=[SitePlan(layer=args.layer, site="resid_post", sae="mem", edits=edits)],  # type: ignore[arg-type]
    )
    first = first_hooked_layer(plan)
    assert first is not None
    ideal = 1 + (n_layers - first) / n_layers
    eval_px = [px for _, px in preloaded[: max(1, min(len(preloaded), 4))]]

    def plain() -> None:
        with torch.inference_mode():
            for px in eval_px:
                handle.encode_image(px)

    def evaluation(shared_prefix: bool) -> None:
        shared = SharedPrefix(handle, first if shared_prefix else None)
        with torch.inference_mode():
            for px in eval_px:
                with shared.capture():
                    handle.encode_image(px)
                with steer(handle, plan, saes), shared.replay():
                    handle.encode_image(px)

    evals: dict[str, Any] = {
        "plain": plain,
        "eval_full": lambda: evaluation(False),
        "eval_shared": lambda: evaluation(True),
    }
    for fn in evals.values():
        timed(fn)
    et: dict[str, list[float]] = {k: [] for k in evals}
    for _ in range(args.repeats):
        for k, fn in evals.items():
            et[k].append(timed(fn))
    emed = {k: statistics.median(v) for k, v in et.items()}
    cost_full = emed["eval_full"] / emed["plain"]
    cost_shared = emed["eval_shared"] / emed["plain"]

    name = (
        torch.cuda.get_device_name(device)
        if on_gpu
        else f"cpu ({torch.get_num_threads()} threads, {os.cpu_count()} cores)"
    )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    best_load = max(load_ratio.values())
    target_load = 0.8 if on_gpu else 0.9
    print(f"device            {name}   (load average {load:.2f} at the end)")
    print(f"model             {args.model} (random weights), SAE {d_sae} latents at L{args.layer}")
    print(f"images            {n_img} JPEGs 500x375, batch {batch}, {args.repeats} repeats")
    for k in passes:
        extra = "" if k == "preloaded" else f"   files/preloaded {load_ratio[k]:.3f}"
        print(f"stats {k:<12}{n_img / med[k]:10.1f} img/s{extra}")
    print(
        f"eval / plain      full {cost_full:.3f}   shared prefix {cost_shared:.3f}   ideal {ideal:.3f}"
    )
    result = {
        "benchmark": "e2e_throughput",
        "device": name,
        "load_average": round(load, 2),
        "model": f"{args.model} (random)",
        "images": n_img,
        "batch": batch,
        "workers": workers,
        "layer": args.layer,
        "d_sae": d_sae,
        "repeats": args.repeats,
        "stats_img_per_s": {k: round(n_img / v, 2) for k, v in med.items()},
        "load_ratio": {k: round(v, 4) for k, v in load_ratio.items()},
        "load_target": target_load,
        "load_meets_target": best_load >= target_load,
        "eval_cost_full": round(cost_full, 4),
        "eval_cost_shared": round(cost_shared, 4),
        "eval_ideal": round(ideal, 4),
        "eval_shared_over_ideal": round(cost_shared / ideal, 4),
        "eval_meets_target": cost_shared <= 1.05 * ideal,
    }
    print(json.dumps(result))
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
