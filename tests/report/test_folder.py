"""The run folder (`steerlang/report/folder.py`): the output root is checked before any work,
names never collide, a failed write keeps the results and says where, and modes follow the
user's umask."""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from steerlang.errors import SteerError
from steerlang.report import folder
from steerlang.report.build import build_report
from steerlang.report.folder import RunFolderError, check_out_root, write_run_folder
from steerlang.report.record import RunRecord

FILES = {"plan.json", "report.json", "explain.json", "manifest.json", "report.html"}
STAMP = "20250102-030405"


@pytest.fixture(scope="module")
def record() -> RunRecord:
    from steerlang.lang.api import compile_text
    from steerlang.pipeline.selection import select

    ir = compile_text('steer 1\nrecipe demo "folder test"\nmodel default\n').ir
    assert ir is not None
    return RunRecord(
        ir=ir,
        selection=select(ir, {}, {}),
        model_ref="default",
        model_hash="m" * 16,
        device="cpu",
        sae_refs={},
        sae_hashes={},
        dataset=None,
        data_root=None,
        attack_style="note",
        stats_keys={},
        stats_cached=[],
        stats_computed=[],
        steerability={},
        rule_tables={},
        profile=None,
    )


def _report(rec: RunRecord, marker: int) -> dict[str, Any]:
    rep = build_report(rec, None, classifier_info=None, started=time.time())
    rep["marker"] = marker  # tells two runs' report.json apart
    return rep


@pytest.fixture
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every run folder is written "in the same second"."""
    monkeypatch.setattr(folder.time, "strftime", lambda fmt, *a: STAMP)


@pytest.fixture
def umask() -> Iterator[Any]:
    old = os.umask(0o022)
    os.umask(old)

    def set_mask(mask: int) -> None:
        os.umask(mask)

    yield set_mask
    os.umask(old)


def _entries(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir())


# ------------------------------------------------------------------------------------------
# Names that cannot collide
# ------------------------------------------------------------------------------------------


def test_two_runs_finishing_in_the_same_second_both_keep_their_folder(
    record: RunRecord, tmp_path: Path, frozen_clock: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The attack: a second run writes its folder while the first is still writing its own,
    under the same `<recipe>-<second>` name. Before, the first crashed with `Directory not
    empty` and deleted its finished folder."""
    root = tmp_path / "runs"
    real_write = folder._write
    nested: list[Path] = []

    def write_with_a_concurrent_run(path: Path, text: str) -> None:
        if not nested:  # once: the second run starts and finishes inside the first's write
            nested.append(root)
            nested[0] = write_run_folder(record, _report(record, 2), out_root=root)
        real_write(path, text)

    monkeypatch.setattr(folder, "_write", write_with_a_concurrent_run)
    first = write_run_folder(record, _report(record, 1), out_root=root)
    monkeypatch.setattr(folder, "_write", real_write)
    third = write_run_folder(record, _report(record, 3), out_root=root)

    second = nested[0]
    assert first.name == f"demo-{STAMP}"
    assert second.name == f"demo-{STAMP}-2"
    assert third.name == f"demo-{STAMP}-3"
    assert _entries(root) == sorted([first.name, second.name, third.name])  # no temp left
    for folder_, marker in ((first, 1), (second, 2), (third, 3)):
        assert set(_entries(folder_)) == FILES
        rep = json.loads((folder_ / "report.json").read_text())
        assert rep["marker"] == marker
        assert rep["run_dir"] == str(folder_)
        man = json.loads((folder_ / "manifest.json").read_text())
        assert man  # written in full


def test_existing_folders_of_the_same_name_are_never_replaced(
    record: RunRecord, tmp_path: Path, frozen_clock: None
) -> None:
    """A finished run under the name, and even an empty folder there, stay as they are:
    `rename` would silently replace an empty folder, so names are claimed with `mkdir`."""
    root = tmp_path / "runs"
    taken = root / f"demo-{STAMP}"
    taken.mkdir(parents=True)
    (taken / "report.json").write_text('{"mine": true}')
    empty = root / f"demo-{STAMP}-2"
    empty.mkdir()  # an empty folder someone made
    inode = empty.stat().st_ino

    got = write_run_folder(record, _report(record, 1), out_root=root)
    assert got.name == f"demo-{STAMP}-3"
    assert (taken / "report.json").read_text() == '{"mine": true}'
    assert empty.is_dir() and empty.stat().st_ino == inode and not any(empty.iterdir())
    assert set(_entries(got)) == FILES


# ------------------------------------------------------------------------------------------
# A failed write keeps the results
# ------------------------------------------------------------------------------------------


def _fail_on(monkeypatch: pytest.MonkeyPatch, names: set[str] | None) -> None:
    """Make writing the named files (None: every file) fail as a full disk does."""
    real_write = folder._write

    def write(path: Path, text: str) -> None:
        if names is None or path.name in names:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real_write(path, text)

    monkeypatch.setattr(folder, "_write", write)


def test_a_write_failing_at_the_end_keeps_the_results_and_says_where(
    record: RunRecord, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "runs"
    _fail_on(monkeypatch, {"report.html"})
    with pytest.raises(RunFolderError) as info:
        write_run_folder(record, _report(record, 7), out_root=root)
    e = info.value
    assert e.kept is not None and e.kept.is_dir() and e.kept.parent == root
    assert str(e.kept) in str(e) and "No space left on device" in str(e)
    kept_report = json.loads((e.kept / "report.json").read_text())
    assert kept_report["marker"] == 7
    assert {"plan.json", "report.json", "explain.json", "manifest.json"} <= set(_entries(e.kept))
    # The name claimed for the run is given back; only the kept folder is left.
    assert _entries(root) == [e.kept.name]
    assert e.report["marker"] == 7 and e.report["run_dir"] == str(e.kept)


def test_a_failed_rename_keeps_the_finished_folder(
    record: RunRecord, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "runs"

    def no_rename(src: Any, dst: Any) -> None:
        raise PermissionError(errno.EACCES, "Permission denied", str(dst))

    monkeypatch.setattr(folder.os, "rename", no_rename)
    with pytest.raises(RunFolderError) as info:
        write_run_folder(record, _report(record, 8), out_root=root)
    e = info.value
    assert e.kept is not None and set(_entries(e.kept)) == FILES
    assert "the finished run is kept in" in str(e) and str(e.kept) in str(e)
    assert e.help is not None and f"mv {e.kept}" in e.help


def test_when_the_output_folder_takes_nothing_the_report_goes_to_the_temp_folder(
    record: RunRecord, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "runs"
    system_tmp = tmp_path / "system-tmp"
    system_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(system_tmp))
    _fail_on(monkeypatch, None)
    with pytest.raises(RunFolderError) as info:
        write_run_folder(record, _report(record, 9), out_root=root)
    e = info.value
    assert e.kept is not None and e.kept.is_file() and e.kept.parent == system_tmp
    assert json.loads(e.kept.read_text())["marker"] == 9
    assert f"the report is saved as {e.kept}" in str(e)
    assert _entries(root) == []  # the empty temporary folder and the claim are gone


def test_when_nothing_can_be_saved_the_error_says_so(
    record: RunRecord, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fail_on(monkeypatch, None)
    monkeypatch.setattr(folder, "_fallback_report", lambda base, text: None)
    with pytest.raises(RunFolderError) as info:
        write_run_folder(record, _report(record, 10), out_root=tmp_path / "runs")
    assert info.value.kept is None and "printed on stdout" in str(info.value)
    assert info.value.report["marker"] == 10


def test_an_interrupted_write_leaves_nothing_behind(
    record: RunRecord, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "runs"

    def interrupt(path: Path, text: str) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(folder, "_write", interrupt)
    with pytest.raises(KeyboardInterrupt):
        write_run_folder(record, _report(record, 11), out_root=root)
    assert _entries(root) == []


# ------------------------------------------------------------------------------------------
# Modes follow the umask
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_run_folder_and_files_follow_the_umask(
    record: RunRecord, tmp_path: Path, umask: Any, mask: int
) -> None:
    umask(mask)
    got = write_run_folder(record, _report(record, 1), out_root=tmp_path / "runs")
    assert stat.S_IMODE(got.stat().st_mode) == 0o777 & ~mask  # not mkdtemp's 0700
    for name in FILES:
        assert stat.S_IMODE((got / name).stat().st_mode) == 0o666 & ~mask, name


@pytest.mark.parametrize("mask", [0o022, 0o002])
def test_predictions_and_figures_follow_the_umask(
    record: RunRecord, tmp_path: Path, umask: Any, mask: int
) -> None:
    umask(mask)
    rec = dataclasses.replace(
        record, predictions={"image": ["a.png", "b, c.png"], "label": ["x", None]}
    )
    rep = _report(rec, 1)
    rep["groups"] = ["g0", "g1"]
    rep["metrics"] = {
        "baseline": {"per_group": [0.5, 0.75], "group_counts": [2, 4], "worst_group_id": 0},
        "steered": {"per_group": [1.0, 0.75]},
    }
    got = write_run_folder(rec, rep, out_root=tmp_path / "runs")
    assert (got / "predictions.csv").read_text() == 'image,label\na.png,x\n"b, c.png",\n'
    figs = got / "figures"
    assert sorted(p.name for p in figs.iterdir()) == [
        "per_group_accuracy.pdf",
        "per_group_accuracy.png",
    ]
    assert stat.S_IMODE(figs.stat().st_mode) == 0o777 & ~mask
    for f in [got / "predictions.csv", *figs.iterdir()]:
        assert stat.S_IMODE(f.stat().st_mode) == 0o666 & ~mask, f
    html = (got / "report.html").read_text()
    assert 'href="figures/per_group_accuracy.png"' in html and 'href="predictions.csv"' in html


def test_the_fallback_report_follows_the_umask(
    record: RunRecord, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, umask: Any
) -> None:
    umask(0o022)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    _fail_on(monkeypatch, None)
    with pytest.raises(RunFolderError) as info:
        write_run_folder(record, _report(record, 1), out_root=tmp_path / "runs")
    assert info.value.kept is not None
    assert stat.S_IMODE(info.value.kept.stat().st_mode) == 0o644  # not mkstemp's 0600


# ------------------------------------------------------------------------------------------
# The output root, checked before any work
# ------------------------------------------------------------------------------------------


def test_out_naming_a_file_is_refused_with_the_path_and_the_fix(tmp_path: Path) -> None:
    f = tmp_path / "results.txt"
    f.write_text("not a folder")
    with pytest.raises(SteerError) as info:
        check_out_root(str(f))
    assert f"--out {f} is a file, not a folder" in info.value.message
    assert info.value.help and "--out DIR" in info.value.help
    assert f.read_text() == "not a folder"


def test_out_under_a_file_is_refused(tmp_path: Path) -> None:
    """Works as root too (root bypasses permission bits, not file types)."""
    f = tmp_path / "results.txt"
    f.write_text("x")
    with pytest.raises(SteerError) as info:
        check_out_root(str(f / "runs" / "today"))
    assert f"{f} is a file, not a folder" in info.value.message
    assert "cannot be created" in info.value.message


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_an_unwritable_out_is_refused(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        for target in (ro, ro / "runs"):
            with pytest.raises(SteerError) as info:
                check_out_root(str(target))
            assert f"cannot write in {ro}" in info.value.message
    finally:
        ro.chmod(0o700)


def test_a_usable_out_passes_and_nothing_is_left_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert check_out_root(str(tmp_path)) == tmp_path
    missing = tmp_path / "a" / "b"
    assert check_out_root(str(missing)) == missing
    assert _entries(tmp_path) == []  # the probe is removed and nothing is created early
    monkeypatch.chdir(tmp_path)
    assert check_out_root(None) == tmp_path / "runs"
    (tmp_path / "runs").write_text("x")
    with pytest.raises(SteerError, match="the run folder root .* is a file"):
        check_out_root(None)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop to another user")
def test_an_unwritable_out_is_refused_as_an_ordinary_user() -> None:
    """The same attack where the suite runs as root (CI): a forked child drops to `nobody`,
    for whom a 0500 folder is read-only, and checks it there."""
    import pwd
    import shutil

    nobody = pwd.getpwnam("nobody")
    base = Path(tempfile.mkdtemp(prefix="steer-ro-"))
    try:
        ro = base / "ro"
        ro.mkdir()
        for p in (base, ro):
            os.chown(p, nobody.pw_uid, nobody.pw_gid)
        ro.chmod(0o500)
        pid = os.fork()
        if pid == 0:  # the child: report through the exit status, never return into pytest
            code = 3
            try:
                os.setgid(nobody.pw_gid)
                os.setuid(nobody.pw_uid)
                code = 0
                for target in (ro, ro / "runs"):
                    try:
                        check_out_root(str(target))
                        code = 1  # accepted: the bug
                    except SteerError as e:
                        if f"cannot write in {ro}" not in e.message:
                            code = 2
                check_out_root(str(base / "ok"))  # a writable folder still passes
            except BaseException:
                code = 4
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.WEXITSTATUS(status) == 0, os.WEXITSTATUS(status)
        assert _entries(ro) == []
    finally:
        shutil.rmtree(base, ignore_errors=True)
