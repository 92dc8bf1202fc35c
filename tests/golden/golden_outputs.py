"""Record and compare what the command line prints for the shipped recipes and test fixtures.

A layout change (moving modules, splitting files) must not move a single number. This script
captures, in one JSON file per command, what `steer compile` prints for every `.steer` file under
`recipes/` and `tests/`, what `steer plan` prints for the waterbirds recipe, and what `steer run
--json` reports (plus the run folder's plan and explain files) for every shipped recipe, with
what legitimately changes between runs (wall times, timestamps, the cache and output folders)
taken out. `tests/golden/test_outputs.py` compares the fast part (compile, plan) in the default
test run; the runs take minutes (the steerability recipe sweeps 1,024 features) and are compared
by hand:

    python tests/golden/golden_outputs.py compare --runs     # from the checkout's root
    python tests/golden/golden_outputs.py record [--runs]    # after a deliberate change of output

Each command runs in process through `steerlang.cli.main`, with a fresh statistics cache so the
numbers are computed, not read back.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STORE = Path(__file__).resolve().parent / "expected"
# Keys whose values differ between two identical runs (clocks, folders, the command line).
VOLATILE = {
    "timings",
    "started",
    "wall_seconds",
    "run_dir",
    "argv",
    "reproduce",  # the command line again, with the checkout's absolute recipe path
    "created",
    "elapsed",
}


def steer_files() -> list[Path]:
    files = sorted((ROOT / "recipes").glob("*.steer")) + sorted((ROOT / "tests").rglob("*.steer"))
    return [f.relative_to(ROOT) for f in files]


def scrub(value: object, replace: dict[str, str]) -> object:
    """Drop volatile keys and put placeholders for machine-specific folders."""
    if isinstance(value, dict):
        return {k: scrub(v, replace) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [scrub(v, replace) for v in value]
    if isinstance(value, str):
        for old, new in replace.items():
            value = value.replace(old, new)
        return value
    return value


@contextlib.contextmanager
def chdir_root() -> Iterator[None]:
    old = os.getcwd()
    os.chdir(ROOT)
    try:
        yield
    finally:
        os.chdir(old)


def call(argv: list[str], replace: dict[str, str], *, stderr: bool = False) -> dict[str, object]:
    """Run one `steer` command in process; return its exit code and scrubbed output. Standard
    error holds the diagnostics of `compile`; for model commands it holds progress logs, which
    are not compared."""
    from steerlang.cli import main

    out, err = io.StringIO(), io.StringIO()
    with chdir_root(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(argv)
        except SystemExit as e:  # argparse usage errors
            rc = int(e.code or 0)
    text = out.getvalue()
    try:
        stdout: object = json.loads(text)
    except json.JSONDecodeError:
        stdout = text
    found: dict[str, object] = {
        "argv": scrub(argv, replace),
        "rc": rc,
        "stdout": scrub(stdout, replace),
    }
    if stderr:
        found["stderr"] = scrub(err.getvalue(), replace)
    return found


def compile_outputs() -> dict[str, object]:
    return {str(f): call(["compile", str(f)], {}, stderr=True) for f in steer_files()}


def plan_outputs(cache: str) -> dict[str, object]:
    argv = ["plan", "recipes/waterbirds.steer"]
    return {"recipes/waterbirds.steer": call(argv, {cache: "$CACHE"})}


def run_outputs(cache: str, out: str) -> dict[str, object]:
    results: dict[str, object] = {}
    for recipe in sorted((ROOT / "recipes").glob("*.steer")):
        rel = str(recipe.relative_to(ROOT))
        res = call(["run", rel, "--json", "--out", out], {cache: "$CACHE", out: "$OUT"})
        run_dirs = sorted(Path(out).iterdir(), key=lambda p: p.stat().st_mtime)
        folder = run_dirs[-1] if run_dirs else None
        for name in ("plan.json", "explain.json"):
            if folder is not None and (folder / name).exists():
                data = json.loads((folder / name).read_text())
                res[name] = scrub(data, {cache: "$CACHE", out: "$OUT"})
        results[rel] = res
    return results


def gather(with_runs: bool) -> dict[str, dict[str, object]]:
    """Every output, computed with a fresh statistics cache in a temporary folder."""
    before = os.environ.get("STEER_CACHE")
    with tempfile.TemporaryDirectory(prefix="steer-golden-") as tmp:
        cache, out = f"{tmp}/cache", f"{tmp}/runs"
        os.makedirs(out)
        os.environ["STEER_CACHE"] = cache
        try:
            found = {"compile": compile_outputs(), "plan": plan_outputs(cache)}
            if with_runs:
                found["run"] = run_outputs(cache, out)
        finally:
            if before is None:
                os.environ.pop("STEER_CACHE", None)
            else:
                os.environ["STEER_CACHE"] = before
    # Through JSON and back, as the stored files were, so tuples compare equal to lists.
    return json.loads(json.dumps(found))


def differences(kind: str, expected: dict[str, object], found: dict[str, object]) -> list[str]:
    lines = []
    for key in sorted(set(expected) | set(found)):
        if expected.get(key) != found.get(key):
            lines.append(f"{kind}: {key} differs")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("action", choices=["record", "compare"])
    ap.add_argument("--runs", action="store_true", help="also `steer run` every shipped recipe")
    args = ap.parse_args(argv)
    found = gather(args.runs)
    STORE.mkdir(exist_ok=True)
    bad: list[str] = []
    for kind, outputs in found.items():
        path = STORE / f"{kind}.json"
        if args.action == "record":
            path.write_text(json.dumps(outputs, indent=1, sort_keys=True) + "\n")
            print(f"recorded {len(outputs)} {kind} outputs in {path.relative_to(ROOT)}")
        else:
            bad += differences(kind, json.loads(path.read_text()), outputs)
            print(f"{kind}: compared {len(outputs)} outputs")
    for line in bad:
        print(line)
    if args.action == "compare":
        print("identical" if not bad else f"{len(bad)} outputs differ")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
