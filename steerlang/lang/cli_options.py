"""Shared option handling for the language commands (check, fmt, compile): colour choice,
`--param NAME=VALUE` and `--layers N` parsing. Torch-free, like the commands themselves."""

from __future__ import annotations

import argparse
import os
from typing import TextIO


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, found {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, found {value}")
    return value


def param_pair(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, found {text!r}")
    return name.strip(), value


def add_compile_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--layers",
        type=positive_int,
        metavar="N",
        help="model depth for layer range checks (default: from the recipe's model)",
    )
    p.add_argument(
        "--param",
        type=param_pair,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a declared param (repeatable)",
    )


def add_color_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--color",
        choices=["auto", "always", "never"],
        default="auto",
        help="colour diagnostics (auto: when writing to a terminal)",
    )


def use_color(choice: str, stream: TextIO) -> bool:
    if choice == "always":
        return True
    if choice == "never":
        return False
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return bool(getattr(stream, "isatty", lambda: False)())


def params_dict(pairs: list[tuple[str, str]]) -> dict[str, str]:
    return dict(pairs)


def write(stream: TextIO, text: str) -> None:
    if text:
        stream.write(text if text.endswith("\n") else text + "\n")
