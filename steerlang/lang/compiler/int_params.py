"""Params in integer lists: `at layer L`, `at layers 0..last`, `tokens [i]`, `feature f`,
`sae at layer L`.

A bound of an `IntItem` may name a declared param; it is resolved here to the param's value
(with `--param` overrides applied), so the IR holds concrete integers and the runtime never
sees the name. Each check reports at the use, with the declaration as a secondary span: the
param must be declared (E103), a whole number (E240) and not negative (E241); a layer must
also be in the model's range (E201).
"""

from __future__ import annotations

from steerlang.lang import ast
from steerlang.lang.compiler.expressions import name_value
from steerlang.lang.compiler.state import CompileState, Param
from steerlang.lang.compiler.values import type_phrase


def resolve_item(st: CompileState, item: ast.IntItem, what: str) -> ast.IntItem | None:
    """`item` with every param bound replaced by its value, or None when a bound could not be
    resolved (the reason is reported)."""
    if not item.names():
        return item
    lo = _bound(st, item.lo, what)
    hi = _bound(st, item.hi, what) if item.hi is not None else None
    if lo is None or (item.hi is not None and hi is None):
        return None
    return ast.IntItem(lo, hi, span=item.span)


def _bound(st: CompileState, b: int | ast.Name, what: str) -> int | None:
    if not isinstance(b, ast.Name):
        return b
    what = "feature id" if what == "feature" else what
    p = st.params.get(b.name)
    if p is None:
        name_value(st, b)  # E103 with a did-you-mean, or E204 for a concept or column
        return None
    p.used = True
    if p.type == "?":
        return None  # its declaration already failed
    if p.type != "int":
        st.emit(
            "E240",
            f"{_article(what)} {what} needs a whole number, but `{b.name}` is "
            f"{type_phrase(p.type)}",
            b.span,
            label=f"{type_phrase(p.type)} param",
            help=f"declare it as a whole number, e.g. `param {b.name} = 7`",
            secondary=_declared(p),
        )
        return None
    value = int(p.value)
    if value < 0:
        st.emit(
            "E241",
            f"{what} `{b.name}` is negative",
            b.span,
            label=f"`{b.name}` is {value}{_overridden(st, b.name)}",
            help=f"{what}s count from 0: give `{b.name}` a value of at least 0",
            secondary=_declared(p),
        )
        return None
    return value


def layer_param_out_of_range(st: CompileState, item: ast.IntItem, last_value: int) -> None:
    """E201 for a layer list whose param bound goes past the model's last layer."""
    assert st.n_layers is not None
    names = item.names()
    name = names[-1].name
    p = st.params[name]
    source = (
        f"`--layers {st.n_layers}`"
        if st.options.n_layers is not None
        else f"model `{st.model_ref}`"
    )
    st.emit(
        "E201",
        f"layer {last_value} (param `{name}`) is out of range",
        names[-1].span,
        label=f"`{name}` is {last_value}{_overridden(st, name)}; {source} has {st.n_layers} layers",
        help=f"layers for this model are 0..{st.n_layers - 1}",
        secondary=_declared(p),
    )


def _declared(p: Param) -> list:
    return [(p.span, "declared here")] if p.span is not None else []


def _overridden(st: CompileState, name: str) -> str:
    return " (from --param)" if name in st.options.params else ""


def _article(what: str) -> str:
    return "an" if what[:1] in "aeiou" else "a"


def item_values(st: CompileState, item: ast.IntItem) -> list[int]:
    """The integers of an item, its params read without reporting anything (for the lints,
    which run only on recipes without errors)."""

    def value(b: int | ast.Name) -> int | None:
        if not isinstance(b, ast.Name):
            return b
        p = st.params.get(b.name)
        return int(p.value) if p is not None and p.type == "int" else None

    lo = value(item.lo)
    hi = value(item.hi) if item.hi is not None else None
    if lo is None or (item.hi is not None and hi is None):
        return []
    return [lo] if hi is None else list(range(lo, hi + 1))
