"""Pick the shipped recipes' layer and threshold by a grid on the validation split.

The procedure (docs/selection.md, written by `--write`): each recipe below is run as
`steer run RECIPE --grid ...` with one line appended, `set eval_split = "val"`, so every point
is measured on the validation split and never on the test split the recipe reports. The point
with the highest selection metric wins; a tie goes to the higher second metric, then to the
first point in grid order (lower layer, then lower threshold). The recipe should carry the
winner's values; `--check` fails when one does not.

    python benchmarks/select_settings.py                 # print the tables and the choices
    python benchmarks/select_settings.py --write         # also write docs/selection.md
    python benchmarks/select_settings.py --check         # exit 1 if a recipe disagrees
    python benchmarks/select_settings.py --only celeba   # one recipe

Last line: one JSON object (per recipe: the winner, its validation metrics, the recipe's values).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from steerlang.files import atomic_write_text  # noqa: E402
from steerlang.lang.api import compile_file  # noqa: E402
from steerlang.report.grid_summary import metric_value  # noqa: E402

DOC = REPO / "docs" / "selection.md"


@dataclass(frozen=True)
class Selection:
    name: str
    recipe: str  # relative to the repository
    grid: tuple[str, ...]  # `--grid` specs; the first is the table's rows, the second its columns
    metric: str  # a grid column (steerlang/report/grid_summary.py): the higher the better
    tie_break: str  # a second column, for ties
    why: str  # what the metric measures, for the doc
    # Recipes that take some of the winner's values (recipe, param names): a control that must
    # act where the experiment acts, or a set without a validation split of its own.
    followers: tuple[tuple[str, tuple[str, ...]], ...] = ()


SELECTIONS: tuple[Selection, ...] = (
    Selection(
        "waterbirds",
        "recipes/waterbirds.steer",
        ("L=0..11", "thr=0.3,0.4,0.5"),
        "steered_worst_group",
        "steered_average_plain",
        "worst-group accuracy after steering",
        followers=(("recipes/controls.steer", ("L",)),),
    ),
    Selection(
        "celeba",
        "recipes/celeba.steer",
        ("thr=0.01,0.02,0.05,0.1,0.2",),
        "steered_worst_group",
        "steered_average_plain",
        "worst-group accuracy after steering (layer 7: where the CelebA-domain SAE is)",
    ),
    Selection(
        "typographic",
        "recipes/typographic.steer",
        ("L=0..11", "thr=0.1,0.2,0.3,0.4"),
        "steered_attack_attacked",
        "steered_attack_clean",
        "accuracy on attacked images after steering",
        # The RTA-style set is evaluation-only (no splits, steerlang/data/formats/typographic.py):
        # it takes the layer chosen here; its per-word thresholds stay its own.
        followers=(("recipes/typographic_rta.steer", ("L",)),),
    ),
)

VAL_LINE = '\n# appended by benchmarks/select_settings.py: measure on the validation split\nset eval_split = "val"\n'


def recipe_params(recipe: str) -> dict[str, Any]:
    """The declared params of a recipe (relative to the repository), as the compiler reads
    them: the same parser `steer run` uses, not a second reading of the text."""
    res = compile_file(str(REPO / recipe))
    if res.ir is None:
        raise SystemExit(f"{recipe} does not compile:\n{res.render(color=False)}")
    return {name: p.value for name, p in res.ir.params.items()}


def run_grid(sel: Selection, work: Path) -> dict[str, Any]:
    """The grid report of `sel` on the validation split."""
    src = REPO / sel.recipe
    copy = work / src.name
    copy.write_text(src.read_text(encoding="utf-8") + VAL_LINE, encoding="utf-8")
    argv = [sys.executable, "-m", "steerlang", "run", str(copy), "--json", "-q"]
    argv += ["--out", str(work / f"{sel.name}-runs")]
    for g in sel.grid:
        argv += ["--grid", g]
    proc = subprocess.run(argv, cwd=work, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout)


def choose(sel: Selection, report: dict[str, Any]) -> dict[str, Any]:
    """The winning entry (the rule in the module docstring)."""
    best = None
    for e in report["grid"]:
        key = (metric_value(e, sel.metric), metric_value(e, sel.tie_break))
        if key[0] is None:
            raise SystemExit(f"{sel.name}: point {e['index']} has no {sel.metric}")
        if best is None or key > best[0]:  # strictly better: ties keep the earlier point
            best = (key, e)
    assert best is not None
    return best[1]


def _fmt(v: Any) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}"


def table(sel: Selection, report: dict[str, Any], winner: dict[str, Any]) -> list[str]:
    """A markdown table of the selection metric (in %): rows = first grid param, columns =
    the second (or one column); the winner in bold."""
    names = report["grid_params"]
    rows_key = names[0]
    cols_key = names[1] if len(names) > 1 else None
    rows: dict[Any, dict[Any, str]] = {}
    for e in report["grid"]:
        p = e["params"]
        cell = _fmt(metric_value(e, sel.metric))
        if e is winner:
            cell = f"**{cell}**"
        rows.setdefault(p[rows_key], {})[p[cols_key] if cols_key else "-"] = cell
    cols = list(next(iter(rows.values())))
    head = f"| {rows_key} | " + " | ".join(
        f"{cols_key} = {c}" if cols_key else sel.metric for c in cols
    )
    out = [head + " |", "|" + "---|" * (len(cols) + 1)]
    for r, cells in rows.items():
        out.append(f"| {r} | " + " | ".join(cells[c] for c in cols) + " |")
    return out


def render(results: list[dict[str, Any]]) -> str:
    lines = [
        "# How the shipped recipes' settings were chosen",
        "",
        "<!-- generated by `python benchmarks/select_settings.py --write`; do not edit -->",
        "",
        "Each recipe's layer `L` and threshold `thr` come from a grid on the **validation**",
        "split of its zoo dataset, never the test split its report shows: the recipe is run",
        'with `set eval_split = "val"` appended and `--grid` over the values below, and the',
        "point with the highest selection metric wins (ties: the second metric, then the first",
        "point in grid order). Cells are the selection metric in %, the winner in bold.",
        "",
    ]
    for r in results:
        lines += [
            f"## {r['name']} (`{r['recipe']}`)",
            "",
            f"Selection metric: {r['why']} (`{r['metric']}`); ties: `{r['tie_break']}`. "
            f"Grid: {', '.join(f'`{g}`' for g in r['grid'])}. Winner: "
            + ", ".join(f"`{k} = {v}`" for k, v in r["winner"].items())
            + f" ({_fmt(r['winner_metric'])}% on val). The recipe has "
            + ", ".join(f"`{k} = {r['recipe_values'].get(k)}`" for k in r["winner"])
            + (" (agrees)." if r["agrees"] else " (**disagrees**)."),
            *(
                f"`{f}` takes "
                + ", ".join(f"`{k} = {r['winner'][k]}`" for k in names)
                + f" from this grid ({'agrees' if ok else '**disagrees**'})."
                for f, names, ok in r["followers"]
            ),
            "",
            *r["table"],
            "",
        ]
    return "\n".join(lines)


def _follows(recipe: str, names: tuple[str, ...], winner: dict[str, Any]) -> bool:
    values = recipe_params(recipe)
    return all(_same(values.get(k), winner[k]) for k in names)


def _same(a: Any, b: Any) -> bool:
    return isinstance(a, int | float) and float(a) == float(b)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", action="append", default=None, help="a recipe name (repeatable)")
    ap.add_argument("--write", action="store_true", help=f"write {DOC.relative_to(REPO)}")
    ap.add_argument("--check", action="store_true", help="exit 1 when a recipe disagrees")
    args = ap.parse_args()
    chosen = [s for s in SELECTIONS if args.only is None or s.name in args.only]
    results = []
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        for sel in chosen:
            t = time.time()
            report = run_grid(sel, Path(tmp))
            winner = choose(sel, report)
            values = recipe_params(sel.recipe)
            res = {
                "name": sel.name,
                "recipe": sel.recipe,
                "grid": list(sel.grid),
                "metric": sel.metric,
                "tie_break": sel.tie_break,
                "why": sel.why,
                "winner": winner["params"],
                "winner_metric": metric_value(winner, sel.metric),
                "winner_tie_break": metric_value(winner, sel.tie_break),
                "recipe_values": {k: values.get(k) for k in winner["params"]},
                "agrees": all(_same(values.get(k), v) for k, v in winner["params"].items()),
                "followers": [
                    (f, list(names), _follows(f, names, winner["params"]))
                    for f, names in sel.followers
                ],
                "table": table(sel, report, winner),
                "seconds": round(time.time() - t, 1),
            }
            results.append(res)
            print("\n".join([f"{sel.name}: winner {res['winner']}", *res["table"], ""]))
    if args.write:
        atomic_write_text(DOC, render(results) + "\n")
        print(f"wrote {DOC}")
    summary = {
        r["name"]: {
            k: r[k] for k in ("winner", "winner_metric", "recipe_values", "agrees", "followers")
        }
        for r in results
    }
    summary["wall_s"] = round(time.time() - t0, 1)
    print(json.dumps(summary))
    ok = all(r["agrees"] and all(f[2] for f in r["followers"]) for r in results)
    return 1 if args.check and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
