"""`steer run RECIPE`: compile, bind, compute (cached) statistics, select, evaluate baseline
and steered on the same images, and write a run folder.

Also hosts the option and logging helpers the other runtime commands (plan, explain, sweep)
share. Importing this module must stay cheap: torch and the runtime load inside handlers.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any


def add_binding_options(p: argparse.ArgumentParser) -> None:
    """Options that bind a recipe's names to real things (shared by run/plan/explain/sweep)."""
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a declared param (repeatable)",
    )
    p.add_argument(
        "--profile",
        metavar="FILE",
        help="steer.yaml profile (default: ./steer.yaml if present, else the built-in zoo profile)",
    )
    p.add_argument(
        "--model",
        metavar="REF",
        help="model name from the profile or a reference "
        "such as openclip:ViT-B-32@datacomp_xl_s13b_b90k",
    )
    p.add_argument(
        "--data",
        action="append",
        default=[],
        metavar="NAME=[FORMAT:]PATH",
        help="point a dataset name at a folder (repeatable)",
    )
    p.add_argument(
        "--sae",
        action="append",
        default=[],
        metavar="LAYER[:SITE]=REF",
        help="SAE for a layer/site: a folder, hf:REPO or zoo:sae/L7/resid_post (repeatable)",
    )
    p.add_argument("--device", metavar="DEV", help="auto (default), cpu, cuda, cuda:N")
    p.add_argument("--no-cache", action="store_true", help="recompute statistics even if cached")
    p.add_argument("-q", "--quiet", action="store_true", help="only warnings on stderr")


def options_from_args(args: argparse.Namespace) -> Any:
    from steerlang.runtime.pipeline import RunOptions

    return RunOptions(
        params=list(args.param or []),
        profile=args.profile,
        model=args.model,
        data=list(args.data or []),
        sae=list(args.sae or []),
        device=args.device,
        out=getattr(args, "out", None),
        use_cache=not args.no_cache,
    )


def setup_logging(quiet: bool = False) -> Any:
    """Logs go to stderr (rich), so stdout stays clean for JSON; returns the stderr console."""
    from rich.console import Console
    from rich.logging import RichHandler

    console = Console(stderr=True)
    logger = logging.getLogger("steerlang")
    for h in list(logger.handlers):
        if getattr(h, "_steer_cli", False):
            logger.removeHandler(h)
    handler = RichHandler(console=console, show_path=False, show_time=False, markup=False)
    handler._steer_cli = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    # Some libraries configure the root logger; without this every line would print twice.
    logger.propagate = False
    return console


def make_progress(console: Any, quiet: bool = False) -> Any:
    """A rich progress display on stderr, or None when stderr is not a terminal."""
    if quiet or not console.is_terminal:
        return None
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )


def write_stderr(text: str) -> None:
    """Rendered diagnostics on stderr, always ending in a newline."""
    if text:
        sys.stderr.write(text if text.endswith("\n") else text + "\n")


def print_recipe_error(e: Any) -> None:
    sys.stderr.write(e.rendered if e.rendered.endswith("\n") else e.rendered + "\n")
    print(f"error: {e.message}", file=sys.stderr)


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
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import contextlib

    from steerlang.runtime.pipeline import RecipeError, run_recipe
    from steerlang.runtime.report import print_summary

    console = setup_logging(args.quiet)
    opts = options_from_args(args)
    progress = make_progress(console, args.quiet)
    try:
        with progress if progress is not None else contextlib.nullcontext():
            out = run_recipe(args.recipe, opts, progress=progress, argv=["steer", *sys.argv[1:]])
    except RecipeError as e:
        print_recipe_error(e)
        return 1
    if args.json:
        sys.stdout.write(json.dumps(out.report, indent=2) + "\n")
        if not args.quiet:
            print_summary(out.report, console)
    else:
        from rich.console import Console

        print_summary(out.report, Console())
    return 0
