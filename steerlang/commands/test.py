"""`steer test [PATH]`: rule tests on synthetic statistics tables, no model (promtool-style).

A test file (`*.steertest.yaml`) names a recipe and lists cases; each case gives a tiny
per-feature statistics table for the sites the rules read and the feature ids the plan must
edit there. Selection runs exactly as in `steer run` (same engine, same conflict policy), so
a rule's meaning can be pinned down in CI without weights or data:

    recipe: waterbirds.steer            # relative to this file; or `source: |` inline text
    tests:
      - name: strong background features are suppressed
        params: {thr: 0.5}              # optional --param overrides
        n_features: 6                   # optional default table size
        stats:
          "7":                          # LAYER, LAYER:SITE or LAYER:SITE:TOKENS
            corr:water: [0.9, 0.2, 0.6, -0.4, 0.0, 0.55]
            mean: [1, 2, 3, 4, 5, 6]
            top_concept: [text, water, bird, sky, text, sea]
        expect:
          "7": [0, 2, 5]                # feature ids edited at that site (exactly these)
        expect_rules:                   # optional: which rule wins each feature
          "7": {0: bg, 2: bg}
        expect_ops:                     # optional: the edit of a feature
          "7": {0: suppress}
        expect_warnings: [W321]         # optional: selection warning codes, in any order

Deterministic: no randomness, no model, no files besides the recipe and includes.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from steerlang.errors import SteerError

if TYPE_CHECKING:  # pragma: no cover
    from steerlang.pipeline.selection import SelectionResult, SiteInfo
    from steerlang.pipeline.stats_table import StatsTable

SUFFIXES = (".steertest.yaml", ".steertest.yml")


@dataclass
class CaseResult:
    file: str
    name: str
    ok: bool
    problems: list[str] = field(default_factory=list)


def _site_key(key: Any) -> tuple[int, str, str]:
    parts = str(key).split(":")
    try:
        layer = int(parts[0])
    except ValueError:
        raise SteerError(
            f"site key {key!r} must start with a layer number",
            help='write "7", "7:resid_post" or "7:resid_post:patches"',
        ) from None
    site = parts[1] if len(parts) > 1 and parts[1] else "resid_post"
    tokens = parts[2] if len(parts) > 2 and parts[2] else "*"
    return layer, site, tokens


def tables_from_spec(
    stats: dict[str, Any], n_default: int | None
) -> tuple[dict[tuple[int, str, str], StatsTable], dict[tuple[int, str], int]]:
    """StatsTables keyed (layer, site, tokens|'*') and d_sae per (layer, site)."""
    import numpy as np

    from steerlang.pipeline.stats_table import StatsTable

    tables: dict[tuple[int, str, str], StatsTable] = {}
    sizes: dict[tuple[int, str], int] = {}
    for key, cols in (stats or {}).items():
        layer, site, tokens = _site_key(key)
        if not isinstance(cols, dict):
            raise SteerError(f"stats for site {key!r} must map column names to lists")
        cols = dict(cols)
        n = cols.pop("n_features", None)
        arrays: dict[str, Any] = {}
        for name, values in cols.items():
            if not isinstance(values, list):
                raise SteerError(f"stats column {name!r} at site {key!r} must be a list")
            if any(isinstance(v, str) for v in values):
                arrays[str(name)] = np.asarray([str(v) for v in values], dtype=object)
            else:
                arrays[str(name)] = np.asarray(
                    [np.nan if v is None else float(v) for v in values], dtype=np.float64
                )
        lengths = {len(v) for v in arrays.values()}
        if n is None:
            n = lengths.pop() if len(lengths) == 1 else n_default
        if n is None or any(ln != n for ln in {len(v) for v in arrays.values()}):
            raise SteerError(
                f"stats columns at site {key!r} have different lengths {sorted(lengths)}",
                help="give every column one value per feature (or set n_features)",
            )
        tables[(layer, site, tokens)] = StatsTable(int(n), arrays, meta={"site_label": str(key)})
        sizes[(layer, site)] = int(n)
    return tables, sizes


def _as_ids(v: Any) -> list[int]:
    return sorted(int(x) for x in (v or []))


def run_case(ir: Any, case: dict[str, Any], file: str) -> CaseResult:
    from steerlang.pipeline.selection import select

    name = str(case.get("name", "unnamed"))
    res = CaseResult(file, name, True)
    try:
        tables, sizes = tables_from_spec(case.get("stats", {}), case.get("n_features"))
        sites = _sites(ir, sizes, case.get("n_features"))
        out = select(ir, tables, sites, model="test")
    except SteerError as e:
        want_error = case.get("expect_error")
        if want_error and str(want_error) in e.message:
            return res
        res.ok = False
        res.problems.append(f"error: {e.message}")
        return res
    if case.get("expect_error"):
        res.ok = False
        res.problems.append(f"expected an error containing {case['expect_error']!r}")
        return res
    res.problems = _problems(case, out)
    res.ok = not res.problems
    return res


def _sites(
    ir: Any, sizes: dict[tuple[int, str], int], n_default: int | None
) -> dict[tuple[int, str], SiteInfo]:
    """A stand-in SAE of the case's table size at every site a rule names."""
    from steerlang.pipeline.selection import SiteInfo

    sites: dict[tuple[int, str], SiteInfo] = {}
    for r in ir.rules:
        for layer in r.scope.layers:
            n = sizes.get((layer, r.scope.site), n_default)
            if n is None:
                raise SteerError(
                    f"no statistics (or n_features) for layer {layer} {r.scope.site}",
                    help=f'add stats for "{layer}" or set n_features in the case',
                )
            sites[(layer, r.scope.site)] = SiteInfo(sae="test", d_sae=int(n))
    return sites


def _problems(case: dict[str, Any], out: SelectionResult) -> list[str]:
    """How the selection `out` differs from the case's expect / expect_rules / expect_ops /
    expect_warnings."""
    problems: list[str] = []
    got: dict[tuple[int, str], dict[int, Any]] = {}
    for s in out.plan.sites:
        got[(s.layer, s.site)] = {e.feature: e for e in s.edits}
    for key, ids in (case.get("expect") or {}).items():
        layer, site, _ = _site_key(key)
        have = sorted(got.get((layer, site), {}))
        want = _as_ids(ids)
        if have != want:
            problems.append(
                f"site {key}: edited features {have}, expected {want} "
                f"(missing {sorted(set(want) - set(have))}, extra {sorted(set(have) - set(want))})"
            )
    for field_name, attr in (("expect_rules", "rule"), ("expect_ops", "op")):
        for key, mapping in (case.get(field_name) or {}).items():
            layer, site, _ = _site_key(key)
            edits = got.get((layer, site), {})
            for f, want in (mapping or {}).items():
                e = edits.get(int(f))
                have = getattr(e, attr) if e is not None else None
                if have != want:
                    problems.append(f"site {key} feature {f}: {attr} {have!r}, expected {want!r}")
    if "expect_warnings" in case:
        have_w = sorted(w.code for w in out.warnings)
        want_w = sorted(str(c) for c in case.get("expect_warnings") or [])
        if have_w != want_w:
            problems.append(f"warnings {have_w}, expected {want_w}")
    return problems


def run_file(path: Path) -> list[CaseResult]:
    """Every case of one test file (a recipe that does not compile fails every case)."""
    import yaml

    from steerlang.lang.api import compile_file, compile_text

    try:
        doc = yaml.safe_load(path.read_text("utf-8"))
    except (OSError, yaml.YAMLError) as e:
        return [CaseResult(str(path), "<file>", False, [f"cannot read test file: {e}"])]
    if not isinstance(doc, dict) or not isinstance(doc.get("tests"), list):
        return [CaseResult(str(path), "<file>", False, ["a test file needs a `tests:` list"])]
    results: list[CaseResult] = []
    for case in doc["tests"]:
        if not isinstance(case, dict):
            results.append(CaseResult(str(path), "<case>", False, ["each test must be a mapping"]))
            continue
        params = {str(k): str(v) for k, v in (case.get("params") or {}).items()}
        source = case.get("source", doc.get("source"))
        recipe = case.get("recipe", doc.get("recipe"))
        try:
            if source is not None:
                cres = compile_text(str(source), str(path.with_suffix(".steer")), params=params)
            elif recipe is not None:
                cres = compile_file(str((path.parent / str(recipe)).resolve()), params=params)
            else:
                raise SteerError("the test names no `recipe:` (file) or `source:` (inline text)")
        except SteerError as e:
            results.append(CaseResult(str(path), str(case.get("name")), False, [e.message]))
            continue
        if not cres.ok or cres.ir is None:
            results.append(
                CaseResult(
                    str(path),
                    str(case.get("name")),
                    False,
                    ["the recipe does not compile:\n" + cres.render()],
                )
            )
            continue
        results.append(run_case(cres.ir, case, str(path)))
    return results


def find_test_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(
        p
        for p in path.rglob("*")
        if p.name.endswith(SUFFIXES)
        and not any(part.startswith(".") for part in p.parts[len(path.parts) :])
    )


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "test",
        help="run rule tests on synthetic statistics tables (no model)",
        description="Run *.steertest.yaml rule tests: each case gives a tiny statistics table "
        "and the feature ids a recipe's plan must edit. Deterministic; no model or data.",
    )
    p.add_argument("path", nargs="?", default=".", help="test file or folder (default: .)")
    p.add_argument("--json", action="store_true", help="results as JSON on stdout")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    root = Path(args.path)
    if not root.exists():
        raise SteerError(
            f"no such file or folder: {root}", help="pass a *.steertest.yaml file or a folder"
        )
    files = find_test_files(root)
    if not files:
        raise SteerError(
            f"no *.steertest.yaml files under {root}",
            help="write one (see `steer test --help` and docs/running.md)",
        )
    results = [r for f in files for r in run_file(f)]
    failed = [r for r in results if not r.ok]
    if args.json:
        print(json.dumps([r.__dict__ for r in results], indent=2))
    else:
        for r in results:
            print(f"{'ok  ' if r.ok else 'FAIL'} {r.file}: {r.name}")
            for prob in r.problems:
                print("       " + prob.replace("\n", "\n       "))
        print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0
