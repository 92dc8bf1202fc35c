"""A grid run: one recipe at several param values (`steer run R --grid L=0..11`), in one process.

Why one process: the expensive parts of a run do not depend on the params a grid varies. So
the model, the dataset and every SAE the points need are bound once; the statistics of every
site of every point are computed in one pass of the unsteered model (or read from the cache),
as is steerability; the classifier and the baseline predictions come from the first point's
evaluation and are reused by the others, which run only the steered model. Each point then gets
its own selection, plan, evaluation and single-run report, exactly what `steer run` would report
for that point alone (tests/pipeline/test_grid.py checks this number for number).

The points arrive compiled (the commands compile each point with its values as `--param`
overrides; the runtime never reads recipe text).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from steerlang.pipeline.bind import Binding, RunOptions, _load_sae, bind, rule_sites, sae_ref_for
from steerlang.pipeline.eval_pass import evaluate_task
from steerlang.pipeline.run import PlanOutcome, run_record, select_with
from steerlang.pipeline.stats_pass import StatsOutcome, statistics_for, stats_specs
from steerlang.pipeline.steer_pass import add_steerability, steer_sites
from steerlang.plan import RecipeIR
from steerlang.report.build import build_report, clean_json
from steerlang.report.folder import check_out_root
from steerlang.report.grid_folder import GridPointFiles, write_grid_folder
from steerlang.report.grid_summary import grid_entry, grid_report

log = logging.getLogger("steerlang.run")


@dataclass
class GridPoint:
    """One point: the grid values it was compiled with (as text) and its RecipeIR."""

    values: dict[str, str]
    ir: RecipeIR


@dataclass
class GridPointResult:
    values: dict[str, Any]  # the grid params' compiled values
    plan: PlanOutcome
    report: dict[str, Any]  # the single-run report of this point
    eval_result: Any | None


@dataclass
class GridOutcome:
    points: list[GridPointResult]
    report: dict[str, Any]  # the grid report: its `grid` array has one entry per point
    run_dir: Path | None
    timings: dict[str, float] = field(default_factory=dict)


def _shared_key(ir: RecipeIR) -> str:
    """What the statistics of a site depend on besides the site itself: when it is the same
    for every point, one statistics pass serves them all."""
    d = ir.model_dump(mode="json", include={"model", "dataset", "concepts", "settings", "task"})
    concepts = json.dumps(d.get("concepts"), sort_keys=True)
    if '"param"' in concepts:  # a concept reads a param: its masks may differ per point
        d["params"] = {k: p.value for k, p in ir.params.items()}
    return json.dumps(d, sort_keys=True, default=str)


def _union_ir(irs: Sequence[RecipeIR]) -> RecipeIR:
    """The first point's IR with every point's rules, renamed apart (for one statistics and
    steerability pass over the union of the sites)."""
    rules = [
        r.model_copy(update={"name": f"p{i}:{r.name}"})
        for i, ir in enumerate(irs)
        for r in ir.rules
    ]
    return irs[0].model_copy(update={"rules": rules})


def _point_binding(
    shared: Binding, ir: RecipeIR, loaded: dict[tuple[str, int, str], Any]
) -> Binding:
    """The shared binding narrowed to one point's sites (an SAE another point named differently
    is loaded once and kept in `loaded`)."""
    refs: dict[tuple[int, str], str] = {}
    saes: dict[tuple[int, str], Any] = {}
    for site in rule_sites(ir):
        ref = sae_ref_for(ir, shared.profile, *site)
        refs[site] = ref
        if shared.sae_refs.get(site) == ref:
            saes[site] = shared.saes[site]
        else:
            key = (ref, *site)
            if key not in loaded:
                loaded[key] = _load_sae(ref, shared.handle, shared.model_ref, *site, shared.device)
            saes[site] = loaded[key]
    return dataclasses.replace(shared, sae_refs=refs, saes=saes)


def _point_stats(union: StatsOutcome, ir: RecipeIR) -> StatsOutcome:
    """The union pass's tables and steerability for one point's sites."""
    out = StatsOutcome({}, {}, [], [])
    for s in stats_specs(ir):
        label = f"{s.layer}:{s.site}:{s.tokens}"
        key = union.keys[label]
        out.keys[label] = key
        out.tables[(s.layer, s.site, s.tokens)] = union.tables[(s.layer, s.site, s.tokens)]
        (out.cached if key in union.cached else out.computed).append(key)
    for layer, site in steer_sites(ir):
        k = f"{layer}:{site}"
        if k in union.steerability:
            out.steerability[k] = union.steerability[k]
    return out


def run_grid(
    points: Sequence[GridPoint],
    opts: RunOptions,
    *,
    names: Sequence[str],
    handle: Any = None,
    progress: Any = None,
    argv: Sequence[str] | None = None,
    write: bool = True,
) -> GridOutcome:
    """Every point planned, evaluated and reported; with `write`, one grid folder
    (steerlang/report/grid_folder.py) holding the summary and each point's plan and report."""
    if not points:
        raise ValueError("a grid needs at least one point")
    if write:
        check_out_root(opts.out)
    started = time.time()
    t0 = time.perf_counter()
    irs = [p.ir for p in points]
    all_sites = sorted({s for ir in irs for s in rule_sites(ir)})
    shared = bind(irs[0], opts, handle=handle, sites=all_sites)
    t_bind = time.perf_counter() - t0

    # Statistics and steerability once, over the union of the points' sites.
    t1 = time.perf_counter()
    union_stats: StatsOutcome | None = None
    if len({_shared_key(ir) for ir in irs}) == 1:
        union = _union_ir(irs)
        union_stats = statistics_for(union, shared, use_cache=opts.use_cache, progress=progress)
        add_steerability(union, shared, union_stats, use_cache=opts.use_cache, progress=progress)
    else:
        log.info("the grid's params change the concepts: statistics are computed per point")
    t_stats = time.perf_counter() - t1

    loaded: dict[tuple[str, int, str], Any] = {}
    classifier: Any = None
    baseline: dict[str, Any] | None = None
    results: list[GridPointResult] = []
    for i, p in enumerate(points):
        ir = p.ir
        ts = time.perf_counter()
        b = _point_binding(shared, ir, loaded)
        if union_stats is not None:
            stats = _point_stats(union_stats, ir)
        else:
            stats = statistics_for(ir, b, use_cache=opts.use_cache, progress=progress)
            add_steerability(ir, b, stats, use_cache=opts.use_cache, progress=progress)
        t_sel0 = time.perf_counter()
        sel = select_with(ir, b, stats)
        t_eval0 = time.perf_counter()
        po = PlanOutcome(
            ir=ir,
            binding=b,
            stats=stats,
            selection=sel,
            timings={"bind": 0.0, "statistics": t_sel0 - ts, "selection": t_eval0 - t_sel0},
        )
        ev = None
        info: dict[str, Any] | None = None
        if ir.task is not None:
            ev, info = evaluate_task(
                ir, b, sel.plan, progress=progress, classifier=classifier, baseline=baseline
            )
            if baseline is None:
                classifier = ev.classifier
                baseline = {k: v for k, v in ev.preds.items() if k.startswith("baseline")}
        po.timings["evaluation"] = time.perf_counter() - t_eval0
        rep = build_report(
            run_record(po), ev, classifier_info=info, started=started, argv=list(argv or [])
        )
        values = {n: ir.params[n].value for n in names if n in ir.params}
        results.append(GridPointResult(values=values, plan=po, report=rep, eval_result=ev))
        log.info("grid point %d/%d %s: %d edits", i + 1, len(points), values, sel.plan.n_edits)

    timings = {"bind": t_bind, "statistics": t_stats}
    report = grid_report(
        [grid_entry(i, r.values, r.report) for i, r in enumerate(results)],
        names=list(names),
        first=results[0].report,
        timings=timings,
        started=started,
        argv=list(argv or []),
    )
    run_dir = None
    if write:
        files = [
            GridPointFiles(
                plan_json=r.plan.selection.plan.model_dump_json(indent=2) + "\n",
                report=r.report,
            )
            for r in results
        ]
        run_dir = write_grid_folder(irs[0].name, report, files, out_root=opts.out)
        report["run_dir"] = str(run_dir)
    return GridOutcome(points=results, report=clean_json(report), run_dir=run_dir, timings=timings)
