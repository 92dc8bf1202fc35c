"""Bounded YAML: the bounds reject only what exceeds them (brackets in strings, plain scalars
and comments are not nesting), and marks point at keys and values."""

from __future__ import annotations

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from steerlang.bounded_yaml import MAX_YAML_DEPTH, parse_yaml
from steerlang.errors import ProfileError

DEEP = "[" * (MAX_YAML_DEPTH + 10)


@pytest.mark.parametrize(
    "text",
    [
        f'a: "{DEEP}"\n',
        f"a: '{DEEP}'\n",
        f"a: x{DEEP}\n",
        f"# {DEEP}\na: 1\n",
        f"a: 1  # {DEEP}\n",
        f'a: "it\'s \\" {DEEP}"\n',
        f"a: 'it''s {DEEP}'\n",
    ],
)
def test_brackets_that_are_not_nesting(text: str) -> None:
    data, _ = parse_yaml(text, "f.yaml")
    assert data == yaml.safe_load(text)


def test_nesting_at_the_bound_is_fine_one_more_is_not() -> None:
    # the top-level mapping is one level, the brackets the others
    n = MAX_YAML_DEPTH - 1
    assert parse_yaml("a: " + "[" * n + "]" * n + "\n", "f.yaml")[0] is not None
    deep = "a: " + "[" * (n + 1) + "]" * (n + 1) + "\n"
    with pytest.raises(ProfileError, match=r"f.yaml:1:\d+: YAML nested more than 64"):
        parse_yaml(deep, "f.yaml")
    with pytest.raises(ProfileError, match=r"f.yaml:1:68: YAML nested more than 64"):
        parse_yaml("a: " + "[" * (n + 2) + "]" * (n + 2) + "\n", "f.yaml")  # the text scan


def test_marks_point_at_keys_and_values() -> None:
    _, marks = parse_yaml("top:\n  inner: {k: 3}\n", "f.yaml")
    assert marks.find(("top", "inner"), key=True) == (2, 3)
    assert marks.find(("top", "inner", "k")) == (2, 14)
    assert marks.find(("top", "inner", "missing")) == (2, 10)  # nearest enclosing value


_scalars = st.one_of(
    st.integers(-(10**6), 10**6), st.text("abc[]{}#'\" :-,", max_size=8), st.booleans()
)
_docs = st.recursive(
    _scalars,
    lambda kids: (
        st.lists(kids, max_size=3)
        | st.dictionaries(st.text("xyz", min_size=1, max_size=3), kids, max_size=3)
    ),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(_docs, st.booleans())
def test_any_small_document_round_trips(doc: object, flow: bool) -> None:
    """Whatever PyYAML writes (block or flow style, quoted brackets and all) reads back equal."""
    text = yaml.safe_dump({"d": doc}, default_flow_style=flow)
    data, _ = parse_yaml(text, "f.yaml")
    assert data == {"d": doc}


@pytest.mark.parametrize(
    "text",
    [
        "a: &x " + "[&y " * 80 + "1" + "]" * 80 + "\n",
        "a: !!seq " + "[" * 80 + "]" * 80 + "\n",
        "- " + "{b: " * 80 + "1" + "}" * 80 + "\n",
        "a:\n  - " + "['q', " * 80 + "]" * 80 + "\n",
    ],
    ids=["anchors", "tag", "sequence-item", "quoted-items"],
)
def test_deep_nesting_cannot_hide_behind_properties(text: str) -> None:
    with pytest.raises(ProfileError, match="YAML nested more than 64"):
        parse_yaml(text, "f.yaml")
