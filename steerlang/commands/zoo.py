"""`steer zoo build` / `steer zoo info`: the embedded tiny CLIP and its SAEs."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from steerlang.commands.options import add_device_option


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "zoo",
        help="the embedded default: build or describe the tiny CLIP and its SAEs",
        description=(
            "The zoo is a tiny CLIP (open_clip architecture, 12 vision blocks) trained on "
            "SynthWorld, plus one SAE per layer; it ships with steerlang so recipes run offline."
        ),
    )
    sub = p.add_subparsers(dest="zoo_command", metavar="ZOO_COMMAND")
    b = sub.add_parser(
        "build",
        help="train the tiny CLIP and its SAEs from scratch (seeded; CPU or GPU)",
        description=(
            "Generate SynthWorld, train the tiny CLIP contrastively, train one SAE per layer "
            "(resid_post) and measure the model card's numbers. The defaults rebuild the "
            "shipped weights; about 15-20 minutes on 2 CPU cores, about 2 on a GPU."
        ),
    )
    b.add_argument(
        "--out",
        metavar="DIR",
        default=None,
        help="output folder (default: the package's weights folder, replacing the shipped zoo)",
    )
    add_device_option(b)
    b.add_argument("--steps", type=int, default=None, help="CLIP optimiser steps")
    b.add_argument("--batch-size", type=int, default=None, help="CLIP batch size")
    b.add_argument("--images", type=int, default=None, help="distinct training images")
    b.add_argument("--seed", type=int, default=0, help="seed of the world, order and init (0)")
    b.add_argument(
        "--threads",
        type=int,
        default=1,
        help="CPU threads (1: reproducible across machines, and fastest on a busy machine)",
    )
    b.add_argument("--sae-steps", type=int, default=None, help="optimiser steps per SAE")
    b.add_argument("--sae-images", type=int, default=None, help="world images for the SAEs")
    b.add_argument(
        "--layers", default=None, metavar="L", help="SAE layers, e.g. 5 or 3,5,7 (default: 0..11)"
    )
    b.add_argument("--skip-saes", action="store_true", help="train only the CLIP")
    b.add_argument(
        "--reuse-clip",
        action="store_true",
        help="keep the CLIP already built in --out and retrain only the SAEs",
    )
    b.add_argument("--json", action="store_true", help="print the model card as JSON")
    b.set_defaults(func=_build)
    i = sub.add_parser("info", help="where the zoo lives, what it is, and its measured numbers")
    i.add_argument("--json", action="store_true", help="print as JSON")
    i.add_argument(
        "--dir", metavar="DIR", default=None, help="a built zoo folder (default: shipped)"
    )
    i.set_defaults(func=_info)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _build(args: argparse.Namespace) -> int:
    from rich.console import Console

    from steerlang.pipeline.bind import resolve_device
    from steerlang.training.zoo.build import build_zoo
    from steerlang.training.zoo.train import TrainConfig
    from steerlang.zoo import zoo_weights_dir

    console = Console(stderr=True)
    out = Path(args.out) if args.out else zoo_weights_dir()
    train = TrainConfig(seed=args.seed)
    for field, value in (
        ("steps", args.steps),
        ("batch_size", args.batch_size),
        ("n_images", args.images),
    ):
        if value is not None:
            setattr(train, field, value)
    device = resolve_device(args.device)
    layers = None
    if args.layers:
        from steerlang.training.cli_support import parse_layers

        layers = parse_layers(args.layers)
    console.print(f"building the zoo into {out} on {device}")
    card = build_zoo(
        out,
        device=device,
        train=train,
        saes=not args.skip_saes,
        threads=args.threads,
        reuse_clip=args.reuse_clip,
        layers=layers,
        **({"sae_images": args.sae_images} if args.sae_images else {}),
        sae_overrides={"steps": args.sae_steps} if args.sae_steps else None,
        progress=True,
        log=lambda s: console.print(s),
    )
    if args.json:
        print(json.dumps(card, indent=2))
    else:
        _print_card(card, out)
    return 0


def _print_card(card: dict[str, Any], out: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    zs = card.get("zero_shot", {})
    t = Table(title=f"steer-tiny-clip ({out})")
    t.add_column("measure")
    t.add_column("value", justify="right")
    wb = zs.get("waterbirds_test")
    if wb:
        t.add_row("waterbirds test: average accuracy", f"{wb['average']:.3f}")
        t.add_row("waterbirds test: worst-group accuracy", f"{wb['worst_group']:.3f}")
        t.add_row(
            "waterbirds test: per group g0..g3", " ".join(f"{x:.2f}" for x in wb["per_group"])
        )
    ty = zs.get("typographic")
    if ty:
        t.add_row("shapes: clean accuracy", f"{ty['clean_accuracy']:.3f}")
        t.add_row("shapes: accuracy with a wrong word written", f"{ty['attacked_accuracy']:.3f}")
    cb = zs.get("celeba_test")
    if cb:
        t.add_row(
            "celeba test (blond hair): average / worst group",
            f"{cb['average']:.3f} / {cb['worst_group']:.3f}",
        )
    clip = card.get("clip", {})
    if clip:
        t.add_row("CLIP training seconds", f"{clip.get('train_seconds', 0):.0f}")
    saes = card.get("saes")
    if saes:
        t.add_row("SAEs", f"{len(saes['layers'])} layers, {saes['seconds']:.0f}s")
    console.print(t)


def _info(args: argparse.Namespace) -> int:
    from steerlang.zoo import (
        ZOO_DATASETS,
        ZOO_DOMAIN_SAES,
        ZOO_MODEL_NAME,
        sae_subdir,
        zoo_weights_dir,
    )
    from steerlang.zoo.model import CARD_FILE, CLIP_WEIGHTS_FILE

    root = Path(args.dir) if args.dir else zoo_weights_dir()
    clip = root / CLIP_WEIGHTS_FILE
    sae_dirs = sorted(
        (root / "sae").glob("L*/*/") if (root / "sae").is_dir() else [],
        key=lambda p: (int(p.parent.name[1:]) if p.parent.name[1:].isdigit() else -1, p.name),
    )
    total = sum(
        p.stat().st_size for p in root.rglob("*") if p.is_file() and p.suffix == ".safetensors"
    )
    card_path = root / CARD_FILE
    card = json.loads(card_path.read_text(encoding="utf-8")) if card_path.is_file() else None
    doc = {
        "model": ZOO_MODEL_NAME,
        "weights_dir": str(root),
        "clip_weights": str(clip) if clip.is_file() else None,
        "saes": [str(p.relative_to(root)) for p in sae_dirs],
        "domain_saes": [
            f"zoo:sae/{d}/L{n}/{site}"
            for d, (n, site) in ZOO_DOMAIN_SAES.items()
            if (root / sae_subdir(n, site, d)).is_dir()
        ],
        "weights_bytes": total,
        "datasets": ZOO_DATASETS,
        "card": card,
    }
    if args.json:
        print(json.dumps(doc, indent=2))
        return 0
    from rich.console import Console

    console = Console()
    console.print(f"[bold]{ZOO_MODEL_NAME}[/bold]: weights in {root}")
    if doc["clip_weights"] is None:
        console.print("  CLIP weights: missing (run `steer zoo build`)")
    console.print(
        f"  SAEs: {len(sae_dirs)} ({', '.join(doc['saes'][:3])}{'…' if len(sae_dirs) > 3 else ''})"
    )
    if doc["domain_saes"]:
        console.print(f"  domain SAEs: {', '.join(doc['domain_saes'])}")
    console.print(f"  shipped weights: {total / 1e6:.1f} MB")
    console.print(f"  datasets (materialised on first use): {', '.join(ZOO_DATASETS)}")
    if card:
        _print_card(card, root)
    else:
        print("  no model card (zoo_card.json) found", file=sys.stderr)
    return 0
