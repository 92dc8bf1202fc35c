"""`steer show`: feature cards for any SAE features, without running a recipe.

    steer show --layer 7 --features 12,40,97 [--dataset waterbirds] [--model REF] [--sae 7=REF]
    steer show recipes/waterbirds.steer [--rule background]

Writes one self-contained HTML page (images inline, no network needed) under `--out DIR`
(default: ./runs) and prints its path. The cards are the ones `steer run` puts in report.html:
statistics and the strongest images come from the statistics pass (cached, so a second `show`
on the same layer and dataset reads them back), the heat map over each image is the feature's
activation per patch.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from steerlang.commands.options import (
    add_binding_options,
    live,
    make_progress,
    options_from_args,
    params_dict,
    positive_int,
    setup_logging,
)

SITES = ("resid_post", "resid_pre", "attn_out", "mlp_out")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "show",
        help="write an HTML page of feature cards (strongest images with patch heat maps)",
        description="Feature cards for SAE features: their statistics and strongest images of "
        "a dataset split, with the activation per patch laid over each image. Give a layer and "
        "feature ids, or a recipe (optionally one rule) to show the features it edits.",
    )
    p.add_argument("recipe", nargs="?", metavar="RECIPE", help="recipe file (.steer)")
    p.add_argument("--rule", metavar="NAME", help="with a recipe: only this rule's features")
    p.add_argument("--layer", type=int, metavar="L", help="the layer of --features")
    p.add_argument(
        "--site",
        choices=SITES,
        default="resid_post",
        help="the site of --features (default %(default)s)",
    )
    p.add_argument(
        "--features", metavar="IDS", help="comma-separated SAE feature ids, e.g. 12,40,97"
    )
    p.add_argument(
        "--dataset",
        metavar="NAME",
        default="waterbirds",
        help="with --features: the dataset whose images the cards show (default %(default)s)",
    )
    p.add_argument(
        "--split",
        default="train",
        metavar="SPLIT",
        help="with --features: the split (default %(default)s)",
    )
    p.add_argument(
        "--limit",
        type=int,
        default=0,
        metavar="N",
        help="with --features: at most N images of the split (default: all)",
    )
    p.add_argument(
        "--label",
        default="y,place,label",
        metavar="COLS",
        help="with --features: dataset columns printed under each image, where the dataset has "
        "them (default %(default)s)",
    )
    p.add_argument(
        "-k",
        "--images",
        type=positive_int,
        metavar="K",
        help="images per card (default: the recipe's gallery_k, else 8)",
    )
    p.add_argument(
        "--max",
        type=positive_int,
        metavar="N",
        help="with a recipe: cards per rule and site (default: the recipe's gallery_cards)",
    )
    p.add_argument("--out", metavar="DIR", help="folder for the page (default: ./runs)")
    add_binding_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from steerlang.errors import SteerError
    from steerlang.files import atomic_write_text
    from steerlang.report.folder import out_root_path
    from steerlang.report.templates import render

    console = setup_logging(args.quiet)
    if args.recipe and args.features:
        raise SteerError(
            "give either a recipe or --features, not both",
            help="`steer show RECIPE [--rule NAME]` or `steer show --layer L --features IDS`",
        )
    if not args.recipe and not args.features:
        raise SteerError(
            "nothing to show",
            help="`steer show --layer 7 --features 12,40,97` or `steer show RECIPE --rule NAME`",
        )
    progress = make_progress(console, args.quiet)
    with live(progress):
        if args.recipe:
            page = _recipe_page(args, progress)
        else:
            page = _features_page(args, progress)
    if page is None:
        return 1
    name, context = page
    root = out_root_path(args.out)
    try:
        root.mkdir(parents=True, exist_ok=True)
        path = root / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}.html"
        atomic_write_text(path, render("show.html.j2", **context))
    except OSError as e:
        raise SteerError(
            f"cannot write the page under {root}: {e.strerror or e}",
            help="pass --out DIR with a folder you can write to",
        ) from None
    sys.stdout.write(f"{path}\n")
    return 0


def parse_features(text: str) -> list[int]:
    """`12,40, 97` -> [12, 40, 97] (order kept, duplicates dropped)."""
    from steerlang.errors import SteerError

    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            f = int(part)
        except ValueError:
            raise SteerError(
                f"--features: `{part}` is not a feature id",
                help="give comma-separated whole numbers, e.g. --features 12,40,97",
            ) from None
        if f < 0:
            raise SteerError(f"--features: feature ids are not negative, got {f}")
        if f not in out:
            out.append(f)
    if not out:
        raise SteerError("--features names no feature", help="e.g. --features 12,40,97")
    return out


def _features_page(args: argparse.Namespace, progress: Any) -> tuple[str, dict[str, Any]]:
    from steerlang.errors import SteerError
    from steerlang.pipeline.feature_cards import ImageViews, feature_card
    from steerlang.pipeline.run import plan_ir
    from steerlang.pipeline.stats_table import tokens_key
    from steerlang.plan import Action, IdsSelector, RecipeIR, Rule, Scope

    if args.layer is None:
        raise SteerError("--features needs --layer", help="e.g. --layer 7 --features 12,40,97")
    feats = parse_features(args.features)
    k = args.images or 8
    # The cards read the statistics of a rule that names the features; `mean-ablate` is the
    # action that makes the statistics pass run for an id list (it needs their means).
    ir = RecipeIR(
        name="show",
        model=args.model or "default",
        dataset=args.dataset,
        rules=[
            Rule(
                name="show",
                index=0,
                scope=Scope(layers=[args.layer], site=args.site),
                action=Action(op="mean_ablate"),
                selector=IdsSelector(ids=feats),
            )
        ],
        settings={"stats_split": args.split, "stats_limit": args.limit, "gallery_k": k},
    )
    po = plan_ir(ir, options_from_args(args), progress=progress)
    key = (args.layer, args.site, tokens_key("all"))
    stats = po.stats
    labels = [c.strip() for c in (args.label or "").split(",") if c.strip()]
    views = ImageViews(stats.images_table, po.binding.handle.preprocess, labels)
    cards = [
        feature_card(
            args.layer,
            args.site,
            f,
            table=stats.tables.get(key),
            gallery=stats.galleries.get(key),
            views=views,
            steerability=stats.steerability.get(f"{args.layer}:{args.site}"),
            pooling=str(ir.setting("pooling")),
            gallery_k=k,
        )
        for f in feats
    ]
    b = po.binding
    shown = ", ".join(str(f) for f in feats)
    title = f"Layer {args.layer} {args.site}: feature{'s' if len(feats) > 1 else ''} {shown}"
    meta = _meta(b, f"{args.dataset} / {args.split}", _n_images(stats))
    name = f"show-L{args.layer}-{args.site}-" + "_".join(str(f) for f in feats[:6])
    return name, {"title": title, "meta": meta, "cards": cards, "k": k}


def _recipe_page(args: argparse.Namespace, progress: Any) -> tuple[str, dict[str, Any]] | None:
    from steerlang.commands.dataset_columns import columns_from_args
    from steerlang.commands.recipes import compile_or_report
    from steerlang.errors import SteerError, did_you_mean
    from steerlang.pipeline.feature_cards import cards_for_plan
    from steerlang.pipeline.run import plan_ir

    ir = compile_or_report(
        args.recipe,
        params_dict(args.param),
        allow_include_outside=args.allow_include_outside,
        dataset_columns=columns_from_args(args),
    )
    if ir is None:
        return None
    names = [r.name for r in ir.rules]
    if args.rule and args.rule not in names:
        close = did_you_mean(args.rule, names)
        raise SteerError(
            f"the recipe has no rule `{args.rule}`",
            help=(f"did you mean `{close}`? " if close else "") + f"rules: {', '.join(names)}",
        )
    settings = dict(ir.settings)
    if args.images:
        settings["gallery_k"] = args.images
    if args.max:
        settings["gallery_cards"] = args.max
    ir = ir.model_copy(update={"settings": settings})
    po = plan_ir(ir, options_from_args(args), progress=progress)
    selection = po.selection
    if args.rule:
        selection = _only_rule(selection, args.rule)
    cards = cards_for_plan(ir, selection, po.stats, po.binding.handle.preprocess)
    what = f"rule {args.rule}" if args.rule else "its rules"
    title = f"{ir.name}: the features {what} edit{'s' if args.rule else ''}"
    split = str(ir.setting("stats_split"))
    meta = _meta(po.binding, f"{ir.dataset} / {split}", _n_images(po.stats))
    meta.insert(0, ("recipe", str(Path(args.recipe))))
    name = f"show-{_safe(ir.name)}" + (f"-{_safe(args.rule)}" if args.rule else "")
    return name, {"title": title, "meta": meta, "cards": cards, "k": int(ir.setting("gallery_k"))}


def _only_rule(selection: Any, rule: str) -> Any:
    from dataclasses import replace

    return replace(selection, per_rule=[r for r in selection.per_rule if r.rule == rule])


def _meta(b: Any, images: str, n: int) -> list[tuple[str, str]]:
    saes = ", ".join(f"L{k[0]} {k[1]}: {ref}" for k, ref in sorted(b.sae_refs.items()))
    return [
        ("model", str(b.model_ref)),
        ("SAE", saes),
        ("images", f"{images} ({n} images)"),
    ]


def _n_images(stats: Any) -> int:
    """Images the statistics pass read (its tables record it)."""
    for t in stats.tables.values():
        return int(t.meta.get("n_images", 0) or 0)
    return 0


def _safe(name: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:60] or "recipe"
