"""Ask the real language server code what an editor would show for a recipe, as JSON.

Used by `render_preview.js` to draw the screenshot in docs/editor.md: the diagnostics, the
hover of the first error and the completion list at the end of the file are exactly what
`steer lsp` sends (same functions, UTF-16 positions).

    python scripts/lsp_snapshot.py scripts/sample.steer > /tmp/snapshot.json
"""

from __future__ import annotations

import json
import sys

from lsprotocol import converters, types

from steerlang.lsp import features
from steerlang.lsp.documents import Document


def main(path: str) -> None:
    text = open(path, encoding="utf-8").read()
    doc = Document(uri="file:///" + path, text=text, version=1, path=path)
    diags = features.lsp_diagnostics(doc)
    first = diags[0]
    actions = features.lsp_code_actions(doc, first.range)
    end = doc.index.position_of(len(text.rstrip("\n")))
    completion = features.lsp_completion(doc, types.Position(end.line, end.character))
    conv = converters.get_converter()
    json.dump(
        {
            "text": text,
            "diagnostics": conv.unstructure(diags),
            "quickfixes": [a.title for a in actions],
            "completion": {
                "position": {"line": end.line, "character": end.character},
                "items": conv.unstructure(completion.items),
            },
        },
        sys.stdout,
        indent=1,
    )


if __name__ == "__main__":
    main(sys.argv[1])
