"""A grid in one process against separate runs: `steer run R --grid L=0..11` (12 layers) versus
the three slowest of those layers run one `steer run R --param L=…` at a time.

    python benchmarks/grid_speed.py [--recipe recipes/waterbirds.steer] [--grid L=0..11]

Both sides start from a fresh statistics cache (the zoo datasets stay materialised), in the
same machine window; the three slowest points are those whose evaluation and selection took
longest in the grid's own report. Wall and CPU time (user + sys of the child processes) are
both reported, since a shared machine's load moves wall time. Target (issue 12): the grid's
wall time < 1.5x the three separate runs'. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, out.stdout


def _uptime() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--recipe", default="recipes/waterbirds.steer")
    ap.add_argument("--grid", default="L=0..11")
    ap.add_argument("--cache", help="cache folder to use (default: a new temporary one)")
    args = ap.parse_args()
    cache = Path(args.cache or tempfile.mkdtemp(prefix="steer-grid-bench-"))
    out = Path(tempfile.mkdtemp(prefix="steer-grid-bench-runs-"))
    env = {**os.environ, "STEER_CACHE": str(cache), "PYTHONPATH": str(REPO)}
    steer = [sys.executable, "-m", "steerlang", "run", args.recipe, "--out", str(out), "-q"]
    # Materialise the zoo datasets once, outside the measurements.
    subprocess.run([*steer, "--json"], env=env, cwd=REPO, capture_output=True, check=True)

    def fresh_stats() -> None:
        for sub in ("stats", "steer"):
            shutil.rmtree(cache / sub, ignore_errors=True)

    name = args.grid.split("=", 1)[0]
    fresh_stats()
    load_grid = _uptime()
    g_wall, g_cpu, text = _timed([*steer, "--grid", args.grid, "--json"], env)
    grid = json.loads(text)
    cost = {
        e["params"][name]: e["timings"].get("evaluation", 0) + e["timings"].get("selection", 0)
        for e in grid["grid"]
    }
    slowest = sorted(cost, key=lambda k: -cost[k])[:3]
    fresh_stats()
    load_sep = _uptime()
    s_wall = s_cpu = 0.0
    for v in slowest:
        w, c, _ = _timed([*steer, "--param", f"{name}={v}", "--json"], env)
        s_wall += w
        s_cpu += c
    table = [
        {
            name: e["params"][name],
            "n_edits": e["plan"]["n_edits"],
            "worst_group": e["metrics"]["steered"].get("worst_group"),
            "accuracy": e["metrics"]["steered"]["accuracy"],
            "average_plain": e["metrics"]["steered"].get("average_plain"),
        }
        for e in grid["grid"]
    ]
    base = grid["grid"][0]["metrics"]["baseline"]
    for row in table:
        print(row)
    print(
        json.dumps(
            {
                "grid": args.grid,
                "points": len(grid["grid"]),
                "grid_wall_s": round(g_wall, 2),
                "grid_cpu_s": round(g_cpu, 2),
                "three_slowest": slowest,
                "separate_wall_s": round(s_wall, 2),
                "separate_cpu_s": round(s_cpu, 2),
                "wall_ratio": round(g_wall / s_wall, 3),
                "cpu_ratio": round(g_cpu / s_cpu, 3),
                "target_wall_ratio": 1.5,
                "loadavg_grid": load_grid,
                "loadavg_separate": load_sep,
                "baseline": {
                    "worst_group": base.get("worst_group"),
                    "accuracy": base["accuracy"],
                },
            }
        )
    )
    if not args.cache:
        shutil.rmtree(cache, ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
