"""Command-line options every `steer` command shares, defined once so that each flag parses and
reads the same way everywhere: `--param NAME=VALUE`, `--layers N`, `--allow-include-outside`,
`--color`, `--device` and the binding options of the runtime commands (`--profile --model --data --sae --no-cache -q`), plus
the logging and progress helpers of the runtime commands.

Importing this module must stay cheap (`steer check` starts without torch, pydantic or the
runtime): everything heavier loads inside the helpers that need it.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
from typing import Any, TextIO

DEVICE_NAMES = "auto, cpu, cuda, cuda:N or mps"
DEVICE_HELP = f"{DEVICE_NAMES} (default: the profile's `device`, else auto: CUDA when available)"


# ------------------------------------------------------------------------------------------
# Value types
# ------------------------------------------------------------------------------------------


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, found {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, found {value}")
    return value


def param_pair(text: str) -> tuple[str, str]:
    """`NAME=VALUE` -> (NAME, VALUE), both without surrounding whitespace."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(
            f"expected NAME=VALUE (e.g. --param thr=0.25), found {text!r}"
        )
    return name.strip(), value.strip()


def device_name(text: str) -> str:
    """A device name as a profile's `device:` accepts it (checked here, resolved at binding)."""
    from steerlang.profile import DEVICE_PATTERN

    name = text.strip()
    if not DEVICE_PATTERN.fullmatch(name):
        raise argparse.ArgumentTypeError(f"{text!r} is not a device; use {DEVICE_NAMES}")
    return name


def params_dict(pairs: list[tuple[str, str]] | None) -> dict[str, str]:
    """The `--param` pairs as a mapping; one name given twice is an error (a later value
    silently winning hid a sweep the user meant), which points at `--grid`."""
    from steerlang.commands.grid_spec import repeated_param_error

    out: dict[str, str] = {}
    for name, value in pairs or []:
        if name in out:
            raise repeated_param_error(name, [v for n, v in pairs or [] if n == name])
        out[name] = value
    return out


# ------------------------------------------------------------------------------------------
# Options
# ------------------------------------------------------------------------------------------


def add_param_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--param",
        type=param_pair,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a declared param (repeatable)",
    )


def add_include_option(p: argparse.ArgumentParser) -> None:
    """`--allow-include-outside`, on every command that compiles a recipe: by default an
    `include` must stay inside the recipe's own folder tree (E112, docs/language.md §7)."""
    p.add_argument(
        "--allow-include-outside",
        action="store_true",
        help="let the recipe include files outside its own folder (only for recipes you trust)",
    )


def add_compile_options(p: argparse.ArgumentParser) -> None:
    """`--layers N`, `--param NAME=VALUE` and `--allow-include-outside`, for the commands that
    only compile."""
    p.add_argument(
        "--layers",
        type=positive_int,
        metavar="N",
        help="model depth for layer range checks (default: from the recipe's model)",
    )
    add_param_option(p)
    add_include_option(p)


def add_color_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--color",
        choices=["auto", "always", "never"],
        default="auto",
        help="colour diagnostics (auto: when writing to a terminal)",
    )


def add_device_option(p: argparse.ArgumentParser) -> None:
    """`--device DEV`; None when not given, so the profile's device (or auto) applies. Every
    command that runs the model reads images, so the loading options come with it."""
    p.add_argument("--device", type=device_name, default=None, metavar="DEV", help=DEVICE_HELP)
    add_loading_options(p)


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, found {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, found {value}")
    return value


def add_loading_options(p: Any) -> None:
    """`--workers N` and `--gpu-decode` (steerlang/data/loader.py, docs/scale.md)."""
    p.add_argument(
        "--workers",
        type=non_negative_int,
        default=None,
        metavar="N",
        help="image loader processes (0: the main process; default: one per core but one, "
        "at most 8, for passes over 256 images or more; or STEER_WORKERS)",
    )
    p.add_argument(
        "--gpu-decode",
        action="store_true",
        default=None,
        help="on CUDA, decode JPEGs and preprocess on the GPU (nvJPEG)",
    )


def apply_loading_options(args: argparse.Namespace) -> None:
    """Make `--workers` / `--gpu-decode` the process-wide loading settings."""
    workers = getattr(args, "workers", None)
    gpu = getattr(args, "gpu_decode", None)
    if workers is None and gpu is None:
        return
    from steerlang.data.loader import configure

    configure(workers=workers, gpu_decode=gpu)


def add_binding_options(p: argparse.ArgumentParser) -> None:
    """Options that bind a recipe's names to real things (shared by run/plan/explain/sweep)."""
    add_param_option(p)
    add_include_option(p)
    p.add_argument(
        "--profile",
        metavar="FILE",
        help="steer.yaml profile (default: ./steer.yaml if present, else the built-in zoo profile)",
    )
    p.add_argument(
        "--model",
        metavar="REF",
        help="model name from the profile or a reference "
        "such as openclip:ViT-B-32@datacomp_xl_s13b_b90k",
    )
    p.add_argument(
        "--data",
        action="append",
        default=[],
        metavar="NAME=[FORMAT:]PATH",
        help="point a dataset name at a folder (repeatable)",
    )
    p.add_argument(
        "--sae",
        action="append",
        default=[],
        metavar="LAYER[:SITE]=REF",
        help="SAE for a layer/site: a folder, hf:REPO or zoo:sae/L7/resid_post (repeatable)",
    )
    add_device_option(p)
    p.add_argument("--no-cache", action="store_true", help="recompute statistics even if cached")
    p.add_argument("-q", "--quiet", action="store_true", help="only warnings on stderr")


def options_from_args(args: argparse.Namespace) -> Any:
    """The pipeline's RunOptions from the binding options."""
    from steerlang.pipeline.bind import RunOptions

    return RunOptions(
        profile=args.profile,
        model=args.model,
        data=list(args.data or []),
        sae=list(args.sae or []),
        device=args.device,
        out=getattr(args, "out", None),
        use_cache=not args.no_cache,
    )


# ------------------------------------------------------------------------------------------
# Output
# ------------------------------------------------------------------------------------------


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


def write(stream: TextIO, text: str) -> None:
    """`text` on `stream`, ending in a newline; nothing when empty."""
    if text:
        stream.write(text if text.endswith("\n") else text + "\n")


def setup_logging(quiet: bool = False) -> Any:
    """Logs go to stderr (rich), so stdout stays clean for JSON; returns the stderr console."""
    from rich.console import Console
    from rich.logging import RichHandler

    console = Console(stderr=True)
    logger = logging.getLogger("steerlang")
    for h in list(logger.handlers):
        if getattr(h, "_steer_cli", False):
            logger.removeHandler(h)
    handler = RichHandler(console=console, show_path=False, show_time=False, markup=False)
    handler._steer_cli = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    # Some libraries configure the root logger; without this every line would print twice.
    logger.propagate = False
    return console


def make_progress(console: Any, quiet: bool = False) -> Any:
    """A rich progress display on stderr, or None when stderr is not a terminal."""
    if quiet or not console.is_terminal:
        return None
    from steerlang.training.progress import rich_progress

    return rich_progress(console)


def live(progress: Any) -> Any:
    """The context to run under: the progress display, or nothing when there is none."""
    return progress if progress is not None else contextlib.nullcontext()
