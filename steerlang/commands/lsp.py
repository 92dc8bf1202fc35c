"""`steer lsp`: the language server on stdio, for editors (VS Code extension in editors/vscode)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "lsp",
        help="run the language server on stdio (for editors)",
        description=(
            "Language Server Protocol server over stdin/stdout: live diagnostics (the same as "
            "`steer check`), hover, completion, go to definition, formatting (`steer fmt`), "
            "document symbols and did-you-mean quick fixes."
        ),
    )
    p.add_argument(
        "--log-file",
        metavar="PATH",
        help="append the server's log to PATH (default: stderr, which editors show in their "
        "output panel)",
    )
    p.add_argument(
        "--log-level",
        default="WARNING",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="logging level (default: WARNING)",
    )
    p.add_argument(
        "--debounce-ms",
        type=float,
        default=None,
        metavar="MS",
        help="wait this long after an edit before re-checking (default: 0; edits that arrive "
        "during a check are coalesced into the next one anyway)",
    )
    p.add_argument(
        "--allow-include-outside",
        action="store_true",
        help="let recipes include files outside the workspace folder (default: only inside it)",
    )
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from steerlang.lsp.server import serve_stdio

    serve_stdio(
        log_file=args.log_file,
        log_level=args.log_level,
        debounce_ms=args.debounce_ms,
        allow_include_outside=args.allow_include_outside,
    )
    return 0
