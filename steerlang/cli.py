"""The `steer` command line. Each subcommand lives in `steerlang.commands.<name>` and exposes
`register(subparsers)`; registration must not import torch (fast start for `steer check`), so
command modules import runtime code inside their handlers.

Exit codes: 0 ok, 1 diagnostics/errors in the input, 2 usage, 141 the output pipe was closed
(`steer check … | head`).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from steerlang.version import __version__

# Subcommand modules in help order; each one must exist (a missing module is a packaging bug).
COMMAND_MODULES = [
    "check",
    "fmt",
    "compile",
    "plan",
    "explain",
    "show",
    "run",
    "compare",
    "sweep",
    "test",
    "explain_code",
    "lsp",
    "zoo",
    "train_sae",
    "sae_stats",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="steer",
        description="steerlang: steer CLIP's vision transformer with SAE feature recipes",
    )
    if sys.version_info >= (3, 14):  # pragma: no cover - depends on interpreter
        parser.suggest_on_error = True  # type: ignore[attr-defined]
    parser.add_argument("--version", action="version", version=f"steerlang {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show Python tracebacks for errors (for bug reports)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"steerlang.commands.{name}").register(sub)
    sub.add_parser("version", help="print the steerlang version").set_defaults(
        func=lambda args: print(f"steerlang {__version__}") or 0
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # The command line as given (for report.json's argv and "reproduce"), also when called
    # in process with an explicit list.
    args.command_line = ["steer", *(sys.argv[1:] if argv is None else argv)]
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from steerlang.commands.options import apply_loading_options
    from steerlang.errors import SteerError

    try:
        apply_loading_options(args)
        if os.environ.get("WORLD_SIZE", "1") not in ("", "1"):
            # launched by torchrun: join the process group (docs/scale.md)
            from steerlang.pipeline.distributed import init_from_env

            init_from_env(getattr(args, "device", None))
        rc = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's final flush
    except BrokenPipeError:
        return _reader_left()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except SteerError as e:
        if args.debug:
            raise
        print(f"error: {e.message}", file=sys.stderr)
        if e.help:
            print(f"  help: {e.help}", file=sys.stderr)
        return 1
    finally:
        if "torch.distributed" in sys.modules:
            from steerlang.pipeline.distributed import finish

            finish()
    return int(rc or 0)


def _reader_left() -> int:
    """`steer check … | head`: the reader closed the pipe. Exit quietly with 141 (128 +
    SIGPIPE, what a tool killed by the signal reports); stdout goes to /dev/null so the
    interpreter's last flush at exit cannot raise again (the recipe in Python's `signal` docs)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return 141


if __name__ == "__main__":
    sys.exit(main())
