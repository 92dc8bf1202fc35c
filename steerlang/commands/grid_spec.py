"""`--grid NAME=SPEC`: the param values of a grid run, parsed before anything is loaded.

SPEC is a comma-separated list whose items are values (`0.2,0.3,0.4`, `"a","b"`) or inclusive
integer ranges (`0..11`, `0..3,7`); several `--grid` options give the product of their values,
the first option varying slowest. The values stay text: each point is compiled with them as
`--param` overrides, so they are type-checked against the param declarations exactly as
`--param` is (E209 names the point). Cheap to import (no torch): `steer run` parses the grid
before compiling.
"""

from __future__ import annotations

import argparse
import itertools
import re

from steerlang.errors import SteerError

_RANGE = re.compile(r"\s*(-?\d+)\s*\.\.\s*(-?\d+)\s*")
# A grid of more points than this is almost certainly a typo (`0..1000000`).
MAX_POINTS = 10_000


def grid_pair(text: str) -> tuple[str, list[str]]:
    """`NAME=SPEC` -> (NAME, its values), for argparse (a malformed one is a usage error)."""
    name, sep, spec = text.partition("=")
    name = name.strip()
    if not sep or not name or not spec.strip():
        raise argparse.ArgumentTypeError(
            f"expected NAME=SPEC (e.g. --grid L=0..11 or --grid thr=0.2,0.3), found {text!r}"
        )
    try:
        return name, spec_values(spec)
    except SteerError as e:
        raise argparse.ArgumentTypeError(f"--grid {text}: {e.message}") from None


def spec_values(spec: str) -> list[str]:
    """The values a SPEC lists, ranges expanded, in order, each once."""
    out: list[str] = []
    for item in spec.split(","):
        item = item.strip()
        if not item:
            raise SteerError("an empty item in the list", help="separate values with one comma")
        m = _RANGE.fullmatch(item)
        if m is not None:
            lo, hi = int(m.group(1)), int(m.group(2))
            if hi < lo:
                raise SteerError(f"range `{item}` is reversed", help=f"write `{hi}..{lo}`")
            if hi - lo >= MAX_POINTS:
                raise SteerError(f"range `{item}` has more than {MAX_POINTS} values")
            out.extend(str(v) for v in range(lo, hi + 1))
        else:
            out.append(item)
    seen: set[str] = set()
    return [v for v in out if not (v in seen or seen.add(v))]


def grid_points(
    grids: list[tuple[str, list[str]]], params: dict[str, str] | None = None
) -> list[dict[str, str]]:
    """The product of the `--grid` values, each point merged over the fixed `--param`s."""
    names = [n for n, _ in grids]
    for n in names:
        if names.count(n) > 1:
            raise SteerError(
                f"--grid {n} is given twice",
                help=f"list every value in one option, e.g. `--grid {n}=0.2,0.3`",
            )
        if params and n in params:
            raise SteerError(
                f"`{n}` is given both as --param and as --grid",
                help=f"drop `--param {n}=…` (the grid sets it at every point)",
            )
    total = 1
    for _, vals in grids:
        total *= len(vals)
    if total > MAX_POINTS:
        raise SteerError(f"the grid has {total} points (at most {MAX_POINTS})")
    return [
        {**(params or {}), **dict(zip(names, combo, strict=True))}
        for combo in itertools.product(*(v for _, v in grids))
    ]


def repeated_param_error(name: str, values: list[str]) -> SteerError:
    """`--param NAME=…` twice: one value is meant, or a grid over all of them."""
    shown = ",".join(values)
    return SteerError(
        f"--param {name} is given {len(values)} times ({', '.join(values)})",
        help=f"give it once; to run every value in one process use `steer run RECIPE "
        f"--grid {name}={shown}`",
    )
