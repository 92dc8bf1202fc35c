"""How fast is `steer check` on a 200-rule recipe?

Generates a realistic 200-rule recipe (the language's rule shapes: thresholds on statistics,
top-k selections, explicit ids, several layers, sites and token scopes, comments), then measures

- in-process: `steer check` work after start-up (compile + render diagnostics), median of N;
- start-up: a fresh `python -m steerlang check FILE` process, wall clock, median of M, with the
  parser's table cache (`steerlang/lang/grammar_cache.py`) and without it
  (`STEERLANG_NO_CACHE=1`), alternating so that machine noise hits both alike.

Target: <= 50 ms after start-up, so a check on every save feels instant. Last line: one JSON
object with the figures.

    python benchmarks/check_speed.py [--rules 200] [--repeat 30] [--startup-repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

HEADER = """steer 1
recipe bench "generated benchmark recipe"

model default
dataset waterbirds
task classify y as ["landbird", "waterbird"] prompt "a photo of a {}."
groups y, place
concept water = place == 1
concept land = place == 0
param thr = 0.3
param k = 10
"""

SITES = ["resid_post", "resid_pre", "attn_out", "mlp_out"]


def generate(n_rules: int, seed: int = 0) -> str:
    """A clean recipe (no diagnostics) in the language's rule shapes. Each (layer, site) gets one
    kind of edit (identical edits or disjoint ids never override each other), as a careful
    author would write it."""
    rnd = random.Random(seed)
    lines = [HEADER]
    for i in range(n_rules):
        layer, s = i % 12, (i // 12) % 4
        scope = f"at layer {layer}" + (f" site {SITES[s]}" if s else "")
        if s == 0:
            body = f"suppress features where corr(water) > thr and freq() < 0.{rnd.randint(2, 9)}"
        elif s == 1:
            body = f"clamp feature {i * 100 + rnd.randint(0, 99)} to {rnd.randint(1, 30)}"
        elif s == 2:
            body = "tokens patches scale top k features by corr(land) by 0.5"
        else:
            body = f'mean-ablate features where promotes("text") > 0.{rnd.randint(1, 5)}'
        comment = f"  # rule {i}" if i % 10 == 0 else ""
        lines.append(f"rule r{i}: {scope} {body}{comment}\n")
    return "".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rules", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--startup-repeat", type=int, default=5)
    args = ap.parse_args(argv)

    text = generate(args.rules)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bench.steer")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)

        t0 = time.perf_counter()
        from steerlang.lang.api import compile_file, render_diagnostics

        res = compile_file(path)  # first call: builds (or loads) the parser
        first_ms = (time.perf_counter() - t0) * 1000
        assert res.ok and not res.diagnostics, render_diagnostics(res.diagnostics, res.sources)
        n_rules = len(res.ir.rules)
        n_tokens = sum(1 for _ in text.split())

        times, cpu = [], []
        for _ in range(args.repeat):
            t, c = time.perf_counter(), time.process_time()
            r = compile_file(path)
            render_diagnostics(r.diagnostics, r.sources)
            times.append((time.perf_counter() - t) * 1000)
            cpu.append((time.process_time() - c) * 1000)

        env_cached = {k: v for k, v in os.environ.items() if k != "STEERLANG_NO_CACHE"}
        envs = {"cached": env_cached, "no_cache": {**env_cached, "STEERLANG_NO_CACHE": "1"}}
        startup: dict[str, list[float]] = {name: [] for name in envs}
        for i in range(args.startup_repeat):
            for name in sorted(envs, reverse=bool(i % 2)):
                t = time.perf_counter()
                proc = subprocess.run(
                    [sys.executable, "-m", "steerlang", "check", path],
                    capture_output=True,
                    text=True,
                    env=envs[name],
                )
                startup[name].append(time.perf_counter() - t)
                assert proc.returncode == 0, proc.stdout + proc.stderr

    median = statistics.median(times)
    print(f"recipe: {n_rules} rules, {len(text.splitlines())} lines, ~{n_tokens} words")
    print(f"first check in process (imports + parser load): {first_ms:.1f} ms")
    print(
        f"check after start-up: median {median:.1f} ms, min {min(times):.1f} ms, "
        f"max {max(times):.1f} ms over {args.repeat} runs (target <= 50 ms)"
    )
    print(f"check after start-up, CPU time: median {statistics.median(cpu):.1f} ms")
    print(f"machine load (1 min) {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    for name, label in (("cached", "with the table cache"), ("no_cache", "without it")):
        print(
            f"`python -m steerlang check` process wall time {label}: median "
            f"{statistics.median(startup[name]):.3f} s over {args.startup_repeat} runs"
        )
    print(
        json.dumps(
            {
                "benchmark": "check_speed",
                "rules": n_rules,
                "lines": len(text.splitlines()),
                "check_ms_median": round(median, 2),
                "check_ms_min": round(min(times), 2),
                "check_ms_max": round(max(times), 2),
                "check_cpu_ms_median": round(statistics.median(cpu), 2),
                "first_check_ms": round(first_ms, 1),
                "startup_wall_s_median": round(statistics.median(startup["cached"]), 3),
                "startup_no_cache_wall_s_median": round(statistics.median(startup["no_cache"]), 3),
                "load_avg_1min": round(os.getloadavg()[0], 2),
                "cpu_count": os.cpu_count(),
                "target_ms": 50,
                "meets_target": median <= 50,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
