"""`steer sweep`: the fraction of steerable SAE features and of steerable neurons at a layer.

Steerability is measured exactly as the paper's authors coded it (docs/running.md): clamp a
unit to s = 150 at every token, read the output out against a vocabulary of raw words with a
fixed scale of 100, S_f = Σ_v Δ_f(v)², steerable iff S_f > 0.10. The neuron baseline
overwrites one coordinate of the site activation with s (no SAE). Results are cached.

    steer sweep recipes/steerability.steer
    steer sweep --model default --layer 7 --sample 1/20
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from steerlang.commands.options import (
    add_binding_options,
    live,
    make_progress,
    options_from_args,
    params_dict,
    setup_logging,
)
from steerlang.commands.recipes import compile_or_report
from steerlang.facts import SITE_KINDS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep",
        help="measure the fraction of steerable SAE features and neurons at a layer",
        description="Steerability sweep (the authors' S_f): SAE features and, as the baseline, "
        "residual coordinates (neurons). Give a recipe (its model, dataset, settings and rule "
        "sites) or --layer with --model/--dataset.",
    )
    p.add_argument("recipe", nargs="?", metavar="RECIPE", help="recipe file (.steer)")
    p.add_argument("--layer", type=int, action="append", help="layer to sweep (repeatable)")
    p.add_argument(
        "--site",
        default="resid_post",
        choices=SITE_KINDS,
        help="site kind (default resid_post)",
    )
    p.add_argument(
        "--dataset",
        metavar="NAME",
        help="images from this profile dataset (default: the recipe's, else waterbirds)",
    )
    p.add_argument(
        "--split",
        help="dataset split for the images (default: the recipe's stats_split, else train)",
    )
    p.add_argument("--features", metavar="SPEC", help="SAE features: 0:1000, 3,7,11 or 1/20")
    p.add_argument("--sample", metavar="1/N", help="every N-th feature (the authors used 1/20)")
    p.add_argument(
        "--neurons",
        dest="neurons",
        action="store_true",
        default=True,
        help="also sweep the neuron baseline (default)",
    )
    p.add_argument(
        "--no-neurons", dest="neurons", action="store_false", help="skip the neuron baseline"
    )
    p.add_argument("--images", type=int, help="N images (author default 192)")
    p.add_argument("--strength", type=float, help="clamp strength s (author default 150)")
    p.add_argument("--threshold", type=float, help="steerable iff S_f > this (default 0.10)")
    p.add_argument(
        "--vocabulary",
        metavar="FILE",
        help="readout words, one per line "
        "(default: the shipped list, see steerlang/pipeline/vocab/PROVENANCE.md)",
    )
    p.add_argument("--json", action="store_true", help="results as JSON on stdout")
    add_binding_options(p)
    p.set_defaults(func=run)


def _ir_for(args: argparse.Namespace) -> Any:
    from steerlang.errors import SteerError
    from steerlang.plan import RecipeIR

    if args.recipe:
        ir = compile_or_report(
            args.recipe, params_dict(args.param), allow_include_outside=args.allow_include_outside
        )
        if ir is None:
            raise SystemExit(1)
    else:
        if not args.layer:
            raise SteerError(
                "give a recipe or --layer", help="e.g. steer sweep --layer 7 --sample 1/20"
            )
        ir = RecipeIR(name="sweep", model="default", dataset=args.dataset or "waterbirds")
    if args.dataset:
        ir.dataset = args.dataset
    if ir.dataset is None:
        ir.dataset = "waterbirds"
    settings = dict(ir.settings)
    if args.split:
        settings["stats_split"] = args.split
    if args.images is not None:
        settings["steer_images"] = args.images
    if args.strength is not None:
        settings["steer_strength"] = args.strength
    if args.threshold is not None:
        settings["steer_threshold"] = args.threshold
    if args.vocabulary:
        settings["vocabulary"] = args.vocabulary
    ir.settings = settings
    return ir


def run(args: argparse.Namespace) -> int:

    from rich.console import Console
    from rich.table import Table

    from steerlang.errors import SteerError
    from steerlang.pipeline.bind import bind, rule_sites
    from steerlang.pipeline.steer_pass import steer_sites, steerability_for
    from steerlang.pipeline.steerability import parse_sample

    console = setup_logging(args.quiet)
    opts = options_from_args(args)
    ir = _ir_for(args)
    if args.layer:
        sites = [(layer, args.site) for layer in args.layer]
    else:
        sites = sorted(steer_sites(ir)) or rule_sites(ir)
    if not sites:
        raise SteerError("nothing to sweep: the recipe has no rules", help="pass --layer L")
    b = bind(ir, opts, sites=sites)
    progress = make_progress(console, args.quiet)
    summaries: list[dict[str, Any]] = []
    with live(progress):
        for site in sites:
            words = steer_sites(ir).get(site, [])
            d_sae = b.saes[site].d_sae
            spec = args.features or args.sample
            units = parse_sample(spec, d_sae)
            res = steerability_for(
                ir,
                b,
                site,
                units=units,
                promote_words=words,
                use_cache=opts.use_cache,
                progress=progress,
            )
            summaries.append({"layer": site[0], "site": site[1], **res.summary()})
            if args.neurons:
                nres = steerability_for(
                    ir, b, site, neurons=True, use_cache=opts.use_cache, progress=progress
                )
                summaries.append({"layer": site[0], "site": site[1], **nres.summary()})
    from steerlang.pipeline.distributed import is_main

    if not is_main():  # under torchrun rank 0 prints the results
        return 0
    if args.json:
        from steerlang.report.build import clean_json

        print(json.dumps(clean_json({"model": b.model_ref, "results": summaries}), indent=2))
        return 0
    out = Console()
    t = Table(title=f"steerability ({b.model_ref})", title_justify="left")
    for col in ("site", "units", "swept", "steerable", "fraction", "top concepts"):
        t.add_column(col, justify="left" if col in ("site", "units", "top concepts") else "right")
    for s in summaries:
        tops = ", ".join(f"{w}×{c}" for w, c in s["top_concepts"][:5])
        t.add_row(
            f"L{s['layer']} {s['site']}",
            "SAE features" if s["kind"] == "sae" else "neurons",
            str(s["n_units"]),
            str(s["n_steerable"]),
            f"{100 * (s['fraction_steerable'] or 0):.1f}%",
            tops,
        )
    out.print(t)
    for layer, site in sites:
        pair = {s["kind"]: s for s in summaries if (s["layer"], s["site"]) == (layer, site)}
        if "sae" in pair and "neuron" in pair:
            a, n = pair["sae"], pair["neuron"]
            out.print(
                f"L{layer} {site}: {100 * (a['fraction_steerable'] or 0):.1f}% of SAE features "
                f"vs {100 * (n['fraction_steerable'] or 0):.1f}% of neurons are steerable"
            )
    s0 = summaries[0]
    out.print(
        f"S_f > {s0['threshold']:g} at s = {s0['strength']:g} over {s0['n_images']} images "
        "(authors' definition; see docs/running.md)"
    )
    return 0
