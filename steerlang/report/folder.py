"""The run folder: `<out>/<recipe>-<YYYYmmdd-HHMMSS>[-N]/` with plan.json, report.json,
explain.json, manifest.json, report.html, predictions.csv (one row per evaluated image and
attacked copy) and figures/ (every report figure as PNG and PDF).

Why a folder per run, written atomically: a report is evidence for a claim ("this recipe
raises worst-group accuracy by 12 points"), so each run keeps its own plan, numbers and the
hashes of everything it used, and a run killed mid-write leaves no half folder behind (files
are assembled in a hidden temporary folder renamed into place at the end).

Why the output root is checked first (`check_out_root`): the folder is written after statistics
and evaluation, minutes into a run; an `--out` that names a file or an unwritable folder must
stop the run before that work, not after it.

Why names are claimed with `os.mkdir`: two runs of one recipe finishing in the same second
want the same name. `mkdir` either creates the name or fails, atomically, so each run takes
the first free `<base>`, `<base>-2`, `<base>-3`, ... and then renames its finished temporary
folder onto its own empty claim (POSIX `rename` replaces an empty directory atomically and
refuses a non-empty one). No run ever replaces or deletes another run's folder.

Why a failed write keeps the results: when writing fails at the very end (disk full,
permissions changed mid-run), the numbers are already computed. The temporary folder is kept
(with report.json in it when anything can be written there, else report.json goes to the
system's temporary folder) and `RunFolderError` says where; the command still prints the
report (see `steerlang/commands/run.py`).
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from steerlang.errors import SteerError
from steerlang.files import dir_mode, file_mode
from steerlang.report.build import clean_json, manifest
from steerlang.report.figures import report_figures
from steerlang.report.html import render_html
from steerlang.report.record import RunRecord

# Enough for any number of runs of one recipe in one second; a bound keeps a folder that
# refuses every name (e.g. a full directory) from looping forever.
_MAX_CLAIMS = 10_000


class RunFolderError(SteerError):
    """The run folder could not be finished. `kept` is where the results are (the temporary
    folder, or a report.json elsewhere), None when nothing could be saved; `report` is the
    report itself, so the caller can still print it."""

    def __init__(
        self, message: str, *, help: str | None, kept: Path | None, report: dict[str, Any]
    ) -> None:
        super().__init__(message, help=help)
        self.kept = kept
        self.report = report


def _safe_name(name: str) -> str:
    keep = "".join(c if c.isalnum() or c in "-_." else "-" for c in name)
    return keep.strip("-.") or "recipe"


def out_root_path(out_root: str | os.PathLike[str] | None) -> Path:
    """`--out`, else `./runs`: the folder that receives run folders."""
    return Path(out_root).expanduser() if out_root else Path.cwd() / "runs"


def _what(out_root: str | os.PathLike[str] | None, root: Path) -> str:
    return f"--out {out_root}" if out_root else f"the run folder root {root} (the default)"


_FIX = "pass `--out DIR` naming a folder you can write to (it is created when missing)"


def check_out_root(out_root: str | os.PathLike[str] | None) -> Path:
    """Fail fast, before any work, when run folders cannot be written under `out_root`: it
    must be a folder, or creatable (its nearest existing parent is a folder), and writable
    (checked by creating and removing a temporary entry, which also catches read-only file
    systems and the cases permission bits do not show). Creates nothing that stays."""
    root = out_root_path(out_root)
    what = _what(out_root, root)
    try:
        if root.is_symlink() and not root.exists():
            raise SteerError(f"{what} is a broken symbolic link", help=_FIX)
        if root.exists():
            if not root.is_dir():
                raise SteerError(
                    f"{what} is a file, not a folder",
                    help=f"{_FIX}, or move the file {root} away",
                )
            _probe(root, what)
            return root
        parent = root.absolute().parent
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        if not parent.is_dir():
            raise SteerError(
                f"{what} cannot be created: {parent} is a file, not a folder", help=_FIX
            )
        _probe(parent, what)
    except SteerError:
        raise
    except OSError as e:
        raise SteerError(f"{what} cannot be used: {e.strerror or e}", help=_FIX) from e
    return root


def _probe(folder: Path, what: str) -> None:
    """Create a folder with a small file in it and remove both (what a run folder needs)."""
    try:
        d = tempfile.mkdtemp(prefix=".steer-write-check-", dir=folder)
    except OSError as e:
        raise SteerError(
            f"{what}: cannot write in {folder} ({e.strerror or e})",
            help=f"{_FIX}, or give yourself write permission on {folder}",
        ) from e
    try:
        Path(d, "probe").write_bytes(b"ok")
    except OSError as e:
        raise SteerError(
            f"{what}: cannot write files in {folder} ({e.strerror or e})",
            help=f"{_FIX}, or free space on its disk",
        ) from e
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _claim(root: Path, base: str) -> Path:
    """The first free name among `base`, `base-2`, ..., created empty (atomically) so that no
    other run can take it."""
    for n in range(1, _MAX_CLAIMS + 1):
        final = root / (base if n == 1 else f"{base}-{n}")
        try:
            os.mkdir(final)
        except FileExistsError:
            continue
        return final
    raise OSError(f"no free run folder name {base}-N for N up to {_MAX_CLAIMS} in {root}")


def _write(path: Path, content: str | bytes) -> None:
    """One file of the run folder (a seam: the tests make it fail)."""
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, "utf-8")


def predictions_csv(columns: dict[str, list[Any]]) -> str:
    """predictions.csv from its columns (steerlang/pipeline/per_image.py); empty cells for
    missing values."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    names = list(columns)
    w.writerow(names)
    n = len(columns[names[0]]) if names else 0
    for i in range(n):
        w.writerow(["" if columns[c][i] is None else columns[c][i] for c in names])
    return buf.getvalue()


def write_run_folder(
    rec: RunRecord, report: dict[str, Any], *, out_root: str | os.PathLike[str] | None = None
) -> Path:
    """`<out_root or ./runs>/<recipe>-<timestamp>[-N]/` with plan, report, explain, manifest
    and HTML, assembled in a temporary folder and renamed onto a name claimed for this run.
    Folder and files get the modes the user's umask gives. Raises `RunFolderError` (which
    says where the results were saved) when the folder cannot be finished."""
    root = out_root_path(out_root)
    base = f"{_safe_name(rec.ir.name)}-{time.strftime('%Y%m%d-%H%M%S')}"
    report = dict(report)
    tmp: Path | None = None
    final: Path | None = None
    written: list[str] = []
    n_files = 5
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{base}.", dir=root))
        # mkdtemp makes 0700; the run folder is shared like any other output.
        os.chmod(tmp, dir_mode())
        final = _claim(root, base)
        report["run_dir"] = str(final)
        figures = report_figures(rec, report)
        files: list[tuple[str, Callable[[], str | bytes]]] = [
            ("plan.json", lambda: rec.selection.plan.model_dump_json(indent=2) + "\n"),
            ("report.json", lambda: json.dumps(report, indent=2) + "\n"),
            (
                "explain.json",
                lambda: json.dumps(clean_json(rec.selection.explain_json()), indent=2) + "\n",
            ),
            ("manifest.json", lambda: json.dumps(manifest(rec, report), indent=2) + "\n"),
            ("report.html", lambda: render_html(rec, report, figures)),
        ]
        if rec.predictions is not None:
            preds = rec.predictions
            files.append(("predictions.csv", lambda: predictions_csv(preds)))
        for f in figures:
            files += [
                (f"figures/{f.name}.png", lambda f=f: f.png),
                (f"figures/{f.name}.pdf", lambda f=f: f.pdf),
            ]
        if figures:
            (tmp / "figures").mkdir(mode=dir_mode())
            os.chmod(tmp / "figures", dir_mode())
        n_files = len(files)
        for name, render in files:
            _write(tmp / name, render())
            written.append(name)
        os.rename(tmp, final)
    except Exception as e:
        raise _rescue(e, root, base, tmp, final, written, report, n_files) from e
    except BaseException:
        # Interrupted (Ctrl-C): leave nothing half-written behind, as a killed run does.
        if final is not None:
            _remove_empty(final)
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _remove_empty(folder: Path) -> None:
    """Give back a claimed name; `rmdir` refuses a folder with anything in it."""
    try:
        os.rmdir(folder)
    except OSError:
        pass


def _rescue(
    err: Exception,
    root: Path,
    base: str,
    tmp: Path | None,
    final: Path | None,
    written: list[str],
    report: dict[str, Any],
    n_files: int = 5,
) -> RunFolderError:
    """Save what can be saved after a failed write and say where it is."""
    if final is not None:
        _remove_empty(final)
    report_text = json.dumps(report, indent=2) + "\n"
    kept_dir: Path | None = None
    if tmp is not None and tmp.is_dir():
        if "report.json" not in written:
            try:
                _write(tmp / "report.json", report_text)
                written.append("report.json")
            except OSError:
                pass
        if written:
            kept_dir = tmp
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    report_at = (
        kept_dir / "report.json"
        if kept_dir is not None and "report.json" in written
        else _fallback_report(base, report_text)
    )
    message = f"could not write the run folder in {root} ({type(err).__name__}: {err})"
    where: list[str] = []
    if kept_dir is not None and len(written) == n_files:
        where.append(f"the finished run is kept in {kept_dir}")
        fix = f"it is complete: give it a visible name, e.g. `mv {kept_dir} {final}`"
    else:
        if kept_dir is not None:
            where.append(f"the files written ({', '.join(written)}) are kept in {kept_dir}")
        if report_at is None:
            where.append("the report could not be saved to disk (it is printed on stdout)")
        elif report_at.parent != kept_dir:
            where.append(f"the report is saved as {report_at}")
        fix = (
            f"free space or fix permissions on {root}, then rerun for the full run folder "
            "(statistics are cached, so a rerun is fast)"
        )
    report = dict(report, run_dir=str(kept_dir) if kept_dir is not None else None)
    kept = kept_dir if report_at is not None and report_at.parent == kept_dir else report_at
    return RunFolderError(f"{message}; {'; '.join(where)}", help=fix, kept=kept, report=report)


def _fallback_report(base: str, text: str) -> Path | None:
    """report.json in the system's temporary folder when the output root takes nothing."""
    try:
        fd, name = tempfile.mkstemp(prefix=f"steer-{base}-", suffix=".report.json")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(name, file_mode())  # mkstemp makes 0600
    except OSError:
        return None
    return Path(name)
