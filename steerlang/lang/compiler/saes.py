"""Pass: `sae at layer(s) N [site S] = "REF"` lines, one SAE reference per (layer, site).

A relative folder is read from the folder of the recipe file that holds the line (as
`include` paths are), and stored as an absolute path, so the IR means the same from any
working folder; `hf:` and `zoo:` references and absolute paths are kept as written, and so is
everything in a recipe compiled from text without a file.
"""

from __future__ import annotations

import os
from pathlib import Path

from steerlang.diagnostics import SourceSpan
from steerlang.lang import ast
from steerlang.lang.compiler.lower import valid_site
from steerlang.lang.compiler.rules import int_items
from steerlang.lang.compiler.state import CompileState


def check_saes(st: CompileState) -> None:
    """Checked once the model depth is known (layers must exist)."""
    spans: dict[str, SourceSpan | None] = {}
    for item in st.items:
        s = item.stmt
        if isinstance(s, ast.SaeDecl) and not s.broken:
            _sae(st, s, spans)


def _is_local_relative(ref: str) -> bool:
    return not ref.startswith(("hf:", "zoo:")) and not os.path.isabs(ref)


def _sae(st: CompileState, s: ast.SaeDecl, spans: dict[str, SourceSpan | None]) -> None:
    layers = int_items(st, s.layers)
    site = s.site.name if s.site else "resid_post"
    if s.site is not None and not valid_site(st, s.site):
        return
    file = s.span.file if s.span is not None else st.root
    folder = Path(file).resolve().parent if file else None
    for layer in layers:
        key = f"{layer}:{site}"
        ref = s.ref.value.replace("{layer}", str(layer)).replace("{site}", site)
        if folder is not None and _is_local_relative(ref):
            ref = str(folder / ref)
        if key in st.saes:
            st.emit(
                "W307",
                f"the SAE for layer {layer} ({site}) is set twice",
                s.span,
                label="this reference wins",
                help="delete one of the two `sae` lines",
                secondary=[(spans[key], "earlier reference")] if spans.get(key) else None,
            )
        st.saes[key] = ref
        spans[key] = s.span
