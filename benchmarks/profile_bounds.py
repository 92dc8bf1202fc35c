"""How long does reading a hostile `steer.yaml` take, against an ordinary one?

Each hostile profile (a 666-byte and a 370-byte "billion laughs", flow nesting 5,000 deep,
block nesting 80 deep, a self-referencing alias, a 5,001-digit `version`) must be rejected with
a ProfileError in time comparable to reading an ordinary profile of the same size class:
the bounds in steerlang/profile.py are checked before anything expands the document. Reports
the median time of each (N repeats) and its ratio to the ordinary profile's, measured in this
one process. Target: every ratio below 50 (an unbounded reader takes minutes or runs out of
memory on the first two).

    python benchmarks/profile_bounds.py [--repeat 20]

Last line: one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from steerlang.errors import ProfileError
from steerlang.profile import profile_from_text

ORDINARY = """\
version: 1
cache: /tmp/steer-bench-cache
device: cpu
models:
  default: zoo:tiny-clip
  b32: openclip:ViT-B-32@datacomp_xl_s13b_b90k
saes:
  b32:
    default: "hf:org/sae-{layer}-{hook}"
    "11:resid_post": /data/saes/l11
datasets:
  waterbirds: {format: waterbirds, root: /data/wb}
  birds: {format: table, root: /data/birds.csv, image_column: path, group_columns: [y, place]}
"""


def laughs(levels: int, sep: str = ", ") -> str:
    text = 'version: 1\nl0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n'
    for n in range(1, levels + 1):
        text += f"l{n}: &l{n} [" + sep.join([f"*l{n - 1}"] * 9) + "]\n"
    return text


HOSTILE = {
    "laughs_666": laughs(9, ",  ") + "# " + "x" * 22 + "\n",
    "laughs_370": laughs(5) + "#" * 16 + "\n",
    "flow_depth_5000": "models: " + "[" * 5000 + "]" * 5000 + "\n",
    "block_depth_80": "".join(" " * i + f"k{i}:\n" for i in range(80)) + " " * 80 + "v: 1\n",
    "self_alias": "models: &m\n  a: *m\n",
    "version_5001_digits": "version: " + "7" * 5001 + "\n",
}


def _time(text: str, repeat: int, *, hostile: bool) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        try:
            profile_from_text(text, "steer.yaml")
            ok = True
        except ProfileError:
            ok = False
        times.append(time.perf_counter() - t0)
        if ok == hostile:
            raise SystemExit(f"unexpected {'acceptance' if ok else 'rejection'}: {text[:60]!r}")
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()
    base = _time(ORDINARY, args.repeat, hostile=False)
    out: dict[str, float] = {"ordinary_ms": round(base * 1e3, 3)}
    for name, text in HOSTILE.items():
        t = _time(text, args.repeat, hostile=True)
        out[f"{name}_ms"] = round(t * 1e3, 3)
        out[f"{name}_ratio"] = round(t / base, 2)
        print(f"{name:22s} {len(text):6d} bytes  {t * 1e3:8.2f} ms  x{t / base:6.2f}")
    out["max_ratio"] = max(v for k, v in out.items() if k.endswith("_ratio"))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
