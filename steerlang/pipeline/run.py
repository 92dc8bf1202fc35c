"""`steer run` after compilation: bind -> statistics -> steerability -> selection -> evaluate
-> report, for one RecipeIR.

The runtime consumes the RecipeIR the commands compiled and never reads recipe text. Each
stage lives in its own module, in the order data flows: bind.py (profile, device, model, SAEs,
dataset), stats_pass.py (feature statistics), steer_pass.py (steerability sweeps),
selection.py (the rule engine), eval_pass.py (baseline vs steered on the same images); the
report is rendered from a RunRecord. Everything expensive is cached on disk under content
keys, so a rerun of the same recipe recomputes nothing and reports the same numbers.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from steerlang.files import content_key
from steerlang.pipeline.bind import Binding, RunOptions, attack_style_for, bind
from steerlang.pipeline.distributed import is_main
from steerlang.pipeline.eval_pass import evaluate_task
from steerlang.pipeline.feature_cards import cards_for_plan
from steerlang.pipeline.per_image import per_image_results
from steerlang.pipeline.selection import SiteInfo, select
from steerlang.pipeline.stats_pass import StatsOutcome, statistics_for
from steerlang.pipeline.stats_table import tokens_key
from steerlang.pipeline.steer_pass import add_steerability
from steerlang.plan import RecipeIR
from steerlang.report.build import build_report
from steerlang.report.folder import check_out_root, write_run_folder
from steerlang.report.record import RunRecord


@dataclass
class PlanOutcome:
    ir: RecipeIR
    binding: Binding
    stats: StatsOutcome
    selection: Any  # SelectionResult
    timings: dict[str, float] = field(default_factory=dict)


def plan_ir(
    ir: RecipeIR,
    opts: RunOptions,
    *,
    handle: Any = None,
    progress: Any = None,
    near_miss_eps: float = 0.05,
) -> PlanOutcome:
    """Bind, load or compute the statistics and steerability the rules read, and select."""
    t0 = time.perf_counter()
    b = bind(ir, opts, handle=handle)
    t1 = time.perf_counter()
    stats = statistics_for(ir, b, use_cache=opts.use_cache, progress=progress)
    t2 = time.perf_counter()
    add_steerability(ir, b, stats, use_cache=opts.use_cache, progress=progress)
    t3 = time.perf_counter()
    sel = select_with(ir, b, stats, near_miss_eps=near_miss_eps)
    t4 = time.perf_counter()
    return PlanOutcome(
        ir=ir,
        binding=b,
        stats=stats,
        selection=sel,
        timings={
            "bind": t1 - t0,
            "statistics": t2 - t1,
            "steerability": t3 - t2,
            "selection": t4 - t3,
        },
    )


def select_with(
    ir: RecipeIR, b: Binding, stats: StatsOutcome, *, near_miss_eps: float = 0.05
) -> Any:
    """The rule engine over statistics already at hand (also a grid point's selection,
    steerlang/pipeline/grid.py)."""
    sites = {
        k: SiteInfo(sae=b.sae_refs[k], d_sae=s.d_sae, sae_hash=s.content_hash())
        for k, s in b.saes.items()
    }
    stats_key = (
        content_key(sorted(stats.keys.values()) + [r.key for r in stats.steerability.values()])
        if stats.keys
        else None
    )
    return select(
        ir, stats.tables, sites, model=b.model_ref, stats_key=stats_key, near_miss_eps=near_miss_eps
    )


@dataclass
class RunOutcome:
    plan: PlanOutcome
    report: dict[str, Any]
    run_dir: Path | None
    eval_result: Any | None


def run_ir(
    ir: RecipeIR,
    opts: RunOptions,
    *,
    handle: Any = None,
    progress: Any = None,
    argv: Sequence[str] | None = None,
    write: bool = True,
) -> RunOutcome:
    """Plan, evaluate the task (when the recipe has one), build the report and (with `write`)
    the run folder. Tests call it with hand-built IRs.

    With `write`, the output folder is checked before anything is bound or computed, so an
    unusable `--out` fails in milliseconds; a folder that still cannot be written at the end
    raises `steerlang.report.folder.RunFolderError`, which carries the report and says where
    it was saved."""
    if write:
        check_out_root(opts.out)
    started = time.time()
    po = plan_ir(ir, opts, handle=handle, progress=progress)
    ev = None
    classifier_info: dict[str, Any] | None = None
    t0 = time.perf_counter()
    if ir.task is not None:
        ev, classifier_info = evaluate_task(ir, po.binding, po.selection.plan, progress=progress)
    po.timings["evaluation"] = time.perf_counter() - t0
    rec = run_record(po)
    rec.predictions, rec.examples = per_image_results(ir, ev)
    report = build_report(
        rec, ev, classifier_info=classifier_info, started=started, argv=list(argv or [])
    )
    run_dir = None
    if write and is_main():  # under torchrun only rank 0 writes (pipeline/distributed.py)
        run_dir = write_run_folder(rec, report, out_root=opts.out)
        report["run_dir"] = str(run_dir)
    return RunOutcome(plan=po, report=report, run_dir=run_dir, eval_result=ev)


def run_record(po: PlanOutcome) -> RunRecord:
    """What the report shows, as data (the report package never reads the Binding)."""
    b = po.binding
    return RunRecord(
        ir=po.ir,
        selection=po.selection,
        model_ref=b.model_ref,
        model_hash=b.handle.content_hash,
        device=b.device,
        sae_refs={f"{k[0]}:{k[1]}": ref for k, ref in b.sae_refs.items()},
        sae_hashes={f"{k[0]}:{k[1]}": s.content_hash() for k, s in b.saes.items()},
        dataset=b.dataset.to_dict() if b.dataset is not None else None,
        data_root=str(b.table.root) if b.table is not None else None,
        attack_style=attack_style_for(po.ir, b),
        stats_keys=po.stats.keys,
        stats_cached=po.stats.cached,
        stats_computed=po.stats.computed,
        steerability=po.stats.steerability,
        rule_tables={
            (r.rule, r.layer, r.site): t
            for r in po.selection.per_rule
            if (t := po.stats.tables.get((r.layer, r.site, tokens_key(r.tokens)))) is not None
        },
        profile=b.profile.to_dict() if hasattr(b.profile, "to_dict") else None,
        timings=dict(po.timings),
        feature_cards=cards_for_plan(po.ir, po.selection, po.stats, b.handle.preprocess),
    )
