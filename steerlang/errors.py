"""User-facing errors outside recipe text (files, checkpoints, datasets, profiles, offline misses).

Recipe text problems are `Diagnostic`s; everything else a user can cause raises a `SteerError`
whose message names the thing and whose `help` says the fix. The CLI prints these without a
traceback (`--debug` shows it).
"""

from __future__ import annotations

import difflib
from collections.abc import Collection


def did_you_mean(word: str, candidates: Collection[str]) -> str | None:
    """The single closest candidate, when one is clearly close enough (else one that differs
    only in case). Every did-you-mean hint, in recipes and outside them, picks with this."""
    matches = difflib.get_close_matches(word, sorted(candidates), n=3, cutoff=0.6)
    if not matches:
        lower = {c.lower(): c for c in candidates}
        if word.lower() in lower:
            return lower[word.lower()]
        return None
    return matches[0]


class SteerError(Exception):
    def __init__(self, message: str, *, help: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.help = help

    def __str__(self) -> str:
        return self.message if not self.help else f"{self.message}\n  help: {self.help}"


class OfflineError(SteerError):
    """A model, SAE or dataset that would have to be downloaded and is not available locally."""


class CheckpointError(SteerError):
    """A checkpoint file that is missing, truncated, malformed, or unsafe to load."""


class DatasetError(SteerError):
    """A dataset root, metadata file, row or image that cannot be read."""


class ProfileError(SteerError):
    """An invalid `steer.yaml` profile or CLI override."""
