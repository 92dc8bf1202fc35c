"""`steer fmt FILE… [--check|--diff]`: rewrite recipes in canonical form.

A file that `steer check` rejects is left alone: its errors are printed and the exit status is
1, so formatting never hides a broken recipe. Formatting is idempotent, keeps every comment and
never changes meaning: before a file is
written, the formatted text must parse to the same tree, format to itself again and keep every
comment (see `steerlang.lang.api.format_text`). Files are replaced atomically. `-` reads
stdin and writes stdout.
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys
import tempfile

from steerlang.commands.options import add_color_option, add_include_option, use_color, write


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "fmt",
        help="format recipes in canonical form",
        description="Format recipes in place (atomically). Comments are kept.",
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="recipe files, or - for stdin")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if a file would change"
    )
    mode.add_argument(
        "--diff", action="store_true", help="print a unified diff; exit 1 if a file would change"
    )
    add_include_option(p)  # the meaning check below compiles the recipe, includes and all
    add_color_option(p)
    p.set_defaults(func=run)


def _atomic_write(path: str, text: str) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    mode = os.stat(path).st_mode & 0o7777
    fd, tmp = tempfile.mkstemp(prefix=".steer-fmt-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _meaning_changed(
    before: str, after: str, path: str, *, allow_include_outside: bool = False
) -> str | None:
    """Last safety check before writing: the Recipe IR (includes resolved) is unchanged,
    up to source positions. `format_text` already compared the syntax trees. Includes follow
    the same rules as `steer check` (docs/language.md §7); nothing of theirs is printed."""
    from steerlang.lang.api import compile_text

    a = compile_text(before, path, allow_include_outside=allow_include_outside)
    if a.ir is None:
        return None  # nothing to compare against; the tree comparison still applied
    b = compile_text(after, path, allow_include_outside=allow_include_outside)
    if b.ir is None or _no_spans(a.ir.model_dump()) != _no_spans(b.ir.model_dump()):
        return "the formatted recipe would compile differently (a formatter bug; please report it)"
    return None


def _check_errors(
    text: str, label: str | None, allow_include_outside: bool, color: bool
) -> str | None:
    """A file `steer check` rejects is not formatted: its errors go to stderr and the reason
    comes back (None when it compiles; warnings do not stop formatting)."""
    from steerlang.lang.api import compile_text, render_diagnostics

    res = compile_text(text, label, allow_include_outside=allow_include_outside)
    errors = [d for d in res.diagnostics if d.is_error]
    if not errors:
        return None
    write(sys.stderr, render_diagnostics(errors, res.sources, color=color))
    n = len(errors)
    return f"`steer check` reports {n} error{'s' if n != 1 else ''}; fix {'them' if n != 1 else 'it'} first"


def _no_spans(x: object) -> object:
    if isinstance(x, dict):
        return {k: _no_spans(v) for k, v in x.items() if k not in ("span", "source_hash")}
    if isinstance(x, list):
        return [_no_spans(v) for v in x]
    return x


def run(args: argparse.Namespace) -> int:
    if getattr(args, "debug", False):
        os.environ["STEERLANG_DEBUG"] = "1"  # let internal errors surface as tracebacks
    from steerlang.lang.api import FormatError, format_text, read_recipe_file, render_diagnostics

    color = use_color(args.color, sys.stderr)
    status = 0
    changed = 0
    for path in args.files:
        try:
            if path == "-":
                text = sys.stdin.read()
            else:
                # regular files of a recipe's size only (a FIFO would block); newlines kept
                text = read_recipe_file(path)
        except (OSError, UnicodeDecodeError) as e:
            reason = "not UTF-8 text" if isinstance(e, UnicodeDecodeError) else e.strerror
            if reason is None:  # NotARecipeFile: "is a FIFO", "is larger than 1 MiB", ...
                reason = str(e).removeprefix(f"{path} ")
            print(f"error: cannot read {path}: {reason}", file=sys.stderr)
            status = 1
            continue
        label = None if path == "-" else path
        refused = _check_errors(text, label, args.allow_include_outside, color)
        if refused:
            print(f"error: {path} was not formatted: {refused}", file=sys.stderr)
            status = 1
            continue
        try:
            out = format_text(text, label)
        except FormatError as e:
            write(sys.stderr, render_diagnostics(e.diagnostics, {label: text}, color=color))
            print(f"error: {path} was not formatted", file=sys.stderr)
            status = 1
            continue
        if path == "-":
            sys.stdout.write(out)
            continue
        if out == text:
            continue
        problem = _meaning_changed(
            text, out, path, allow_include_outside=args.allow_include_outside
        )
        if problem:
            print(f"error: {path} was not formatted: {problem}", file=sys.stderr)
            status = 1
            continue
        changed += 1
        if args.diff:
            sys.stdout.writelines(
                difflib.unified_diff(
                    text.splitlines(keepends=True),
                    out.splitlines(keepends=True),
                    fromfile=f"{path} (original)",
                    tofile=f"{path} (formatted)",
                )
            )
            status = max(status, 1)
        elif args.check:
            print(f"would reformat {path}")
            status = max(status, 1)
        else:
            try:
                _atomic_write(path, out)
            except OSError as e:
                print(f"error: cannot write {path}: {e.strerror}", file=sys.stderr)
                status = 1
                continue
            print(f"reformatted {path}")
    if not args.check and not args.diff and changed == 0 and status == 0 and "-" not in args.files:
        n = len(args.files)
        print(f"{n} file{'s' if n != 1 else ''} already formatted")
    return status
