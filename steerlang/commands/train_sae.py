"""`steer train-sae`: train SAEs on a model's site activations and save them in our format,
with their training config and held-out quality metrics in the SAE's metadata."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from steerlang.commands.options import add_device_option
from steerlang.facts import SITE_KINDS


def register(subparsers: argparse._SubParsersAction) -> None:
    from steerlang.commands.sae_stats import add_data_args

    p = subparsers.add_parser(
        "train-sae",
        help="train an SAE (ReLU+L1 or TopK+AuxK) on a model site; saves it with its metrics",
        description=(
            "Train sparse autoencoders on a model's activations at one or more layers (one "
            "activation pass serves every layer), then measure them on held-out images (FVU, "
            "L0 for CLS and patches, dead/dense latents, zero-shot accuracy recovered) and save "
            "them in steerlang's format. Example: steer train-sae --model default --layer 7 "
            "--dataset waterbirds --out saes/L7 --arch topk --k 16"
        ),
    )
    p.add_argument(
        "--model", default="default", metavar="REF", help="model name or reference (default: zoo)"
    )
    p.add_argument(
        "--layer",
        required=True,
        metavar="L",
        help="layer(s): 7, 0..11 or 3,5 (several layers write OUT/L{layer}/{site})",
    )
    p.add_argument("--site", default="resid_post", choices=SITE_KINDS, help="site kind")
    p.add_argument("--tokens", default="all", choices=("all", "cls", "patches"), help="token scope")
    add_data_args(p)
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    _add_sae_args(p.add_argument_group("SAE and optimisation"))
    _add_run_args(p.add_argument_group("run"))
    p.set_defaults(func=_run)


def _add_sae_args(g: argparse._ArgumentGroup) -> None:
    """The SAE's shape and the optimiser (each default is TrainConfig's, shown in the help)."""
    g.add_argument("--arch", default="relu", choices=("relu", "topk"), help="activation")
    g.add_argument("--k", type=int, default=32, help="topk: active latents per token (32)")
    g.add_argument("--expansion", type=int, default=8, help="d_sae = E * d_model (8)")
    g.add_argument("--d-sae", type=int, default=None, help="width (overrides --expansion)")
    g.add_argument("--l1", type=float, default=None, help="relu: L1 coefficient")
    g.add_argument("--steps", type=int, default=None, help="optimiser steps (2000)")
    g.add_argument("--batch-tokens", type=int, default=None, help="tokens per step (1024)")
    g.add_argument("--lr", type=float, default=None, help="peak learning rate (1e-3)")
    g.add_argument("--warmup-steps", type=int, default=None, help="linear warmup steps (100)")
    g.add_argument(
        "--b-dec-init",
        choices=("geometric_median", "mean", "zeros"),
        default=None,
        help="decoder bias initialisation (geometric_median)",
    )
    g.add_argument(
        "--no-normalize", action="store_true", help="do not rescale inputs to mean norm √d"
    )
    g.add_argument(
        "--input-norm",
        choices=("scalar", "per_token_ln"),
        default="scalar",
        help="scalar: one scale so the mean token norm is √d; per_token_ln: standardise each "
        "token (mean 0, std 1) like the ViT-Prisma suite (default scalar)",
    )
    g.add_argument("--seed", type=int, default=0)


def _add_run_args(r: argparse._ArgumentGroup) -> None:
    """Device, activation handling, evaluation, checkpoints and output."""
    add_device_option(r)
    r.add_argument(
        "--cache-acts",
        metavar="DIR",
        help="cache activations here (content-keyed safetensors shards) and reuse them",
    )
    r.add_argument(
        "--acts-dtype",
        choices=("float32", "float16", "bfloat16"),
        default="float32",
        help="precision of held/cached activations (float16 halves memory and disk)",
    )
    r.add_argument("--max-images", type=int, default=None, help="train on at most N images")
    r.add_argument(
        "--eval-images",
        type=int,
        default=None,
        help="held-out images for the metrics (0 skips evaluation; default: up to 512 of the "
        "val split, or min(512, 10%%) of the images held out)",
    )
    r.add_argument("--batch-size", type=int, default=64, help="images per forward pass")
    r.add_argument(
        "--max-memory-gb",
        type=float,
        default=8.0,
        help="hold activations in memory up to this size, else stream them (default 8)",
    )
    r.add_argument("--checkpoint-every", type=int, default=None, metavar="N")
    r.add_argument("--checkpoint-dir", default=None, help="default: OUT/checkpoints")
    r.add_argument("--resume", action="store_true", help="continue from the newest checkpoint")
    r.add_argument("--no-accuracy", action="store_true", help="skip zero-shot accuracy")
    r.add_argument("--json", action="store_true", help="print results as JSON on stdout")
    r.add_argument("-v", "--verbose", action="store_true", help="log training progress lines")


def _run(args: argparse.Namespace) -> int:
    from steerlang.pipeline.bind import resolve_device
    from steerlang.pipeline.distributed import is_main
    from steerlang.profile import load_profile
    from steerlang.training.cli_support import (
        load_data,
        parse_layers,
        train_eval_tables,
    )

    quiet = args.json or not is_main()

    def log(msg: str) -> None:
        if (args.verbose or not quiet) and is_main():
            print(msg, file=sys.stderr)

    profile = load_profile(args.profile)
    device = resolve_device(args.device or profile.device)
    layers = parse_layers(args.layer)
    base_cfg = _train_config(args, device)
    handle = _load_model(profile.model_ref(args.model), device, layers)
    choice = load_data(args.data, args.dataset, profile, split=args.split)
    train_table, eval_table = train_eval_tables(
        choice, eval_images=args.eval_images, seed=args.seed
    )
    trained = _train_sites(args, handle, layers, train_table, choice.label, base_cfg, log)
    # Under torchrun every rank trained the same SAEs and measures a share of the held-out
    # images (docs/scale.md); rank 0 alone saves and prints them.
    rows = _evaluate_and_save(args, handle, trained, eval_table, choice.label, log)
    if not is_main():
        return 0
    if args.json:
        _print_json(handle.ref, choice.label, trained)
    elif rows:
        from steerlang.commands.sae_stats import print_table, stats_table

        print_table(stats_table(rows, title=f"held-out metrics ({choice.label})"))
    return 0


def _train_config(args: argparse.Namespace, device: str) -> Any:
    """The `TrainConfig` the options describe (checkpoints under OUT/checkpoints by default)."""
    from steerlang.errors import SteerError
    from steerlang.training.trainer import TrainConfig

    overrides = {
        "l1": args.l1,
        "steps": args.steps,
        "batch_tokens": args.batch_tokens,
        "lr": args.lr,
        "warmup_steps": args.warmup_steps,
        "b_dec_init": args.b_dec_init,
        "d_sae": args.d_sae,
    }
    try:
        return TrainConfig(
            arch=args.arch,
            k=args.k,
            expansion=args.expansion,
            seed=args.seed,
            device=device,
            normalize_input=not args.no_normalize,
            input_norm=args.input_norm,
            checkpoint_every=args.checkpoint_every,
            checkpoint_dir=(
                (args.checkpoint_dir or str(Path(args.out) / "checkpoints"))
                if args.checkpoint_every
                else None
            ),
            **{k: v for k, v in overrides.items() if v is not None},
        )
    except ValueError as e:
        from steerlang.errors import validation_summary

        raise SteerError(
            validation_summary(e, "invalid training options")
            if hasattr(e, "errors")
            else f"invalid training options: {e}",
            help="fix the option named above (steer train-sae --help lists them)",
        ) from None


def _load_model(ref: str, device: str, layers: list[int]) -> Any:
    """The model, after checking that every requested layer exists in it."""
    from steerlang.errors import SteerError
    from steerlang.model.clip import load_model

    handle = load_model(ref, device)
    bad = [layer for layer in layers if layer >= handle.n_layers]
    if bad:
        raise SteerError(
            f"layer(s) {bad} do not exist: {handle.ref} has {handle.n_layers} blocks",
            help=f"use layers 0..{handle.n_layers - 1}",
        )
    return handle


def _train_sites(
    args: argparse.Namespace,
    handle: Any,
    layers: list[int],
    train_table: Any,
    data_label: str,
    base_cfg: Any,
    log: Any,
) -> dict[str, tuple[Any, Any, Path]]:
    """Train one SAE per layer: `{hook name: (sae, training metrics, output folder)}`.

    Activations of all sites come from one pass, held in memory or cached on disk, unless
    they would exceed `--max-memory-gb` without `--cache-acts`: then each site streams its own.
    """
    import torch

    from steerlang.model.sae.core import SAEHook
    from steerlang.model.sites import parse_site
    from steerlang.training.activations import StreamingTokens, collect_activations
    from steerlang.training.trainer import train_sae

    quiet = args.json
    sites = [parse_site((layer, args.site)) for layer in layers]
    n_img = len(train_table) if args.max_images is None else min(len(train_table), args.max_images)
    acts_dtype = getattr(torch, args.acts_dtype)
    est = n_img * handle.n_tokens * handle.width * acts_dtype.itemsize * len(sites)
    stream = args.cache_acts is None and est > args.max_memory_gb * (1 << 30)
    log(
        f"training {len(sites)} SAE(s) on {handle.ref}, {n_img} images of {data_label} "
        f"({'streamed' if stream else 'cached on disk' if args.cache_acts else 'in memory'})"
    )
    from steerlang.pipeline.distributed import world_size

    if world_size() > 1:
        from steerlang.training.sharded_capture import collect_sharded

        acts = collect_sharded(
            handle,
            sites,
            train_table,
            n_img,
            batch_size=args.batch_size,
            dtype=acts_dtype,
            streamed=stream,
            cache_dir=args.cache_acts,
            progress=not quiet,
        )
    else:
        acts = (
            None
            if stream
            else collect_activations(
                handle,
                sites,
                train_table,
                batch_size=args.batch_size,
                dtype=acts_dtype,
                cache_dir=args.cache_acts,
                max_images=args.max_images,
                progress=not quiet,
                log=log,
            )
        )
    many = len(sites) > 1
    trained: dict[str, tuple[Any, Any, Path]] = {}
    for ref in sites:
        name = ref.hook_name
        cfg = base_cfg
        if many and cfg.checkpoint_dir is not None:
            cfg = cfg.model_copy(
                update={"checkpoint_dir": str(Path(cfg.checkpoint_dir) / f"L{ref.layer}")}
            )
        source = (
            StreamingTokens(
                handle,
                ref,
                train_table,
                tokens=args.tokens,
                batch_size=args.batch_size,
                max_images=args.max_images,
            )
            if acts is None
            else acts[name].tokens(args.tokens)
        )
        hook = SAEHook(layer=ref.layer, site=ref.site, tokens=args.tokens, model=handle.ref)
        sae, tm = train_sae(
            source,
            cfg,
            hook=hook,
            resume=args.resume,
            progress=not quiet,
            log=log if args.verbose else None,
            description=f"training {name}",
        )
        out = Path(args.out) / f"L{ref.layer}" / ref.site if many else Path(args.out)
        trained[name] = (sae, tm, out)
        f = tm.final
        log(
            f"{name}: {tm.steps} steps, {tm.tokens_seen} tokens, {tm.seconds:.1f}s; last window "
            f"FVU {f.get('fvu', float('nan')):.4f}, L0 {f.get('l0', float('nan')):.1f}"
        )
    return trained


def _evaluate_and_save(
    args: argparse.Namespace,
    handle: Any,
    trained: dict[str, tuple[Any, Any, Path]],
    eval_table: Any,
    data_label: str,
    log: Any,
) -> list[dict[str, Any]]:
    """Measure the SAEs on the held-out rows, store the metrics in each SAE's metadata and
    save it; returns the metric rows for the table."""
    from steerlang.model.sae.load import save_sae
    from steerlang.pipeline.distributed import is_main
    from steerlang.training.cli_support import DEFAULT_PROMPT, zero_shot_labels
    from steerlang.training.sae_metrics import evaluate_saes

    results = {}
    if eval_table is not None:
        labels, classes = (
            (None, None) if args.no_accuracy else zero_shot_labels(eval_table, args.label_column)
        )
        results = evaluate_saes(
            handle,
            {name: t[0] for name, t in trained.items()},
            eval_table,
            labels=labels,
            classes=classes,
            templates=args.prompt or (DEFAULT_PROMPT,),
            batch_size=args.batch_size,
            progress=not args.json and is_main(),
        )
    rows = []
    for name, (sae, _, out) in trained.items():
        if name in results:
            sae.cfg.metadata["metrics"] = {
                **results[name].to_dict(),
                "data": data_label,
                "eval_images": len(eval_table) if eval_table is not None else 0,
            }
            rows.append(results[name].to_dict())
        if is_main():  # under torchrun only rank 0 writes
            save_sae(sae, out)
            log(f"saved {name} -> {out}")
    return rows


def _print_json(model_ref: str, data_label: str, trained: dict[str, tuple[Any, Any, Path]]) -> None:
    from steerlang.commands.sae_stats import _jsonable

    doc = {
        "model": model_ref,
        "data": data_label,
        "saes": {
            name: {
                "path": str(out),
                "d_sae": sae.d_sae,
                "training": sae.cfg.metadata.get("training"),
                "metrics": sae.cfg.metadata.get("metrics"),
            }
            for name, (sae, _, out) in trained.items()
        },
    }
    json.dump(_jsonable(doc), sys.stdout, indent=2)
    sys.stdout.write("\n")
