"""`steer explain-code CODE`: the long explanation of a diagnostic code (like `rustc --explain`).
Without a code, lists every code with its title."""

from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "explain-code",
        help="explain a diagnostic code such as E101",
        description="Print the long explanation of a diagnostic code; without CODE, list them.",
    )
    p.add_argument("code", nargs="?", metavar="CODE", help="for example E101 or W303")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from steerlang.errors import did_you_mean
    from steerlang.lang.codes import CODES, explain

    if not args.code:
        for info in CODES.values():
            print(f"{info.code}  {info.title}")
        return 0
    info = explain(args.code)
    if info is None:
        typed = args.code.strip().upper()
        typed = typed[:1] + typed[1:].replace("O", "0")  # E1O1 -> E101
        guess = typed if typed in CODES else did_you_mean(typed, list(CODES))
        print(f"error: unknown diagnostic code `{args.code}`", file=sys.stderr)
        hint = f"did you mean `{guess}`? " if guess else ""
        print(f"  help: {hint}run `steer explain-code` to list all codes", file=sys.stderr)
        return 2
    print(f"{info.code}: {info.title} ({info.severity})")
    print()
    print(info.explanation.rstrip())
    return 0
