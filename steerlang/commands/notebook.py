"""The notebook API: `steerlang.compile`, `steerlang.plan`, `steerlang.run`, `steerlang.steer`.

    import steerlang

    ir = steerlang.compile("recipes/waterbirds.steer", params={"thr": 0.3})
    plan = steerlang.plan(ir)                       # an InterventionPlan
    res = steerlang.run(ir)                         # baseline vs steered, a run folder
    res.metrics["steered"]["per_group"]["y=1,place=0"]
    grid = steerlang.run("recipes/waterbirds.steer", grid={"L": range(12)})
    grid.to_pandas()                                # one row per point (needs pandas)

It sits at the level of the commands (docs/architecture.md): it compiles with the language
layer and runs the pipeline, exactly as `steer compile/plan/run` do, and returns plain Python
values instead of printing. Torch loads only when a function that needs it is called;
`steerlang/__init__.py` exposes these names lazily, so `import steerlang` stays torch-free.
Documented in docs/python.md.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from steerlang.errors import SteerError
from steerlang.plan import InterventionPlan, RecipeIR

Recipe = RecipeIR | str | os.PathLike[str]

# Keyword options of plan/run, as RunOptions fields (the `steer run` flags of the same names).
_OPTION_NAMES = ("profile", "model", "data", "sae", "device", "out", "use_cache")


class RecipeError(SteerError):
    """A recipe with errors; `.diagnostics` holds them, `str()` renders them as `steer check`."""

    def __init__(self, rendered: str, diagnostics: list[Any], n: int) -> None:
        super().__init__(
            f"the recipe has {n} error{'s' if n != 1 else ''}:\n{rendered}",
            help="fix the lines shown (`steer check FILE` shows the same)",
        )
        self.diagnostics = diagnostics


def _is_path(source: str | os.PathLike[str]) -> bool:
    """A path object, or a one-line string naming a `.steer` file or an existing file (recipe
    text always has a line break after its `steer 1` header)."""
    if isinstance(source, os.PathLike):
        return True
    if "\n" in source:
        return False
    try:
        return source.endswith(".steer") or Path(source).is_file()
    except OSError:
        return False


def compile(
    source: Recipe,
    params: Mapping[str, Any] | None = None,
    *,
    n_layers: int | None = None,
    allow_include_outside: bool = False,
    dataset_columns: Callable[[str], tuple[str, ...] | None] | None = None,
) -> RecipeIR:
    """A recipe file (a path) or recipe text, compiled to its RecipeIR with `params` as
    `--param` overrides (values of any type; they are checked against the declarations).
    `dataset_columns`: the bound dataset's columns (steerlang/commands/dataset_columns.py);
    `plan` and `run` pass their profile's. Raises RecipeError with the diagnostics when the
    recipe has errors."""
    if isinstance(source, RecipeIR):
        if params:
            raise SteerError(
                "params cannot be applied to a compiled RecipeIR",
                help="pass the recipe's path or text with params=…",
            )
        return source
    from steerlang.lang import api

    overrides = {k: _param_text(v) for k, v in (params or {}).items()} or None
    if _is_path(source):
        res = api.compile_file(
            os.fspath(source),
            params=overrides,
            n_layers=n_layers,
            allow_include_outside=allow_include_outside,
            dataset_columns=dataset_columns,
        )
    else:
        res = api.compile_text(
            str(source),
            None,
            params=overrides,
            n_layers=n_layers,
            allow_include_outside=allow_include_outside,
            dataset_columns=dataset_columns,
        )
    if not res.ok or res.ir is None:
        raise RecipeError(res.render(color=False), res.errors, len(res.errors) or 1)
    return res.ir


def _param_text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _columns(opts: Any) -> Callable[[str], tuple[str, ...] | None] | None:
    """The profile's dataset columns for the compiler; None with in-memory data (it replaces
    the recipe's dataset: the runtime checks its columns when it binds)."""
    from steerlang.commands.dataset_columns import columns_reader

    return None if opts.table is not None else columns_reader(opts.profile, opts.data)


def _options(options: Mapping[str, Any]) -> Any:
    from steerlang.pipeline.bind import RunOptions

    unknown = sorted(set(options) - set(_OPTION_NAMES))
    if unknown:
        raise TypeError(
            f"unknown option(s) {', '.join(unknown)}; options are {', '.join(_OPTION_NAMES)}"
        )
    opts = dict(options)
    for k in ("data", "sae"):
        if isinstance(opts.get(k), str):
            opts[k] = [opts[k]]
    return RunOptions(**opts)


def plan(
    recipe: Recipe, params: Mapping[str, Any] | None = None, **options: Any
) -> InterventionPlan:
    """The InterventionPlan of a recipe (statistics computed or read from the cache), as
    `steer plan` makes it. `options`: profile, model, data, sae, device, use_cache."""
    from steerlang.pipeline.run import plan_ir

    opts = _options(options)
    return plan_ir(compile(recipe, params, dataset_columns=_columns(opts)), opts).selection.plan


@dataclass
class RunResult:
    """One run: `.metrics` (plain dicts: `baseline`/`steered` with `accuracy`, `worst_group`,
    …, and `per_group` keyed by group name), `.predictions` (numpy arrays: `labels`,
    `baseline`, `steered`, …), `.plan`, `.report` (report.json's content), `.report_dir`."""

    metrics: dict[str, Any] | None
    predictions: dict[str, Any]
    plan: InterventionPlan
    report: dict[str, Any]
    report_dir: Path | None
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def evaluations(self) -> dict[str, Any]:
        """With `eval_on`: dataset name -> its `metrics` (and dataset, groups), the recipe's
        own dataset first."""
        return dict(self.report.get("evaluations") or {})

    def to_pandas(self) -> Any:
        """One row per metric (`accuracy`, `worst_group`, …, `group:<name>`), columns
        baseline, steered and delta. Needs pandas."""
        pd = _pandas()
        rows = metric_rows(self.metrics)
        return pd.DataFrame(rows).set_index("metric") if rows else pd.DataFrame()


@dataclass
class GridResult:
    """A grid: `.points` (one RunResult per point, each with its `.params`), `.metrics` (one
    dict per point: its params and metrics), `.report` (the grid report), `.report_dir`."""

    points: list[RunResult]
    report: dict[str, Any]
    report_dir: Path | None

    @property
    def metrics(self) -> list[dict[str, Any]]:
        return [{"params": p.params, **(p.metrics or {})} for p in self.points]

    def to_pandas(self) -> Any:
        """One row per point: its params, then baseline_/steered_ metrics. Needs pandas."""
        pd = _pandas()
        rows = []
        for p in self.points:
            row: dict[str, Any] = dict(p.params)
            for which in ("baseline", "steered"):
                for k, v in ((p.metrics or {}).get(which) or {}).items():
                    if isinstance(v, int | float) and not isinstance(v, bool):
                        row[f"{which}_{k}"] = v
            rows.append(row)
        return pd.DataFrame(rows)


def _pandas() -> Any:
    try:
        import pandas as pd
    except ImportError:
        raise SteerError(
            "to_pandas() needs pandas, which is not installed",
            help="pip install pandas (the plain dicts in .metrics need nothing)",
        ) from None
    return pd


def metric_rows(metrics: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The metrics as rows of (metric, baseline, steered, delta): the scalar task metrics,
    then one `group:<name>` row per group."""
    if not metrics:
        return []
    b, s = metrics.get("baseline") or {}, metrics.get("steered") or {}
    rows = []
    for k, v in b.items():
        if isinstance(v, int | float) and not isinstance(v, bool) and k != "n":
            w = s.get(k)
            rows.append({"metric": k, "baseline": v, "steered": w, "delta": _diff(v, w)})
    for g, v in (b.get("per_group") or {}).items():
        w = (s.get("per_group") or {}).get(g)
        rows.append({"metric": f"group:{g}", "baseline": v, "steered": w, "delta": _diff(v, w)})
    return rows


def _diff(a: Any, b: Any) -> float | None:
    return None if a is None or b is None else float(b) - float(a)


def named_groups(metrics: Mapping[str, Any] | None, groups: list[str]) -> dict[str, Any] | None:
    """report.json's metrics with `per_group` and `group_counts` keyed by group name."""
    if metrics is None:
        return None
    out: dict[str, Any] = {}
    for which, m in metrics.items():
        if isinstance(m, dict) and isinstance(m.get("per_group"), list):
            m = dict(m)
            m["per_group"] = dict(zip(groups, m["per_group"], strict=False))
            if isinstance(m.get("group_counts"), list):
                m["group_counts"] = dict(zip(groups, m["group_counts"], strict=False))
            wid = m.get("worst_group_id")
            if isinstance(wid, int) and 0 <= wid < len(groups):
                m["worst_group_name"] = groups[wid]
        out[which] = m
    return out


def _predictions(ev: Any) -> dict[str, Any]:
    if ev is None:
        return {}
    out = {"labels": ev.labels, **dict(ev.preds)}
    if ev.groups is not None:
        out["groups"] = ev.groups
    return out


def _result(report: dict[str, Any], ev: Any, plan_: InterventionPlan, run_dir: Any) -> RunResult:
    return RunResult(
        metrics=named_groups(report.get("metrics"), list(report.get("groups") or [])),
        predictions=_predictions(ev),
        plan=plan_,
        report=report,
        report_dir=Path(run_dir) if run_dir else None,
    )


def run(
    recipe: Recipe,
    params: Mapping[str, Any] | None = None,
    *,
    grid: Mapping[str, Iterable[Any]] | None = None,
    eval_on: Iterable[str] | None = None,
    images: Any = None,
    labels: Any = None,
    write: bool = True,
    **options: Any,
) -> RunResult | GridResult:
    """Run a recipe as `steer run` does: baseline vs steered metrics and (with `write`) a run
    folder under `out` (default ./runs). With `grid` ({name: values}), one run per point of the
    product of the values, in one process as `steer run --grid` (a GridResult). `eval_on`:
    more dataset names to evaluate the same plan on (`steer run --eval-on`; the results are
    in `.evaluations`). `images` and `labels`: in-memory data used instead of the recipe's
    dataset (steerlang/data/memory.py). `options`:
    profile, model, data, sae, device, out, use_cache."""
    from steerlang.pipeline.run import run_ir

    opts = _options(options)
    if images is not None or labels is not None:
        from steerlang.data.memory import memory_table

        if images is None or labels is None:
            raise SteerError("in-memory data needs both images= and labels=")
        opts.table = memory_table(images, labels)
    if grid:
        return _run_grid(recipe, params, grid, opts, write=write)
    ir = compile(recipe, params, dataset_columns=_columns(opts))
    out = run_ir(ir, opts, write=write, argv=["steerlang.run"])
    if eval_on:
        from steerlang.commands.eval_on import add_evaluations

        add_evaluations(out, list(eval_on))
    return _result(out.report, out.eval_result, out.plan.selection.plan, out.run_dir)


def _run_grid(
    recipe: Recipe,
    params: Mapping[str, Any] | None,
    grid: Mapping[str, Iterable[Any]],
    opts: Any,
    *,
    write: bool,
) -> GridResult:
    from steerlang.commands.grid_spec import grid_points
    from steerlang.pipeline.grid import GridPoint, run_grid

    if isinstance(recipe, RecipeIR):
        raise SteerError(
            "a grid recompiles the recipe at every point",
            help="pass the recipe's path or text, not a compiled RecipeIR",
        )
    pairs = [(k, [_param_text(v) for v in vals]) for k, vals in grid.items()]
    fixed = {k: _param_text(v) for k, v in (params or {}).items()}
    points = grid_points(pairs, fixed)
    columns = _columns(opts)
    gp = [GridPoint(p, compile(recipe, p, dataset_columns=columns)) for p in points]
    out = run_grid(gp, opts, names=list(grid), write=write, argv=["steerlang.run"])
    results = []
    for r in out.points:
        res = _result(r.report, r.eval_result, r.plan.selection.plan, None)
        res.params = dict(r.values)
        results.append(res)
    return GridResult(points=results, report=out.report, report_dir=out.run_dir)


def steer(model: Any, plan: InterventionPlan, saes: Mapping[Any, Any], **kw: Any) -> Any:
    """`with steerlang.steer(handle, plan, saes): …` applies the plan inside the block
    (steerlang.model.hooks.steer; docs/runtime.md)."""
    from steerlang.model.hooks import steer as _steer

    return _steer(model, plan, saes, **kw)
