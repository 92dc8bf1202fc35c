"""`steer check FILE…`: syntax, names, types and lints, without torch or a model.

Exit status: 0 when no file has errors (warnings allowed), 1 otherwise, 2 for usage errors.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from steerlang.commands.dataset_columns import columns_from_args
from steerlang.commands.options import (
    add_color_option,
    add_compile_options,
    params_dict,
    use_color,
    write,
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "check",
        help="check recipes for errors (no model needed)",
        description="Check recipes: syntax, names, types, ranges and lints. No model or "
        "data is loaded; with --profile or --data, column names are checked against the "
        "datasets' real columns (read from their metadata headers).",
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="recipe files (.steer)")
    p.add_argument("--format", choices=["text", "json"], default="text", help="output format")
    add_compile_options(p)
    p.add_argument(
        "--profile",
        metavar="FILE",
        help="check column names against the real columns of the datasets this steer.yaml "
        "profile names (read from their metadata headers; no images are loaded)",
    )
    p.add_argument(
        "--data",
        action="append",
        default=[],
        metavar="NAME=[FORMAT:]PATH",
        help="check column names against the dataset at PATH (repeatable)",
    )
    add_color_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if getattr(args, "debug", False):
        os.environ["STEERLANG_DEBUG"] = "1"  # let internal errors surface as tracebacks
    from steerlang.errors import SteerError
    from steerlang.lang.api import compile_file, diagnostics_to_json, render_diagnostics
    from steerlang.lang.render import summary_line

    params = params_dict(args.param)
    # Without --profile/--data: the built-in columns of the known dataset names, as before.
    columns = columns_from_args(args) if args.profile or args.data else None
    color = use_color(args.color, sys.stdout)
    failed = False
    report = []
    all_diags = []
    for path in args.files:
        try:
            res = compile_file(
                path,
                n_layers=args.layers,
                params=params,
                allow_include_outside=args.allow_include_outside,
                dataset_columns=columns,
            )
        except SteerError as e:
            failed = True
            if args.format == "json":
                report.append({"file": path, "ok": False, "error": e.message, "diagnostics": []})
            else:
                print(f"error: {e.message}", file=sys.stderr)
            continue
        all_diags.extend(res.diagnostics)
        failed = failed or not res.ok
        if args.format == "json":
            report.append(
                {
                    "file": path,
                    "ok": res.ok,
                    "rules": len(res.ir.rules) if res.ir is not None else None,
                    "diagnostics": diagnostics_to_json(res.diagnostics),
                }
            )
            continue
        if res.diagnostics:
            write(sys.stdout, render_diagnostics(res.diagnostics, res.sources, color=color))
            print()
        if res.ok:
            n = len(res.ir.rules) if res.ir is not None else 0
            extra = f", {summary_line(res.diagnostics)}" if res.diagnostics else ""
            print(f"{path}: ok ({n} rule{'s' if n != 1 else ''}{extra})")
        else:
            print(f"{path}: {summary_line(res.diagnostics)}")
    if args.format == "json":
        n_err = sum(1 for d in all_diags if d.is_error)
        out = {
            "ok": not failed,
            "files": report,
            "errors": n_err,
            "warnings": sum(1 for d in all_diags if d.severity == "warning"),
        }
        print(json.dumps(out, indent=2))
    return 1 if failed else 0
