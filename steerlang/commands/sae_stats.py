"""`steer sae-stats`: the layer-wise SAE quality table (EV, L0, CLS L0, dead/dense, accuracy
recovered) for one or many SAEs of a model, measured on a dataset."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from steerlang.commands.options import add_device_option


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "sae-stats",
        help="measure SAEs: explained variance, L0 (CLS/patches), dead/dense, accuracy recovered",
        description=(
            "Measure SAEs on a dataset: FVU / explained variance, L0 overall and for the CLS and "
            "patch tokens, dead and dense latent fractions, and zero-shot accuracy with the SAE "
            "spliced in versus clean, zero- and mean-ablated (when the dataset has classes). "
            "One clean forward pass serves every SAE. Example: "
            "steer sae-stats 'zoo:sae/L{layer}/resid_post' --layers 0..11 --dataset waterbirds"
        ),
    )
    p.add_argument(
        "saes",
        nargs="+",
        metavar="SAE_REF",
        help="SAE folders, hf:REPO[/PATH] or zoo:sae/L{layer}/{site}; '{layer}' is expanded "
        "over --layers",
    )
    p.add_argument("--layers", metavar="LAYERS", help="expand {layer} in SAE_REF: 7, 0..11, 3,5")
    p.add_argument(
        "--model",
        metavar="REF",
        help="model name or reference (default: the model recorded in the SAE, else 'default')",
    )
    add_data_args(p)
    p.add_argument(
        "--max-images", type=int, default=512, metavar="N", help="evaluate N images (default 512)"
    )
    p.add_argument("--batch-size", type=int, default=64, metavar="B", help="images per batch")
    add_device_option(p)
    p.add_argument(
        "--dense-threshold",
        type=float,
        default=1e-2,
        metavar="F",
        help="a latent firing on more than this fraction of tokens counts as dense (default 1e-2)",
    )
    p.add_argument("--no-accuracy", action="store_true", help="skip the zero-shot passes")
    p.add_argument("--json", action="store_true", help="print the results as JSON on stdout")
    p.set_defaults(func=_run)


def add_data_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data")
    g.add_argument(
        "--data",
        metavar="FORMAT:ROOT[:SPLIT]",
        help="dataset on disk, e.g. waterbirds:/data/waterbirds:test or imagefolder:/data/val",
    )
    g.add_argument(
        "--dataset",
        metavar="NAME[:SPLIT]",
        help="a dataset named in the profile (the zoo's by default), e.g. waterbirds",
    )
    g.add_argument("--split", help="split to use (train, val, test)")
    g.add_argument(
        "--label-column",
        metavar="COL",
        help="class column for zero-shot accuracy (default: the dataset's own)",
    )
    g.add_argument(
        "--prompt",
        action="append",
        metavar="TEMPLATE",
        help="zero-shot prompt template with {} for the class (repeatable; default "
        "'a photo of a {}.')",
    )
    g.add_argument(
        "--profile", metavar="PATH", help="steer.yaml (default: ./steer.yaml or the zoo)"
    )


def _run(args: argparse.Namespace) -> int:
    from steerlang.errors import SteerError
    from steerlang.model.clip import load_model
    from steerlang.model.sae.load import load_sae
    from steerlang.pipeline.bind import resolve_device
    from steerlang.pipeline.distributed import is_main
    from steerlang.profile import load_profile
    from steerlang.training.cli_support import (
        DEFAULT_PROMPT,
        load_data,
        parse_layers,
        zero_shot_labels,
    )
    from steerlang.training.sae_metrics import evaluate_saes

    refs: list[str] = []
    layers = parse_layers(args.layers) if args.layers else None
    for ref in args.saes:
        if "{layer}" in ref:
            if layers is None:
                raise SteerError(f"SAE_REF {ref!r} has {{layer}} but no --layers was given")
            refs.extend(ref.replace("{layer}", str(layer)) for layer in layers)
        else:
            refs.append(ref)
    profile = load_profile(args.profile)
    device = resolve_device(args.device or profile.device)
    saes = {}
    for ref in refs:
        sae = load_sae(ref, device=device)
        name = sae.cfg.hook.hook_name
        if name is None:
            raise SteerError(
                f"SAE {ref} does not record its layer, so it cannot be placed in the model",
                help="use an SAE saved by `steer train-sae` or with hook metadata",
            )
        if name in saes:
            raise SteerError(f"two SAEs for site {name} ({ref}); measure them separately")
        saes[name] = sae
    model_name = args.model or next(
        (s.cfg.hook.model for s in saes.values() if s.cfg.hook.model), "default"
    )
    handle = load_model(profile.model_ref(model_name), device)
    choice = load_data(args.data, args.dataset, profile, split=args.split)
    table = choice.table
    labels, classes = (
        (None, None) if args.no_accuracy else zero_shot_labels(table, args.label_column)
    )
    results = evaluate_saes(
        handle,
        saes,
        table,
        labels=labels,
        classes=classes,
        templates=args.prompt or (DEFAULT_PROMPT,),
        batch_size=args.batch_size,
        max_images=args.max_images,
        dense_threshold=args.dense_threshold,
        progress=not args.json and is_main(),
    )
    if not is_main():
        # Under torchrun every rank measured a share of the images and holds the merged
        # metrics of all of them (docs/scale.md); rank 0 alone prints them.
        return 0
    rows = [results[k].to_dict() for k in sorted(results, key=_site_sort_key)]
    if args.json:
        doc = {
            "model": handle.ref,
            "data": choice.label,
            "saes": dict(zip(refs, rows, strict=False)),
        }
        json.dump(_jsonable(doc), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print_table(stats_table(rows, title=f"SAEs of {handle.ref} on {choice.label}"))
    return 0


def _site_sort_key(name: str) -> tuple[int, str]:
    from steerlang.model.sites import parse_site

    ref = parse_site(name)
    return (ref.layer, ref.site)


def _jsonable(obj: Any) -> Any:
    """NaN/inf are not JSON: write them as null so scripts can parse the output."""
    import math

    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    return obj


def stats_table(rows: list[dict[str, Any]], *, title: str | None = None) -> Any:
    """The paper's layer-wise sparsity table as a rich Table (rows from `SAEMetrics.to_dict`)."""
    from rich.table import Table

    t = Table(title=title)
    for col in ("layer", "site", "d_sae", "EV%", "L0", "CLS L0", "dead%", "dense%"):
        t.add_column(col, justify="left" if col == "site" else "right", no_wrap=True)
    has_acc = any(r.get("splice") for r in rows)
    if has_acc:
        # zero-shot accuracy (%): clean, SAE spliced in, site zero-ablated; recovered (%)
        for col in ("acc", "acc SAE", "acc 0", "rec%"):
            t.add_column(col, justify="right", no_wrap=True)

    def num(v: float | None, fmt: str) -> str:
        return "–" if v is None else format(v, fmt)

    def pct(v: float | None) -> float | None:
        return None if v is None else 100 * v

    for r in rows:
        site = r["site"].split(".hook_")[-1]
        cells = [
            str(r["layer"]),
            site,
            str(r["d_sae"]),
            num(pct(r["explained_variance"]), ".1f"),
            num(r["l0"], ".1f"),
            num(r["l0_cls"], ".1f"),
            num(pct(r["dead_fraction"]), ".1f"),
            num(pct(r["dense_fraction"]), ".1f"),
        ]
        if has_acc:
            s = r.get("splice") or {}
            cells += [
                num(pct(s.get(k)), ".1f")
                for k in ("acc_clean", "acc_spliced", "acc_zero", "recovered")
            ]
        t.add_row(*cells)
    return t


def print_table(table: Any) -> None:
    """Print on stdout; a pipe or file gets a width that fits the whole table, not 80 columns."""
    from rich.console import Console

    console = Console()
    if not console.is_terminal:
        console = Console(width=max(console.width, 140))
    console.print(table)
