"""`steer run RECIPE`: compile, bind, compute (cached) statistics, select, evaluate baseline
and steered on the same images, and write a run folder.

Importing this module must stay cheap: torch and the runtime load inside the handler.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from steerlang.commands.dataset_columns import columns_from_args
from steerlang.commands.eval_on import add_eval_on_option, add_evaluations
from steerlang.commands.grid import add_grid_option, run_grid_command
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
        "run",
        help="run a recipe: baseline vs steered metrics and a report folder",
        description="Run a recipe end to end: statistics (cached) on the unsteered model, "
        "feature selection, baseline and steered evaluation on the same images, and a run "
        "folder with plan.json, report.json, report.html and manifest.json.",
    )
    p.add_argument("recipe", metavar="RECIPE", help="recipe file (.steer)")
    add_binding_options(p)
    p.add_argument("--out", metavar="DIR", help="folder for run folders (default: ./runs)")
    p.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    add_grid_option(p)
    add_eval_on_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from steerlang.pipeline.run import run_ir
    from steerlang.report.folder import RunFolderError, check_out_root

    console = setup_logging(args.quiet)
    opts = options_from_args(args)
    # Before compiling, binding or computing anything: the run folder is written last.
    check_out_root(opts.out)
    if args.grid:
        return run_grid_command(args, console, opts)
    ir = compile_or_report(
        args.recipe,
        params_dict(args.param),
        allow_include_outside=args.allow_include_outside,
        dataset_columns=columns_from_args(args),
    )
    if ir is None:
        return 1
    progress = make_progress(console, args.quiet)
    try:
        with live(progress):
            out = run_ir(ir, opts, progress=progress, argv=_command_line(args))
            if args.eval_on:
                add_evaluations(out, list(args.eval_on), progress=progress)
    except RunFolderError as e:
        # The numbers are computed: show them as a finished run would, and print the JSON
        # when no copy reached the disk; the CLI then prints where the results are.
        _show(e.report, args, console, json_anyway=e.kept is None)
        raise
    from steerlang.pipeline.distributed import is_main

    if is_main():  # one report, from rank 0, under torchrun
        _show(out.report, args, console)
    return 0


def _command_line(args: argparse.Namespace) -> list[str]:
    """What the user typed (set by steerlang.cli.main), else this process's arguments."""
    return list(getattr(args, "command_line", None) or ["steer", *sys.argv[1:]])


def _show(
    report: dict[str, Any], args: argparse.Namespace, console: Any, *, json_anyway: bool = False
) -> None:
    """The report as `--json` asks; with `json_anyway` the JSON follows the summary even
    without `--json` (the only copy of the numbers is then the terminal's)."""
    from steerlang.report.terminal import print_summary

    if args.json:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
        if not args.quiet:
            print_summary(report, console)
        return
    from rich.console import Console

    print_summary(report, Console())
    if report.get("evaluations"):
        from steerlang.report.eval_on import print_evaluations

        print_evaluations(report, Console())
    if json_anyway:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
