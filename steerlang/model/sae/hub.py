"""`hf:REPO[/SUBPATH]` SAE references through huggingface_hub.

The local Hugging Face cache is tried first (`local_files_only=True`); a miss downloads only
when downloads are allowed, and an offline miss is an `OfflineError` naming the repo and the
command that fetches it on a networked machine.
"""

from __future__ import annotations

import os
from pathlib import Path

from steerlang.errors import OfflineError, SteerError


def _offline() -> bool:
    return any(
        os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on")
        for v in ("STEER_OFFLINE", "HF_HUB_OFFLINE")
    )


def split_hf_ref(spec: str) -> tuple[str, str]:
    """'org/name/sub/dir' -> ('org/name', 'sub/dir'); revision pins are 'org/name@rev/sub'."""
    parts = [p for p in spec.strip().strip("/").split("/") if p]
    if len(parts) < 2:
        raise SteerError(
            f"hf:{spec} is not a Hugging Face repo reference",
            help="write hf:ORG/REPO or hf:ORG/REPO/SUBFOLDER",
        )
    return "/".join(parts[:2]), "/".join(parts[2:])


def resolve_hf(
    spec: str, *, allow_download: bool | None = None, cache_dir: str | None = None
) -> Path:
    """Return the local folder holding the SAE files of `hf:spec`."""
    from huggingface_hub import snapshot_download

    repo, sub = split_hf_ref(spec)
    repo_id, _, revision = repo.partition("@")
    patterns = [f"{sub}/*"] if sub else None
    kwargs = {
        "repo_id": repo_id,
        "revision": revision or None,
        "allow_patterns": patterns,
        "cache_dir": cache_dir,
    }
    # huggingface_hub >= 1.0 ships the `hf` command (`huggingface-cli` is gone).
    cmd = f"hf download {repo_id}" + (f" --include '{sub}/*'" if sub else "")
    try:
        root = snapshot_download(local_files_only=True, **kwargs)  # type: ignore[arg-type]
    except Exception:  # noqa: BLE001 - any local-cache miss falls through to the download
        root = None
    if root is not None and (Path(root) / sub).is_dir():
        return Path(root) / sub
    if allow_download is False or (allow_download is None and _offline()):
        raise OfflineError(
            f"SAE hf:{spec} is not in the local Hugging Face cache and downloads are off",
            help=f"on a networked machine run `{cmd}` and copy ~/.cache/huggingface here, "
            "or download the folder and pass its path instead",
        )
    try:
        root = snapshot_download(**kwargs)  # type: ignore[arg-type]
    except Exception as e:  # noqa: BLE001 - network/auth/missing repo all mean "not available"
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise OfflineError(
            f"SAE hf:{spec}: cannot download from the Hugging Face Hub ({msg[:200]})",
            help=f"on a networked machine run `{cmd}` and copy ~/.cache/huggingface here, "
            "or download the folder and pass its path instead",
        ) from None
    path = Path(root) / sub
    if not path.is_dir():
        raise SteerError(
            f"SAE hf:{spec}: the repo {repo_id} has no folder {sub!r}",
            help="check the path after the repo name",
        )
    return path
