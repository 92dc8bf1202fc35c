"""Which files a recipe may include, and reading them without opening anything else.

A recipe is often someone else's (a shared recipe, a CI job), and every line of an included
file used to be quoted back in diagnostics, so `include "/proc/self/environ"` or
`include "../../etc/passwd"` dumped local files into logs, and an included FIFO hung the
command. The rules, in the order they are checked:

1. the path is read relative to the including file (`relative_to_file`);
2. after resolving symbolic links, the file lies inside the *include root*: the root recipe's
   own folder tree (the language server uses the workspace folder), unless the caller allows
   includes outside it (`--allow-include-outside`) -> E112;
3. the name (and the resolved name) ends in `.steer`, and the file is a regular file, checked
   with `os.stat` before it is opened: directories, FIFOs, devices, sockets and the kernel's
   pseudo-files are never opened -> E113;
4. the file parses as a recipe (`steer 1` first, no syntax error), or its lines are never shown:
   one E114 at the `include` line says so (see `steerlang/lang/compiler/load.py`).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass

SUFFIX = ".steer"
MAX_BYTES = 1024 * 1024  # recipes are a few KB; a larger file is not one (limits.MAX_TEXT_CHARS)
# Kernel pseudo-filesystems: their "regular" files (size 0 in `stat`) hold process secrets.
_PSEUDO_ROOTS = ("/proc", "/sys")


@dataclass(frozen=True)
class Refusal:
    """Why an include is refused: the code, and the label put under the include path."""

    code: str
    label: str


class NotARecipeFile(OSError):
    """Raised by `read_recipe_file` for something that is not a regular file of a recipe's
    size; `what` completes "`path` is ..." (for example "a FIFO")."""

    def __init__(self, path: str, what: str, code: str = "E113") -> None:
        super().__init__(f"{path} is {what}")
        self.what = what
        self.code = code


def relative_to_file(rel: str, path: str | None) -> str:
    """`rel` read from the folder of the file at `path` (the working folder without a file)."""
    base = os.path.dirname(path) if path else ""
    return os.path.normpath(os.path.join(base, rel))


def include_root(root_file: str | None, given: str | None) -> str:
    """The folder tree includes must stay in: `given` (the language server's workspace folder),
    else the root recipe's own folder, else the working folder; symbolic links resolved."""
    if given:
        folder = given
    elif root_file:
        folder = os.path.dirname(os.path.abspath(root_file))
    else:
        folder = os.getcwd()
    return os.path.realpath(folder)


def _inside(path: str, folder: str) -> bool:
    try:
        return os.path.commonpath([path, folder]) == folder
    except ValueError:  # different drives (Windows)
        return False


def check_include_path(target: str, root: str, *, allow_outside: bool) -> Refusal | None:
    """Rules 2 and the name half of rule 3, on paths only (nothing is opened)."""
    real = os.path.realpath(target)
    if not allow_outside and not _inside(real, root):
        via = "" if real == os.path.abspath(target) else f" (a link to `{real}`)"
        return Refusal("E112", f"`{target}`{via} is outside `{_shown(root)}`")
    for name in (target, real):
        if not name.endswith(SUFFIX):
            what = "" if name == target else f" (a link to `{real}`)"
            return Refusal("E113", f"`{target}`{what} is not a `.steer` file")
    if any(_inside(real, p) for p in _PSEUDO_ROOTS):
        return Refusal("E113", f"`{target}` is a special file")
    return None


def _shown(folder: str) -> str:
    """A folder as the user typed it: relative to the working folder when inside it."""
    try:
        rel = os.path.relpath(folder)
    except ValueError:
        return folder
    return folder if rel.startswith("..") else rel


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def read_recipe_file(path: str) -> str:
    """The UTF-8 text of the regular file at `path`.

    Checked with `os.stat` first, so a directory, FIFO, device or socket is never opened (a FIFO
    would block); opened non-blocking and checked again on the open file, so a file swapped in
    between is refused too. Raises FileNotFoundError, NotARecipeFile, UnicodeDecodeError or
    another OSError.
    """
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        raise NotARecipeFile(path, _kind(st.st_mode))
    if st.st_size > MAX_BYTES:
        raise NotARecipeFile(path, f"larger than {MAX_BYTES // (1024 * 1024)} MiB", "E114")
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as f:
        now = os.fstat(f.fileno())
        if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino) or not stat.S_ISREG(now.st_mode):
            raise NotARecipeFile(path, "changing while it is read")
        data = f.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise NotARecipeFile(path, f"larger than {MAX_BYTES // (1024 * 1024)} MiB", "E114")
    return data.decode("utf-8")
