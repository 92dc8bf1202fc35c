"""Steering overhead: steered forward ÷ plain forward, fast path vs naive full splice.

Setup (targets and measured ratios: docs/runtime.md, "Benchmark"): open_clip ViT-B-32 (random
weights: the ratio does not depend on the values), one 49,152-latent SAE at
blocks.7.hook_resid_post with the released Prisma suite's normalisation (per-token layer norm +
b_dec pre-centring), a plan suppressing 100 features on all tokens. ReLU and TopK (k=64) SAEs; `fast` is steerlang's hook, `full` the naive splice
(encode every latent, decode edited and clean, add the error term).

All configurations are timed in one process, interleaved repeat by repeat (so drift and
other load on the machine hit them equally), and compared by medians. A steered run installs
the hooks, then times one forward with them installed (the ratio); the install (gathering the
edited SAE rows, once per `steer` block) is timed apart and reported as `install_ms_*`.
The last line printed is one JSON object with every ratio.

    python benchmarks/steer_overhead.py [--device cpu|cuda] [--batch N] [--repeats R]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from contextlib import nullcontext

import torch

from steerlang.model.clip import random_clip
from steerlang.model.hooks import steer
from steerlang.model.sae.core import SAE, SAEConfig, SAEHook
from steerlang.plan import FeatureEdit, InterventionPlan, SitePlan

LAYER = 7
D_SAE = 49_152
N_FEATURES = 100
TOPK_K = 64


def make_sae(activation: str, device: torch.device) -> SAE:
    cfg = SAEConfig(
        d_in=768,
        d_sae=D_SAE,
        activation=activation,  # type: ignore[arg-type]
        k=TOPK_K if activation == "topk" else None,
        pre_center=True,
        input_norm="per_token_ln",
        hook=SAEHook(layer=LAYER, site="resid_post"),
    )
    return SAE.random(cfg, seed=0, device=device)


def make_plan() -> InterventionPlan:
    g = torch.Generator().manual_seed(0)
    feats = torch.randperm(D_SAE, generator=g)[:N_FEATURES].tolist()
    edits = [FeatureEdit(feature=int(f), op="suppress", rule="bench", rule_index=0) for f in feats]
    site = SitePlan(layer=LAYER, site="resid_post", sae="bench", edits=edits)
    return InterventionPlan(recipe="bench", model="openclip:ViT-B-32@random", sites=[site])


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--batch", type=int, default=None, help="images per forward")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument(
        "--dtype",
        default=None,
        choices=["fp32", "bf16", "fp16"],
        help="autocast dtype (default fp32 on CPU, bf16 on CUDA)",
    )
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("CUDA is not available on this machine", file=sys.stderr)
        return 2
    batch = args.batch or (8 if device.type == "cpu" else 256)
    repeats = args.repeats or (7 if device.type == "cpu" else 30)
    dtype_name = args.dtype or ("fp32" if device.type == "cpu" else "bf16")
    amp_dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[dtype_name]

    torch.manual_seed(0)
    handle = random_clip("ViT-B-32", device=device, seed=0)
    pixels = torch.randn(batch, 3, 224, 224, device=device)
    plan = make_plan()
    saes = {"relu": make_sae("relu", device), "topk": make_sae("topk", device)}

    def amp():  # noqa: ANN202
        if amp_dtype is None:
            return nullcontext()
        return torch.autocast(device_type=device.type, dtype=amp_dtype)

    def forward() -> None:
        with torch.inference_mode(), amp():
            handle.model.encode_image(pixels)

    install_times: dict[str, list[float]] = {}

    def steered(arch: str, mode: str) -> Callable[[], float]:
        """Install the hooks (timed apart), then time one forward with them installed."""
        name = f"{arch}_{mode}"

        def run() -> float:
            sync(device)
            t0 = time.perf_counter()
            with steer(handle, plan, {(LAYER, "resid_post"): saes[arch]}, mode=mode):  # type: ignore[arg-type]
                sync(device)
                t1 = time.perf_counter()
                forward()
                sync(device)
                t2 = time.perf_counter()
            install_times.setdefault(name, []).append(t1 - t0)
            return t2 - t1

        return run

    def plain() -> float:
        sync(device)
        t0 = time.perf_counter()
        forward()
        sync(device)
        return time.perf_counter() - t0

    configs: dict[str, Callable[[], float]] = {"plain": plain}
    for arch in ("relu", "topk"):
        for mode in ("fast", "full"):
            configs[f"{arch}_{mode}"] = steered(arch, mode)

    # Sanity, in fp32: the plan really changes the output (a benchmark of a no-op would be
    # meaningless) and the fast path equals the naive splice. (Under bf16 autocast the naive
    # splice itself is imprecise: its error term x - x_hat is formed in bf16.)
    with torch.inference_mode():
        base = handle.model.encode_image(pixels[:2]).float()
        for arch in ("relu", "topk"):
            with steer(handle, plan, {(LAYER, "resid_post"): saes[arch]}):
                fast = handle.model.encode_image(pixels[:2]).float()
            with steer(handle, plan, {(LAYER, "resid_post"): saes[arch]}, mode="full"):
                full = handle.model.encode_image(pixels[:2]).float()
            tol = 1e-3
            moved = float((fast - base).abs().max())
            gap = float((fast - full).abs().max())
            print(f"check {arch}: |fast-base|max={moved:.3e}  |fast-full|max={gap:.3e}")
            if not moved > 0 or gap > tol * max(1.0, float(base.abs().max())):
                print(f"sanity check failed for {arch}", file=sys.stderr)
                return 1

    for _ in range(args.warmup):
        for fn in configs.values():
            fn()
    install_times.clear()

    times: dict[str, list[float]] = {k: [] for k in configs}
    order = list(configs)
    for r in range(repeats):
        # Rotate the order each repeat so no configuration always runs first after a pause.
        rot = order[r % len(order) :] + order[: r % len(order)]
        for name in rot:
            times[name].append(configs[name]())

    med = {k: statistics.median(v) for k, v in times.items()}
    ratios = {k: med[k] / med["plain"] for k in configs if k != "plain"}
    print(
        f"device={device.type} ({torch.cuda.get_device_name() if device.type == 'cuda' else platform.processor() or platform.machine()}), "
        f"threads={torch.get_num_threads()}, batch={batch} images x 50 tokens, dtype={dtype_name}, "
        f"repeats={repeats}, SAE {D_SAE} latents at layer {LAYER}, suppress {N_FEATURES} features"
    )
    install = {k: statistics.median(v) for k, v in install_times.items()}
    print(f"{'config':<12} {'median ms':>10} {'ratio':>7} {'install ms':>11}")
    for k in configs:
        inst = f"{install[k] * 1e3:>11.2f}" if k in install else f"{'':>11}"
        print(f"{k:<12} {med[k] * 1e3:>10.2f} {med[k] / med['plain']:>7.3f} {inst}")
    targets = {"relu_fast": 1.10 if device.type == "cpu" else 1.03, "topk_fast": 1.30}
    for k, t in targets.items():
        print(f"target {k} <= {t}: {'met' if ratios[k] <= t else 'NOT met'} ({ratios[k]:.3f})")
    result = {
        "benchmark": "steer_overhead",
        "device": device.type,
        "batch": batch,
        "dtype": dtype_name,
        "repeats": repeats,
        "plain_ms": round(med["plain"] * 1e3, 3),
        **{f"ratio_{k}": round(v, 4) for k, v in ratios.items()},
        **{f"install_ms_{k}": round(v * 1e3, 3) for k, v in install.items()},
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
