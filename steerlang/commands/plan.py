"""`steer plan RECIPE`: the InterventionPlan (concrete feature ids per site, the rule that
chose each and the statistic values it looked at) as JSON on stdout.

Computes (or reuses cached) feature statistics on the unsteered model; does not evaluate.
"""

from __future__ import annotations

import argparse
import sys

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


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "plan",
        help="print a recipe's intervention plan (concrete feature ids) as JSON",
        description="Select features for every rule (statistics are computed on the "
        "unsteered model, or read from the cache) and print the InterventionPlan as JSON.",
    )
    p.add_argument("recipe", metavar="RECIPE", help="recipe file (.steer)")
    add_binding_options(p)
    p.add_argument("--compact", action="store_true", help="one-line JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from steerlang.pipeline.run import plan_ir

    console = setup_logging(args.quiet)
    opts = options_from_args(args)
    ir = compile_or_report(
        args.recipe,
        params_dict(args.param),
        allow_include_outside=args.allow_include_outside,
        dataset_columns=columns_from_args(args),
    )
    if ir is None:
        return 1
    progress = make_progress(console, args.quiet)
    with live(progress):
        po = plan_ir(ir, opts, progress=progress)
    for w in po.selection.warnings:
        console.print(f"[yellow]warning[{w.code}][/yellow]: {w.message}")
    sys.stdout.write(po.selection.plan.model_dump_json(indent=None if args.compact else 2) + "\n")
    return 0
