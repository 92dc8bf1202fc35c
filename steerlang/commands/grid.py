"""`steer run RECIPE --grid NAME=SPEC [--grid …]`: the grid branch of `steer run`.

The grid's points are parsed (steerlang/commands/grid_spec.py) and compiled, every one, before
anything is loaded, then run in one process by steerlang/pipeline/grid.py. Cheap to import.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from steerlang.commands.dataset_columns import columns_from_args
from steerlang.commands.grid_spec import grid_pair, grid_points
from steerlang.commands.options import live, make_progress, params_dict
from steerlang.commands.recipes import compile_points


def add_grid_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--grid",
        type=grid_pair,
        action="append",
        default=[],
        metavar="NAME=SPEC",
        help="run every value of a param in one process: a list 0.2,0.3,0.4 or a range 0..11; "
        "several --grid give the product",
    )


def run_grid_command(args: argparse.Namespace, console: Any, opts: Any) -> int:
    from steerlang.pipeline.grid import GridPoint, run_grid
    from steerlang.report.grid_summary import print_grid_summary

    points = grid_points(list(args.grid), params_dict(args.param))
    irs = compile_points(
        args.recipe,
        points,
        allow_include_outside=args.allow_include_outside,
        dataset_columns=columns_from_args(args),
    )
    if irs is None:
        return 1
    names = [n for n, _ in args.grid]
    progress = make_progress(console, args.quiet)
    with live(progress):
        out = run_grid(
            [GridPoint(p, ir) for p, ir in zip(points, irs, strict=True)],
            opts,
            names=names,
            progress=progress,
            argv=["steer", *sys.argv[1:]],
        )
    if args.json:
        sys.stdout.write(json.dumps(out.report, indent=2) + "\n")
        if not args.quiet:
            print_grid_summary(out.report, console)
        return 0
    from rich.console import Console

    print_grid_summary(out.report, Console())
    return 0
