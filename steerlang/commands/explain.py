"""`steer explain RECIPE [--rule NAME]`: a dry run of the rule engine, rule by rule.

For each rule and site: how many features were selected and rejected, the predicate values of
the top selected features, the near misses (features within ε of a threshold, or ranked just
below a `top K` cut), and which later rule won each overlapping feature. Statistics come from
the real model (cached) or, with `--stats FILE`, from a synthetic table in the `steer test`
format, so no model is needed.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
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


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "explain",
        help="explain which features each rule selects, near misses and conflict winners",
        description="Dry-run the rule engine and explain, per rule: selected/rejected counts, "
        "predicate values of the top candidates, near misses and conflict winners.",
    )
    p.add_argument("recipe", metavar="RECIPE", help="recipe file (.steer)")
    p.add_argument("--rule", metavar="NAME", help="only this rule")
    p.add_argument(
        "--stats",
        metavar="FILE",
        help="YAML statistics table (steer test format: a mapping of site -> columns) instead "
        "of computing statistics with the model",
    )
    p.add_argument("--eps", type=float, default=0.05, help="near-miss distance (default 0.05)")
    p.add_argument(
        "--top",
        type=int,
        default=10,
        help="selected features to list per rule, strongest first by the rule's statistic",
    )
    p.add_argument("--json", action="store_true", help="the explanation as JSON on stdout")
    add_binding_options(p)
    p.set_defaults(func=run)


def _source_line(ir: Any, rule: Any) -> str:
    """The rule's own line from the recipe file, for display only (never re-parsed)."""
    span = rule.span
    if span is None:
        return ""
    try:
        lines = Path(span.file or ir.source or "").read_text("utf-8").splitlines()
        return f"{span.file or ir.source}:{span.line}: {lines[span.line - 1].strip()}"
    except (OSError, IndexError):
        return ""


def _selection_from_stats(ir: Any, path: str, eps: float) -> Any:
    import yaml

    from steerlang.commands.test import tables_from_spec
    from steerlang.errors import SteerError
    from steerlang.pipeline.selection import SiteInfo, select

    try:
        doc = yaml.safe_load(Path(path).read_text("utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise SteerError(f"cannot read statistics file {path}: {e}") from None
    stats = doc.get("stats", doc) if isinstance(doc, dict) else None
    if not isinstance(stats, dict):
        raise SteerError(f"{path}: expected a mapping of site -> columns")
    tables, sizes = tables_from_spec(
        stats, doc.get("n_features") if isinstance(doc, dict) else None
    )
    sites = {}
    for r in ir.rules:
        for layer in r.scope.layers:
            if (layer, r.scope.site) not in sizes:
                raise SteerError(f"{path}: no statistics for layer {layer} {r.scope.site}")
            sites[(layer, r.scope.site)] = SiteInfo(
                sae="stats-file", d_sae=sizes[(layer, r.scope.site)]
            )
    return select(ir, tables, sites, model="stats-file", near_miss_eps=eps)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from steerlang.errors import SteerError, did_you_mean
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
    if args.rule and args.rule not in {r.name for r in ir.rules}:
        names = [r.name for r in ir.rules]
        close = did_you_mean(args.rule, names)
        raise SteerError(
            f"the recipe has no rule `{args.rule}`",
            help=(f"did you mean `{close}`? " if close else "") + f"rules: {', '.join(names)}",
        )
    if args.stats:
        sel = _selection_from_stats(ir, args.stats, args.eps)
    else:
        progress = make_progress(console, args.quiet)
        with live(progress):
            sel = plan_ir(ir, opts, progress=progress, near_miss_eps=args.eps).selection
    data = sel.explain_json(args.rule)
    if args.json:
        from steerlang.report.build import clean_json

        print(json.dumps(clean_json(data), indent=2))
        return 0
    out = Console()
    rules = {r.name: r for r in ir.rules}
    for res in sel.per_rule:
        if not args.rule or res.rule == args.rule:
            _print_rule(out, ir, rules[res.rule], res, args.top)
    for w in sel.warnings:
        if not args.rule or w.rule == args.rule:
            out.print(f"[yellow]warning[{w.code}][/yellow]: {w.message}")
    return 0


def _print_rule(out: Any, ir: Any, rule: Any, res: Any, top: int) -> None:
    """One rule at one site: counts, thresholds, top selected, near misses, overrides."""
    out.print(
        f"[bold]rule {res.rule}[/bold]  layer {res.layer} {res.site}, tokens "
        f"{res.tokens}, {rule.action.op}"
    )
    line = _source_line(ir, rule)
    if line:
        out.print(f"  [dim]{line}[/dim]")
    out.print(
        f"  selected {len(res.selected)} of {res.n_features} (rejected "
        f"{res.n_features - len(res.selected)}); {res.candidates} satisfy the `where` part"
    )
    for th in res.thresholds:
        out.print(f"  threshold: {th['stat']} {th['op']} {th['threshold']:g}")
    if res.selected:
        rows = [
            [
                str(f),
                *[_fmt(res.values.get(f, {}).get(k)) for k in res.stats],
                f"overridden by {res.lost_to[f]}" if f in res.lost_to else "kept",
            ]
            for f in res.strongest()[:top]
        ]
        title = f"strongest {min(top, len(res.selected))} selected"
        out.print(_table(title, res.stats, "outcome", rows))
    if res.near_misses:
        rows = [
            [str(m["feature"]), *[_fmt(m.get(k)) for k in res.stats], m["reason"]]
            for m in res.near_misses[:top]
        ]
        out.print(_table("near misses", res.stats, "why", rows))
    if res.lost_to:
        lost = sorted(res.lost_to.items())
        shown = ", ".join(f"{f} → {w}" for f, w in lost[:12])
        more = f" … and {len(lost) - 12} more" if len(lost) > 12 else ""
        out.print(f"  overridden by later rules: {shown}{more}")
    out.print()


def _table(title: str, stats: list[str], last: str, rows: list[list[str]]) -> Any:
    from rich.table import Table

    t = Table(title=title, title_justify="left")
    t.add_column("feature", justify="right")
    for k in stats:
        t.add_column(k, justify="right")
    t.add_column(last)
    for row in rows:
        t.add_row(*row)
    return t


def _fmt(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)
