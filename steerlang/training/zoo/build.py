"""`steer zoo build`: world → tiny CLIP → one SAE per layer → model-card numbers.

Every stage is seeded, so the same command on the same kind of device rebuilds the same weights.
Outputs (in `out`, the package's `weights/` folder by default), each written atomically:

    tiny_clip.safetensors          the CLIP (compact fp16, see steerlang.zoo.model)
    sae/L{layer}/resid_post/       one SAE per layer, in steerlang's SAE format
    zoo_card.json                  configs, timings and the measured properties (docs/zoo.md)
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from steerlang.files import atomic_write_json
from steerlang.training.zoo.train import TrainConfig
from steerlang.zoo.model import CARD_FILE, N_LAYERS
from steerlang.zoo.world import GENERATOR_VERSION, WorldConfig

SAE_SITE = "resid_post"

# SAE training for the zoo (steerlang.training.trainer.TrainConfig fields).
SAE_DEFAULTS: dict[str, Any] = {
    "arch": "relu",
    "expansion": 8,
    "l1": 1.0,
    "steps": 800,
    "batch_tokens": 2048,
    "lr": 1e-3,
    "warmup_steps": 100,
    # Per-token standardisation (as the ViT-Prisma suite trains): a clamp value s then reads
    # on the same per-token scale as in the paper (docs/zoo.md).
    "input_norm": "per_token_ln",
}
SAE_IMAGES = 3000  # world images whose tokens (17 per image) train the SAEs

# The domain SAEs of steerlang.zoo.ZOO_DOMAIN_SAES: trained with the same trainer as
# `steer train-sae` on one zoo domain's images. CelebA as its SAE was trained for the paper's
# disentanglement experiment: TopK on patch tokens only. k scales the paper-suite's k = 128 on
# ViT-B's 768 dimensions to the tiny CLIP's width: round(128 * 128 / 768) = 21. The images are
# `SAE_IMAGES` faces drawn like the CelebA training split (steerlang.zoo.splits
# .celeba_like_faces), the general SAEs' image budget: the 672 training faces alone are ten
# tokens per latent.
DOMAIN_SAE_TRAINING: dict[str, dict[str, Any]] = {
    "celeba": {
        "tokens": "patches",
        "label_column": "Male",
        "classes": ["woman", "man"],
        "sae": {**SAE_DEFAULTS, "arch": "topk", "k": 21},
    },
}

Log = Callable[[str], None]


def _stage_progress(enabled: bool) -> tuple[Any, Callable[[str, int, int, dict[str, float]], None]]:
    """A rich Progress (or None) and a callback for `train_clip`'s progress events."""
    if not enabled:
        return None, lambda *a: None
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    p = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
    )
    tasks: dict[str, Any] = {}
    names = {"world": "generating SynthWorld", "clip": "training CLIP"}

    def cb(stage: str, done: int, total: int, info: dict[str, float]) -> None:
        if stage not in tasks:
            tasks[stage] = p.add_task(names.get(stage, stage), total=total, info="")
        text = " ".join(f"{k} {v:.3f}" for k, v in info.items())
        p.update(tasks[stage], completed=done, info=text)

    return p, cb


def build_zoo(
    out: Path,
    *,
    device: str = "cpu",
    train: TrainConfig | None = None,
    world: WorldConfig | None = None,
    saes: bool = True,
    sae_overrides: dict[str, Any] | None = None,
    sae_images: int = SAE_IMAGES,
    layers: list[int] | None = None,
    threads: int = 1,
    reuse_clip: bool = False,
    progress: bool = False,
    log: Log | None = None,
) -> dict[str, Any]:
    """Build the zoo into `out`; returns the model card document (also written to out).

    `reuse_clip`: keep the CLIP already in `out` (its weights file and its card's CLIP section,
    whose train and world configs regenerate the same world) and retrain only the SAEs, so a
    change to SAE training does not move the model every recipe's baseline is measured on.
    """
    from steerlang.training.zoo import evaluate
    from steerlang.zoo import load_zoo_clip
    from steerlang.zoo.model import get_tokenizer
    from steerlang.zoo.world import SynthWorld

    say = log or (lambda s: None)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    if reuse_clip:
        model, card = _reuse_clip(out, device)
        train = TrainConfig(**card["train_config"])
        world_cfg = WorldConfig(**card["world_config"])
        say(f"reusing the CLIP in {out} (seed {train.seed}); retraining the SAEs only")
    else:
        train = train or TrainConfig()
        world_cfg = world or WorldConfig()
        model, tlog, clip_path = _train_clip(out, train, world_cfg, device, threads, progress, say)
        card = _card(train, world_cfg, device, threads, tlog, clip_path)
        # Everything below runs on the CLIP as written (fp16 on disk), the model every recipe
        # loads, so a full build and `--reuse-clip` train the same SAEs from the same weights.
        model, _, _ = load_zoo_clip(device, weights=clip_path)
    tok = get_tokenizer()
    w = SynthWorld(train.seed, world_cfg)
    card["zero_shot"] = evaluate.all_metrics(model, tok, w)
    if saes:
        card["saes"] = build_saes(
            model,
            out,
            device=device,
            world=w,
            overrides=sae_overrides,
            n_images=sae_images,
            layers=layers,
            progress=progress,
            log=say,
        )
        card["domain_saes"] = build_domain_saes(
            model,
            out,
            device=device,
            world=w,
            overrides=sae_overrides,
            n_images=sae_images,
            layers=layers,
            progress=progress,
            log=say,
        )
        atomic_write_json(out / CARD_FILE, card)  # the weights are safe before the checks below
        card["phenomena"] = measure_phenomena(model, tok, w, out, log=say)
    card["build_seconds"] = round(time.time() - t0, 1)
    atomic_write_json(out / CARD_FILE, card)
    return card


def _reuse_clip(out: Path, device: str) -> tuple[Any, dict[str, Any]]:
    """The CLIP and the card head of an already built zoo folder; a clear error when the
    folder holds no built zoo."""
    from steerlang.errors import CheckpointError
    from steerlang.zoo import load_zoo_clip
    from steerlang.zoo.model import CLIP_WEIGHTS_FILE

    card_path = out / CARD_FILE
    try:
        old = json.loads(card_path.read_text(encoding="utf-8"))
        head = {k: old[k] for k in _CARD_HEAD}
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CheckpointError(
            f"--reuse-clip: {card_path} is not a zoo model card ({e})",
            help="point --out at a folder `steer zoo build` wrote, or build without --reuse-clip",
        ) from e
    model, _, _ = load_zoo_clip(device, weights=out / CLIP_WEIGHTS_FILE)
    return model, head


# The card's fields that describe the CLIP (kept by --reuse-clip; `_card` writes them).
_CARD_HEAD = (
    "model",
    "generator_version",
    "seed",
    "device",
    "threads",
    "platform",
    "torch",
    "train_config",
    "world_config",
    "clip",
)


def _train_clip(
    out: Path,
    train: TrainConfig,
    world_cfg: WorldConfig,
    device: str,
    threads: int,
    progress: bool,
    say: Log,
) -> tuple[Any, dict[str, Any], Path]:
    """Train the tiny CLIP and write its weights; (model, training log, weights path)."""
    import torch

    from steerlang.training.zoo.train import train_clip
    from steerlang.zoo.model import CLIP_WEIGHTS_FILE, save_weights

    bar, cb = _stage_progress(progress)
    if bar is not None:
        bar.start()
    try:
        model, tlog = train_clip(train, device, world_cfg, progress=cb, threads=threads)
    finally:
        if bar is not None:
            bar.stop()
    say(
        f"CLIP trained: {train.steps} steps in {tlog['train_seconds']:.0f}s "
        f"(world {tlog['world_seconds']:.0f}s), final loss {tlog['final_loss']:.3f}"
    )
    meta = {
        "model": "steer-tiny-clip",
        "generator_version": str(GENERATOR_VERSION),
        "train_config": json.dumps(train.to_dict()),
        "world_config": json.dumps(world_cfg.to_dict()),
        "device": device,
        "torch": torch.__version__,
    }
    clip_path = save_weights(model, tlog["token_ids"], out / CLIP_WEIGHTS_FILE, meta)
    say(f"wrote {clip_path} ({clip_path.stat().st_size / 1e6:.1f} MB)")
    return model, tlog, clip_path


def _card(
    train: TrainConfig,
    world_cfg: WorldConfig,
    device: str,
    threads: int,
    tlog: dict[str, Any],
    clip_path: Path,
) -> dict[str, Any]:
    """The model card's head: how the CLIP was built and what its training measured."""
    import torch

    return {
        "model": "steer-tiny-clip",
        "generator_version": GENERATOR_VERSION,
        "seed": train.seed,
        "device": device,
        "threads": threads,
        "platform": platform.platform(),
        "torch": torch.__version__,
        "train_config": train.to_dict(),
        "world_config": world_cfg.to_dict(),
        "clip": {
            "train_seconds": tlog["train_seconds"],
            "world_seconds": tlog["world_seconds"],
            "final_loss": tlog["final_loss"],
            "loss_curve": tlog["loss_curve"],
            "logit_scale": tlog["logit_scale"],
            "weights_bytes": clip_path.stat().st_size,
        },
    }


PHENOMENA_LAYERS = (3, 5, 7, 9)
PHENOMENA_THRESHOLDS = (0.2, 0.3)


def measure_phenomena(
    model: Any, tokenizer: Any, world: Any, weights_dir: Path, log: Log | None = None
) -> dict[str, Any]:
    """The SAE interventions of `steerlang.training.zoo.phenomena` at a few layers and thresholds."""
    from steerlang.model.sae.load import load_sae
    from steerlang.training.zoo import phenomena
    from steerlang.zoo import sae_subdir

    doc: dict[str, Any] = {"waterbirds": [], "typographic": []}
    for layer in PHENOMENA_LAYERS:
        folder = Path(weights_dir) / sae_subdir(layer, SAE_SITE)
        if not folder.is_dir():
            continue
        sae = load_sae(folder)
        for thr in PHENOMENA_THRESHOLDS:
            wb = phenomena.waterbirds_fix(model, tokenizer, world, sae, layer, thr)
            ty = phenomena.typographic_defence(model, tokenizer, world, sae, layer, thr)
            doc["waterbirds"].append(wb)
            doc["typographic"].append(ty)
            if log:
                b, s = wb["baseline"], wb["steered"]
                tb, ts = ty["baseline"], ty["steered"]
                log(
                    f"L{layer} thr {thr}: waterbirds avg {b['average']:.3f}->{s['average']:.3f} "
                    f"WGA {b['worst_group']:.3f}->{s['worst_group']:.3f} ({wb['n_features']} "
                    f"features); typographic attacked {tb['attacked_accuracy']:.3f}->"
                    f"{ts['attacked_accuracy']:.3f} clean {tb['clean_accuracy']:.3f}->"
                    f"{ts['clean_accuracy']:.3f} ({ty['n_features']} features)"
                )
    return doc


def _zoo_handle(model: Any, device: str) -> Any:
    """A ClipHandle of the zoo CLIP being built (the trainer's model interface)."""
    import torch

    from steerlang.model.clip import ClipHandle
    from steerlang.training.zoo.train import to_model_input
    from steerlang.zoo import splits
    from steerlang.zoo.model import get_tokenizer

    return ClipHandle(
        model=model.eval(),
        preprocess=lambda im: to_model_input(torch.from_numpy(splits.images_array([im])))[0],
        tokenizer=get_tokenizer(),
        ref="zoo:tiny-clip",
        device=torch.device(device),
    )


def build_saes(
    model: Any,
    out: Path,
    *,
    device: str,
    world: Any,
    overrides: dict[str, Any] | None = None,
    n_images: int = SAE_IMAGES,
    layers: list[int] | None = None,
    progress: bool = False,
    log: Log | None = None,
) -> dict[str, Any]:
    """Train one SAE per layer (resid_post, all tokens) with steerlang's trainer on images from
    a world stream the CLIP never saw; save them under out/sae/L{l}/resid_post."""

    from steerlang.training.trainer import TrainConfig as SAETrainConfig
    from steerlang.training.trainer import train_site_saes
    from steerlang.training.zoo.train import to_model_input
    from steerlang.zoo import splits

    layers = list(range(N_LAYERS)) if layers is None else layers
    cfg = SAETrainConfig(**{**SAE_DEFAULTS, **(overrides or {}), "device": device})
    handle = _zoo_handle(model, device)
    images, _, _ = world.batch(10_000_000, n_images)  # a stream far past the training samples
    pixels = to_model_input(images)
    wb = [r for r in splits.waterbirds_records(world) if r["split"] == "val"]
    eval_pixels = to_model_input(splits.images_array([r["image"] for r in wb]))
    sites = [f"blocks.{layer}.hook_{SAE_SITE}" for layer in layers]
    t = time.time()
    trained = train_site_saes(
        handle,
        sites,
        pixels,
        cfg,
        tokens="all",
        eval_source=eval_pixels,
        eval_labels=[r["y"] for r in wb],
        classes=["landbird", "waterbird"],
        batch_size=256,
        model_ref="zoo:tiny-clip",
        progress=progress,
        log=log,
    )
    from steerlang.model.sae.load import save_sae
    from steerlang.zoo import sae_subdir

    doc: dict[str, Any] = {"config": cfg.model_dump(mode="json"), "images": n_images, "layers": {}}
    for layer, site in zip(layers, sites, strict=True):
        res = trained[site]
        save_sae(res.sae, out / sae_subdir(layer, SAE_SITE))
        doc["layers"][str(layer)] = {
            "train": res.train.final,
            "metrics": res.metrics.to_dict() if res.metrics is not None else None,
        }
    doc["seconds"] = round(time.time() - t, 1)
    return doc


def build_domain_saes(
    model: Any,
    out: Path,
    *,
    device: str,
    world: Any,
    overrides: dict[str, Any] | None = None,
    n_images: int = SAE_IMAGES,
    layers: list[int] | None = None,
    progress: bool = False,
    log: Log | None = None,
) -> dict[str, Any]:
    """Train the domain SAEs (`DOMAIN_SAE_TRAINING`) whose layer is among `layers` (all when
    None) on their domain's images, measure them on the domain dataset's validation split, and
    save them under out/sae/{domain}/L{l}/{site}."""
    from steerlang.model.sae.load import save_sae
    from steerlang.training.trainer import TrainConfig as SAETrainConfig
    from steerlang.training.trainer import train_site_saes
    from steerlang.training.zoo.train import to_model_input
    from steerlang.zoo import ZOO_DOMAIN_SAES, sae_subdir, splits

    records = {"celeba": splits.celeba_records}
    train_images = {"celeba": splits.celeba_like_faces}
    doc: dict[str, Any] = {}
    handle = _zoo_handle(model, device)
    for domain, (layer, site) in ZOO_DOMAIN_SAES.items():
        if layers is not None and layer not in layers:
            continue
        how = DOMAIN_SAE_TRAINING[domain]
        cfg = SAETrainConfig(**{**how["sae"], **(overrides or {}), "device": device})
        train = train_images[domain](world, n_images)
        val = [r for r in records[domain](world) if r["split"] == "val"]
        hook = f"blocks.{layer}.hook_{site}"
        t = time.time()
        res = train_site_saes(
            handle,
            [hook],
            to_model_input(splits.images_array(train)),
            cfg,
            tokens=how["tokens"],
            eval_source=to_model_input(splits.images_array([r["image"] for r in val])),
            eval_labels=[r["attrs"][how["label_column"]] for r in val],
            classes=how["classes"],
            batch_size=256,
            model_ref="zoo:tiny-clip",
            progress=progress,
            log=log,
        )[hook]
        save_sae(res.sae, out / sae_subdir(layer, site, domain))
        doc[domain] = {
            "layer": layer,
            "site": site,
            "tokens": how["tokens"],
            "images": len(train),
            "eval_images": len(val),
            "config": cfg.model_dump(mode="json"),
            "train": res.train.final,
            "metrics": res.metrics.to_dict() if res.metrics is not None else None,
            "seconds": round(time.time() - t, 1),
        }
    return doc
