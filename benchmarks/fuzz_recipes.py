"""Fuzz the language front end: mutated and generated recipes, each must get diagnostics (never
an internal error, E499, or an exception) within a time bound.

Inputs, from a seeded random generator (the same `--seed` gives the same inputs):

- mutations of every recipe in `recipes/` and `tests/lang/bad/` (delete, insert characters or
  keywords, duplicate a span) as the property tests make them (tests/lang/test_lang_properties.py);
- hostile mutations from issue "Bounded": bursts of `(`, `[` or `not` (up to thousands deep),
  unclosed brackets and missing operands inside nested brackets, numbers of up to 6,000 digits,
  huge ranges (`features 0..10^12`), lines repeated up to 2,000 times, a few kilobytes of
  garbage on one line, chains of concepts;
- generated recipes from a small grammar of valid and almost-valid lines.

Each input is compiled (`compile_text`) and formatted (`format_text`); the time of both together
is compared with a bound that grows with the input's size: `--bound-s` (default 5 s) plus
`--bound-us-per-char` (default 20 µs) per character. The front end's time is linear in the
text (tests/lang/test_lang_bounded.py), so a fixed number of seconds is either meaningless for
small inputs or broken by large ones; recipes are at most `limits.MAX_TEXT_CHARS` (1 MiB)
characters, where the bound is 5 + 21 = 26 s. The fixed part covers what a short recipe may
still ask for: lists naming up to `limits.MAX_LISTED_VALUES` (2,097,152) feature ids, each
listed and indexed for the overlap lint (two lists of a million ids at one site: 2.1 s for
compile alone at load 3.4; a first 2 s fixed part was broken by such 150-character inputs at
load 4.8). Measured on the shared 2-core machine at load
about 3 (`--at-limit`, the slowest shapes at exactly the limit): at most 14.6 s, 13.9 µs per
character (90 nested parentheses per line, valid, so the formatter runs in full); seed-0 inputs
over 60 KB at most 10.3 µs per character (docs/language.md §13). Internal errors, exceptions and inputs over
the bound are printed with the input's number (rerun one with `--only N`) and counted.

    python benchmarks/fuzz_recipes.py --count 100000            # the full run (docs/language.md)
    python benchmarks/fuzz_recipes.py --count 300 --seed 1      # what CI runs (a test)
    python benchmarks/fuzz_recipes.py --at-limit                # the slowest shapes at 1 MiB

Last line: one JSON object (inputs, internal errors, exceptions, over-bound count, the bound,
the slowest input's number, size and time, the worst time per character and its input, codes
seen).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from steerlang.lang import limits  # noqa: E402
from steerlang.lang.api import FormatError, compile_text, format_text  # noqa: E402
from steerlang.lang.lexer import KEYWORDS  # noqa: E402

ALPHABET = "abcdefgxyz_0123456789 ()[],.:=<>!+-*/\"'#\n\t水🌊"
KEYWORD_LIST = sorted(KEYWORDS)
LINES = [
    "concept water = place == 1",
    "concept land = not water",
    "param thr = 0.3",
    "param k = 10",
    "set eps = 0.01",
    "dataset waterbirds",
    "model default",
    'task classify y as ["landbird", "waterbird"] prompt "a photo of a {}."',
    "groups y, place",
    "at layer 7 suppress features where corr(water) > thr",
    "at layers 3..5 site attn_out scale top k features by corr(land) by 0.5",
    "rule r: at layer 11 clamp feature 1234 to 20",
    "at layer 2 tokens [0, 3..5] add 1.5 to features 1, 2, 5..9",
    "at layer 4 mean-ablate features where freq() > 0.01 and mean(water) < 2",
    'at layer 6 suppress top 5 features by promotes("water") where corr(water) > 0.1',
    'include "_common.steer"',
]


def seeds() -> list[str]:
    files = sorted((REPO / "recipes").glob("*.steer")) + sorted(
        (REPO / "tests/lang/bad").glob("*.steer")
    )
    return [p.read_text(encoding="utf-8") for p in files]


def _mutate(text: str, rnd: random.Random) -> str:
    i = rnd.randrange(len(text) + 1)
    j = min(len(text), i + rnd.randrange(12))
    kind = rnd.randrange(4)
    if kind == 0:
        return text[:i] + text[j:]
    if kind == 1:
        return (
            text[:i] + "".join(rnd.choice(ALPHABET) for _ in range(rnd.randrange(1, 6))) + text[i:]
        )
    if kind == 2:
        return text[:i] + rnd.choice(KEYWORD_LIST) + " " + text[i:]
    return text[:i] + text[i:j] + text[i:j] + text[j:]


def _hostile(text: str, rnd: random.Random) -> str:
    """One of the issue's small inputs that used to cost exponential time or unbounded memory."""
    i = rnd.randrange(len(text) + 1)
    n = rnd.choice([3, 7, 9, 12, 50, 101, 500, 3000])
    kind = rnd.randrange(9)
    if kind == 0:
        piece = rnd.choice(["(", "[", "not ", "- ", "((x + ", "f(", "(corr(x) > "]) * n
    elif kind == 1:
        piece = (
            "\nat layer 9 suppress top 10 features by "
            + "(" * min(n, 40)
            + "corr(male) where freq() > 0.01\n"
        )
    elif kind == 2:
        piece = "9" * rnd.choice([41, 400, 4301, 6000])
    elif kind == 3:
        piece = f"\nat layer 1 suppress features 0..{10 ** rnd.randrange(3, 13)}\n"
    elif kind == 4:
        start = text.rfind("\n", 0, i) + 1
        end = text.find("\n", i)
        line = text[start : end if end >= 0 else len(text)]
        piece = ("\n" + line) * min(n, 2000)
    elif kind == 5:
        piece = "".join(rnd.choice("@$%^&`~?|\\") for _ in range(rnd.randrange(100, 5000)))
    elif kind == 6:
        m = min(n, 200)
        piece = "\nconcept c0 = place == 1\n" + "".join(
            f"concept c{k} = c{k - 1} and c{k - 1}\n" for k in range(1, m)
        )
    elif kind == 7:
        piece = f"\nat layer 1 tokens [0..{10 ** rnd.randrange(3, 15)}] suppress feature 1\n"
    else:
        piece = "\n" + "at layer suppress\n" * min(n, 2000)
    return text[:i] + piece + text[i:]


def _generated(rnd: random.Random) -> str:
    lines = ["steer 1"] + [rnd.choice(LINES) for _ in range(rnd.randrange(1, 30))]
    text = "\n".join(lines) + "\n"
    for _ in range(rnd.randrange(0, 3)):
        text = _mutate(text, rnd)
    return text


def make_input(k: int, seed: int, seed_texts: list[str]) -> tuple[str, str]:
    """Input number `k` of the run with `seed`: (kind, text)."""
    rnd = random.Random(f"{seed}:{k}")
    r = rnd.random()
    if r < 0.2:
        return "generated", _generated(rnd)
    text = rnd.choice(seed_texts)
    if r < 0.45:
        return "hostile", _hostile(text, rnd)
    for _ in range(rnd.randrange(1, 5)):
        text = _mutate(text, rnd)
    return "mutated", text


def at_limit_inputs(limit: int | None = None) -> dict[str, str]:
    """The slowest shapes we know, each filled up to `limit` characters (default: the largest
    recipe accepted, `limits.MAX_TEXT_CHARS`): what the size-proportional bound must cover."""
    lim = limits.MAX_TEXT_CHARS if limit is None else limit
    head = "steer 1\nconcept c = place == 1\n"

    def fill(line: str, tail: str = "") -> str:
        return head + line * ((lim - len(head) - len(tail)) // len(line)) + tail

    ids = ", ".join(str(i) for i in range(lim // 2))[: lim - len(head) - 40].rsplit(",", 1)[0]
    where = "at layer 7 suppress features where "
    return {
        "nested not, an error on the last line": fill(
            where + "not " * 200 + "freq() > 0.5\n", "at layer 7 t\n"
        ),
        "nested not, valid": fill(where + "not " * 90 + "freq() > 0.5\n"),
        "nested parentheses, valid": fill(where + "(" * 90 + "freq() > 0.5" + ")" * 90 + "\n"),
        "unclosed parentheses (E011)": fill(where + "(" * 120 + "\n"),
        "one long feature list": head + "at layer 7 suppress features " + ids + "\n",
        "rules, valid": fill(
            "at layer 3 suppress features where corr(c) > 0.1 and freq() > 0.01\n"
        ),
        "rules with duplicate names (E108)": fill(
            "rule r: at layer 7 clamp top 5 features by steerability() where freq() > 0.01 to 2\n"
        ),
        "broken lines (E004)": fill("at layer suppress\n"),
    }


def check_one(text: str) -> tuple[float, list[str], str | None]:
    """(seconds, codes, problem) for compile + format of one input; problem is None when the
    input got diagnostics only."""
    t0 = time.perf_counter()
    problem = None
    codes: list[str] = []
    try:
        res = compile_text(text, "fuzz.steer")
        codes = [d.code for d in res.diagnostics]
        if "E499" in codes:
            problem = "internal error (E499)"
        try:
            format_text(text, "fuzz.steer")
        except FormatError as e:
            if any(d.code == "E499" for d in e.diagnostics):
                problem = "internal formatter error (E499)"
    except Exception as e:  # the front end must never raise for any text
        problem = f"exception {type(e).__name__}: {e}"
    return time.perf_counter() - t0, codes, problem


def bound_for(chars: int, bound_s: float, bound_us_per_char: float) -> float:
    """The time bound for an input of `chars` characters (seconds)."""
    return bound_s + bound_us_per_char * chars / 1e6


def run(
    count: int,
    seed: int = 0,
    bound_s: float = 5.0,
    only: int | None = None,
    time_box_s: float | None = None,
    bound_us_per_char: float = 20.0,
    inputs: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Fuzz `count` inputs of `seed` (or one, `only`), or check the named `inputs` instead."""
    seed_texts = seeds()
    compile_text("steer 1\n")  # build the parser tables before timing anything
    stats: dict[str, Any] = {
        "inputs": 0,
        "internal_errors": 0,
        "exceptions": 0,
        "over_bound": 0,
        "stopped_by_time_box": False,
        "bound_s": bound_s,
        "bound_us_per_char": bound_us_per_char,
        "max_text_chars": limits.MAX_TEXT_CHARS,
        "bound_at_max_s": round(bound_for(limits.MAX_TEXT_CHARS, bound_s, bound_us_per_char), 2),
        "slowest_s": 0.0,
        "slowest_input": None,
        "slowest_kind": None,
        "slowest_chars": 0,
        "worst_us_per_char": 0.0,
        "worst_us_per_char_input": None,
        "worst_us_per_char_chars": 0,
        "by_kind": Counter(),
    }
    codes: Counter[str] = Counter()
    t_start = time.perf_counter()
    if inputs is not None:
        todo: Any = inputs
    else:
        todo = range(count) if only is None else [only]
    for k in todo:
        if time_box_s is not None and time.perf_counter() - t_start > time_box_s:
            stats["stopped_by_time_box"] = True
            break
        if inputs is not None:
            kind, text = "at limit", inputs[k]
        else:
            kind, text = make_input(k, seed, seed_texts)
        dt, cs, problem = check_one(text)
        stats["inputs"] += 1
        stats["by_kind"][kind] += 1
        codes.update(set(cs))
        if problem is not None:
            key = "exceptions" if problem.startswith("exception") else "internal_errors"
            stats[key] += 1
            print(f"input {k} ({kind}, {len(text)} chars): {problem}", flush=True)
        bound = bound_for(len(text), bound_s, bound_us_per_char)
        if dt > bound:
            stats["over_bound"] += 1
            print(f"input {k} ({kind}, {len(text)} chars): {dt:.2f} s > {bound:.2f} s", flush=True)
        if inputs is not None:
            print(f"{k}: {len(text):,} chars, {dt:.2f} s ({dt / len(text) * 1e6:.2f} µs/char)")
        if dt > stats["slowest_s"]:
            stats.update(slowest_s=dt, slowest_input=k, slowest_kind=kind, slowest_chars=len(text))
        per_char = dt / max(1, len(text)) * 1e6
        # per character only where the size dominates the fixed cost of a call
        if len(text) >= 10_000 and per_char > stats["worst_us_per_char"]:
            stats.update(
                worst_us_per_char=per_char,
                worst_us_per_char_input=k,
                worst_us_per_char_chars=len(text),
            )
        if only is None and inputs is None and (k + 1) % 5000 == 0:
            print(
                f"{k + 1} inputs, {stats['internal_errors']} internal errors, "
                f"slowest {stats['slowest_s']:.3f} s",
                flush=True,
            )
    stats["wall_s"] = round(time.perf_counter() - t_start, 1)
    stats["slowest_s"] = round(stats["slowest_s"], 4)
    stats["worst_us_per_char"] = round(stats["worst_us_per_char"], 2)
    stats["by_kind"] = dict(stats["by_kind"])
    stats["codes"] = dict(sorted(codes.items()))
    stats["seed"] = seed
    return stats


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--bound-s", type=float, default=5.0, help="time bound per input: fixed part (seconds)"
    )
    ap.add_argument(
        "--bound-us-per-char",
        type=float,
        default=20.0,
        help="time bound per input: microseconds per character added to --bound-s",
    )
    ap.add_argument(
        "--at-limit",
        action="store_true",
        help="check the slowest known shapes at the size limit instead of fuzzing",
    )
    ap.add_argument(
        "--time-box-s", type=float, default=None, help="stop after this long (counts so far)"
    )
    ap.add_argument("--only", type=int, default=None, help="run one input by its number")
    ap.add_argument("--show", action="store_true", help="with --only: print the input")
    args = ap.parse_args()
    if args.only is not None and args.show:
        print(make_input(args.only, args.seed, seeds())[1])
    stats = run(
        args.count,
        args.seed,
        args.bound_s,
        args.only,
        args.time_box_s,
        args.bound_us_per_char,
        at_limit_inputs() if args.at_limit else None,
    )
    print(json.dumps(stats))
    return 0 if not (stats["internal_errors"] or stats["exceptions"] or stats["over_bound"]) else 1


if __name__ == "__main__":
    sys.exit(main())
