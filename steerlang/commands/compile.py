"""`steer compile FILE`: the Recipe IR as JSON on stdout (diagnostics on stderr).

The IR is symbolic and model-free; `steer plan` turns it into concrete feature ids.
"""

from __future__ import annotations

import argparse
import os
import sys

from steerlang.commands.options import (
    add_color_option,
    add_compile_options,
    params_dict,
    use_color,
    write,
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compile",
        help="print a recipe's Recipe IR as JSON",
        description="Compile a recipe to its Recipe IR (JSON on stdout). No model is loaded.",
    )
    p.add_argument("file", metavar="FILE", help="recipe file (.steer)")
    add_compile_options(p)
    p.add_argument("--compact", action="store_true", help="one-line JSON")
    add_color_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if getattr(args, "debug", False):
        os.environ["STEERLANG_DEBUG"] = "1"  # let internal errors surface as tracebacks
    from steerlang.lang.api import compile_file, render_diagnostics

    res = compile_file(
        args.file,
        n_layers=args.layers,
        params=params_dict(args.param),
        allow_include_outside=args.allow_include_outside,
    )
    if res.diagnostics:
        color = use_color(args.color, sys.stderr)
        write(sys.stderr, render_diagnostics(res.diagnostics, res.sources, color=color))
    if res.ir is None:
        return 1
    write(sys.stdout, res.ir.model_dump_json(indent=None if args.compact else 2))
    return 0
