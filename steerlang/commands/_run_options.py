"""Options and logging helpers shared by the runtime commands (run, plan, explain, sweep).

One place for the binding options, so the four commands accept the same flags with the same
help. Importing this module must stay cheap: torch and the runtime load inside the helpers.
"""

from __future__ import annotations

import argparse
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
    from steerlang.pipeline.run import RunOptions

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
    from steerlang.training.progress import rich_progress

    return rich_progress(console)


def live(progress: Any) -> Any:
    """The context to run under: the progress display, or nothing when there is none."""
    import contextlib

    return progress if progress is not None else contextlib.nullcontext()


def write_stderr(text: str) -> None:
    """Rendered diagnostics on stderr, always ending in a newline."""
    if text:
        sys.stderr.write(text if text.endswith("\n") else text + "\n")


def print_recipe_error(e: Any) -> None:
    sys.stderr.write(e.rendered if e.rendered.endswith("\n") else e.rendered + "\n")
    print(f"error: {e.message}", file=sys.stderr)


def compile_or_report(recipe: str, opts: Any) -> Any:
    """Compile `recipe` with the `--param` overrides; on errors print them and return None.

    Warnings are printed on stderr either way, so stdout stays clean for JSON.
    """
    from steerlang.pipeline.run import RecipeError, compile_recipe, parse_params

    try:
        ir, _, rendered = compile_recipe(recipe, parse_params(opts.params))
    except RecipeError as e:
        print_recipe_error(e)
        return None
    write_stderr(rendered)
    return ir
