"""`steer sweep`: the fraction of steerable SAE features and of steerable neurons at a layer.

Steerability is measured exactly as the paper's authors coded it (docs/running.md): clamp a
unit to s = 150 at every token, read the output out against a vocabulary of raw words with a
fixed scale of 100 (or `--logit-scale model`), S_f = Σ_v Δ_f(v)², steerable iff S_f > 0.10.
The neuron baseline overwrites one coordinate of the site activation with s (no SAE);
`--matched` adds neurons pushed by the SAE clamp's mean residual norm
(steerlang/pipeline/steerability.py). `--strengths` gives the curve over s, with the residual
move of each kind of edit; `--out DIR` writes sweep.json and the curve as a PNG. Results are
cached per strength.

    steer sweep recipes/steerability.steer
    steer sweep --model default --layer 7 --sample 1/20
    steer sweep --layer 11 --sample 1/8 --strengths 5,10,20,50,150 --matched --out sweep/
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from steerlang.commands.dataset_columns import columns_from_args
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
    p.add_argument(
        "--strengths",
        metavar="S1,S2,...",
        help="sweep each of these strengths (a steerability curve), e.g. 5,10,20,50,150",
    )
    p.add_argument(
        "--matched",
        action="store_true",
        help="also sweep neurons pushed by the SAE clamp's mean residual norm at each s",
    )
    p.add_argument(
        "--logit-scale",
        metavar="X|model",
        help='readout scale: a number (author default 100) or "model" (exp of the model\'s own)',
    )
    p.add_argument("--out", metavar="DIR", help="write sweep.json and steerability_curve.png here")
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
            args.recipe,
            params_dict(args.param),
            allow_include_outside=args.allow_include_outside,
            dataset_columns=columns_from_args(args),
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
    if args.logit_scale is not None:
        settings["logit_scale"] = _logit_scale_arg(args.logit_scale)
    ir.settings = settings
    return ir


def _logit_scale_arg(text: str) -> float | str:
    """`--logit-scale`: a positive number or "model"."""
    from steerlang.errors import SteerError

    if text == "model":
        return "model"
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0 or value == float("inf"):
        raise SteerError(
            f"--logit-scale {text!r} is neither a positive number nor `model`",
            help="use e.g. --logit-scale 100 (the authors') or --logit-scale model",
        )
    return value


def parse_strengths(text: str | None) -> list[float] | None:
    """`--strengths 5,10,20` -> [5.0, 10.0, 20.0] (None when not given)."""
    from steerlang.errors import SteerError
    from steerlang.report.steer_curve import parse_strengths as parse

    if text is None:
        return None
    try:
        return parse(text)
    except ValueError:
        raise SteerError(
            f"cannot read --strengths {text!r}",
            help="give finite strengths of at least 0 separated by commas, e.g. 5,10,20,50,150",
        ) from None


def run(args: argparse.Namespace) -> int:
    from steerlang.errors import SteerError
    from steerlang.pipeline.bind import bind, rule_sites
    from steerlang.pipeline.steer_pass import push_norms_for, steer_sites, steerability_for
    from steerlang.pipeline.steerability import parse_sample
    from steerlang.report.steer_curve import curve_rows

    console = setup_logging(args.quiet)
    opts = options_from_args(args)
    ir = _ir_for(args)
    strengths = parse_strengths(args.strengths) or [float(ir.setting("steer_strength"))]
    if args.layer:
        sites = [(layer, args.site) for layer in args.layer]
    else:
        sites = sorted(steer_sites(ir)) or rule_sites(ir)
    if not sites:
        raise SteerError("nothing to sweep: the recipe has no rules", help="pass --layer L")
    b = bind(ir, opts, sites=sites)
    progress = make_progress(console, args.quiet)
    summaries: list[dict[str, Any]] = []
    pushes: list[dict[str, Any]] = []
    pushes_kinds = [("overwrite", args.neurons), ("matched", args.matched)]
    with live(progress):
        for site in sites:
            words = steer_sites(ir).get(site, [])
            units = parse_sample(args.features or args.sample, b.saes[site].d_sae)
            for s in strengths:
                res = steerability_for(
                    ir,
                    b,
                    site,
                    units=units,
                    promote_words=words,
                    use_cache=opts.use_cache,
                    progress=progress,
                    strength=s,
                )
                summaries.append({"layer": site[0], "site": site[1], **res.summary()})
                for push, wanted in pushes_kinds:
                    if not wanted:
                        continue
                    nres = steerability_for(
                        ir,
                        b,
                        site,
                        neurons=True,
                        use_cache=opts.use_cache,
                        progress=progress,
                        strength=s,
                        push=push,
                    )
                    summaries.append({"layer": site[0], "site": site[1], **nres.summary()})
            if args.matched or len(strengths) > 1:
                for row in push_norms_for(ir, b, site, strengths):
                    pushes.append({"layer": site[0], "site": site[1], **row})
    from steerlang.pipeline.distributed import is_main

    if not is_main():  # under torchrun rank 0 prints the results
        return 0
    result = {
        "model": b.model_ref,
        "logit_scale": summaries[0]["logit_scale"],
        "logit_scale_source": summaries[0]["logit_scale_source"],
        "results": summaries,
        "curve": curve_rows(summaries),
        "push_norms": pushes,
    }
    if args.out:
        _write_folder(args.out, result)
    if args.json:
        from steerlang.report.build import clean_json

        print(json.dumps(clean_json(result), indent=2))
        return 0
    _print(result, sites, strengths)
    return 0


def scale_phrase(scale: float, source: str) -> str:
    """How the terminal names the readout's logit scale."""
    if source == "model":
        return f"logit scale {scale:.4g} (the model's own exp(logit_scale))"
    return f"logit scale {scale:.4g} (fixed; the authors' default is 100)"


def _write_folder(out: str, result: dict[str, Any]) -> None:
    """sweep.json and steerability_curve.png in `out`."""
    from pathlib import Path

    from steerlang.files import atomic_write_text
    from steerlang.report.build import clean_json
    from steerlang.report.steer_curve import curve_figure, save_figure

    folder = Path(out)
    atomic_write_text(folder / "sweep.json", json.dumps(clean_json(result), indent=2) + "\n")
    title = scale_phrase(result["logit_scale"], result["logit_scale_source"])
    save_figure(curve_figure(result["curve"], title=title), folder / "steerability_curve.png")


def _print(result: dict[str, Any], sites: list[tuple[int, str]], strengths: list[float]) -> None:
    from rich.console import Console
    from rich.table import Table

    from steerlang.report.steer_curve import UNIT_LABELS

    summaries = result["results"]
    out = Console()
    t = Table(title=f"steerability ({result['model']})", title_justify="left")
    for col in ("site", "units", "s", "swept", "steerable", "fraction", "top concepts"):
        t.add_column(col, justify="left" if col in ("site", "units", "top concepts") else "right")
    for s in summaries:
        tops = ", ".join(f"{w}×{c}" for w, c in s["top_concepts"][:5])
        t.add_row(
            f"L{s['layer']} {s['site']}",
            UNIT_LABELS[s["push"]],
            f"{s['strength']:g}",
            str(s["n_units"]),
            str(s["n_steerable"]),
            f"{100 * (s['fraction_steerable'] or 0):.1f}%",
            tops,
        )
    out.print(t)
    if len(strengths) > 1:
        c = Table(title="steerable fraction by strength s", title_justify="left")
        c.add_column("site")
        c.add_column("units")
        for s in strengths:
            c.add_column(f"s={s:g}", justify="right")
        rows: dict[tuple[int, str, str], dict[float, float]] = {}
        for r in result["curve"]:
            rows.setdefault((r["layer"], r["site"], r["units"]), {})[r["strength"]] = r[
                "fraction_steerable"
            ]
        for (layer, site, units), by_s in rows.items():
            c.add_row(
                f"L{layer} {site}",
                units,
                *(f"{100 * (by_s.get(s) or 0):.1f}%" for s in strengths),
            )
        out.print(c)
    for p in result["push_norms"]:
        out.print(
            f"L{p['layer']} {p['site']} s = {p['strength']:g}: mean residual move of an SAE "
            f"clamp {p['sae_clamp']:.3g}, of a coordinate overwrite {p['neuron_overwrite']:.3g} "
            f"(×{p['ratio']:.2f})"
        )
    if len(strengths) == 1:
        for layer, site in sites:
            pair = {s["push"]: s for s in summaries if (s["layer"], s["site"]) == (layer, site)}
            if "clamp" in pair and "overwrite" in pair:
                a, n = pair["clamp"], pair["overwrite"]
                out.print(
                    f"L{layer} {site}: {100 * (a['fraction_steerable'] or 0):.1f}% of SAE "
                    f"features vs {100 * (n['fraction_steerable'] or 0):.1f}% of neurons are "
                    "steerable"
                )
    s0 = summaries[0]
    out.print(
        f"S_f > {s0['threshold']:g} over {s0['n_images']} images, readout "
        f"{scale_phrase(s0['logit_scale'], s0['logit_scale_source'])} "
        "(authors' definition; see docs/running.md)"
    )
