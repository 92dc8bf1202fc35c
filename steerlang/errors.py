"""User-facing errors outside recipe text (files, checkpoints, datasets, profiles, offline misses).

Recipe text problems are `Diagnostic`s; everything else a user can cause raises a `SteerError`
whose message names the thing and whose `help` says the fix. The CLI prints these without a
traceback (`--debug` shows it).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Collection


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


# ---------------------------------------------------------------------------------------------
# pydantic validation errors as readable lines
# ---------------------------------------------------------------------------------------------

_TYPE_WORDS: dict[str, str] = {
    "int": "a whole number",
    "float": "a number",
    "bool": "true or false",
    "string": "text",
    "dict": "a mapping (key: value lines)",
    "list": "a list",
    "model": "a mapping (key: value lines)",
}


def validation_problems(
    err: object,
    *,
    known_keys: Callable[[tuple[object, ...]], Collection[str]] | None = None,
) -> list[tuple[tuple[object, ...], str]]:
    """The problems of a pydantic `ValidationError` as (location, readable message) pairs.

    The one place that turns pydantic's wording into ours (the profile, SAE configs and
    training options all go through it), so no user sees a raw pydantic dump: an unknown key
    gets a did-you-mean among `known_keys(location of its mapping)`, a wrong type says what
    was expected and what was found, a validator's own message is kept without pydantic's
    "Value error, " prefix. `err` is duck-typed (anything with `.errors()`) so this floor
    module does not import pydantic.
    """
    out: list[tuple[tuple[object, ...], str]] = []
    for e in err.errors():  # type: ignore[attr-defined]
        loc = tuple(p for p in e.get("loc", ()) if p != "[key]")
        kind = str(e.get("type", ""))
        msg = str(e.get("msg", "invalid value"))
        found = _shown(e.get("input"))
        if kind == "extra_forbidden":
            key = str(loc[-1]) if loc else "?"
            options = sorted(known_keys(loc[:-1])) if known_keys is not None else []
            text = f"unknown key '{key}'"
            if options:
                guess = did_you_mean(key, options)
                text += f"; did you mean '{guess}'?" if guess else ";"
                text += f" keys: {', '.join(options)}"
        elif kind == "missing":
            text = f"missing required key '{loc[-1] if loc else '?'}'"
        elif (
            kind.endswith(("_type", "_parsing", "_from_float", "_parsing_size"))
            and kind.split("_")[0] in _TYPE_WORDS
        ):
            text = f"expected {_TYPE_WORDS[kind.split('_')[0]]}, found {found}"
        elif kind == "literal_error":
            expected = str((e.get("ctx") or {}).get("expected", ""))
            options = [o.strip(" '\"") for o in expected.replace(" or ", ",").split(",")]
            guess = did_you_mean(str(e.get("input")), [o for o in options if o])
            text = f"{found} is not one of {expected}" + (
                f"; did you mean '{guess}'?" if guess else ""
            )
        elif msg.startswith(("Value error, ", "Assertion failed, ")):
            text = msg.split(", ", 1)[1]
        else:
            text = msg.replace("Input should be", "must be").replace("Input should", "must")
            text = (text[:1].lower() + text[1:]).rstrip(".") + f" (found {found})"
        out.append((loc, text))
    return out


def _shown(value: object) -> str:
    """A value as a message quotes it: short, one line."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def validation_summary(
    err: object,
    what: str,
    *,
    known_keys: Callable[[tuple[object, ...]], Collection[str]] | None = None,
) -> str:
    """`what: key.path: message` lines for every problem (one line when there is one)."""
    lines = [
        f"{'.'.join(str(p) for p in loc) or '(top level)'}: {text}"
        for loc, text in validation_problems(err, known_keys=known_keys)
    ]
    if len(lines) == 1:
        return f"{what}: {lines[0]}"
    return f"{what}: {len(lines)} problems\n  " + "\n  ".join(lines)
