// Render a recipe the way VS Code shows it with this extension, as a standalone HTML page:
// colours from the extension's TextMate grammar run through vscode-textmate + oniguruma (the
// engine VS Code itself uses), squiggles, hover and completion from the language server's
// real output (scripts/lsp_snapshot.py). docs/editor.md's screenshot is this page captured
// with headless Chromium.
//
//   node scripts/render_preview.js /tmp/snapshot.json /tmp/preview.html
"use strict";

const fs = require("fs");
const path = require("path");
const vsctm = require("vscode-textmate");
const oniguruma = require("vscode-oniguruma");

// VS Code "Dark Modern"-like colours by scope prefix (longest prefix wins).
const THEME = [
  ["comment", "#6A9955"],
  ["string", "#CE9178"],
  ["constant.other.placeholder", "#569CD6"],
  ["constant.character.escape", "#D7BA7D"],
  ["constant.numeric", "#B5CEA8"],
  ["constant.language", "#569CD6"],
  ["keyword.control", "#C586C0"],
  ["keyword.other.action", "#C586C0"],
  ["keyword.operator", "#D4D4D4"],
  ["keyword", "#569CD6"],
  ["storage.type", "#569CD6"],
  ["support.function", "#DCDCAA"],
  ["variable.function", "#DCDCAA"],
  ["entity.name.type", "#4EC9B0"],
  ["entity.name.function", "#DCDCAA"],
  ["entity.name.variable", "#4FC1FF"],
  ["variable.parameter", "#9CDCFE"],
  ["variable.other.setting", "#9CDCFE"],
  ["variable", "#9CDCFE"],
  ["punctuation", "#D4D4D4"],
];

function colour(scopes) {
  let best = null;
  for (const scope of scopes) {
    for (const [prefix, c] of THEME) {
      if (scope === prefix || scope.startsWith(prefix + ".")) {
        if (!best || prefix.length > best[0].length) best = [prefix, c];
      }
    }
  }
  return best ? best[1] : "#D4D4D4";
}

function esc(s) {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

// UTF-16 columns (LSP) are JavaScript string indices, so ranges apply directly.
function squiggleAt(diags, line, col) {
  for (const d of diags) {
    const s = d.range.start, e = d.range.end;
    const after = line > s.line || (line === s.line && col >= s.character);
    const empty = s.line === e.line && s.character === e.character;
    const before =
      line < e.line || (line === e.line && (col < e.character || (empty && col === s.character)));
    if (after && before) return d.severity === 1 ? "err" : "warn";
  }
  return null;
}

async function main() {
  const [snapPath, outPath] = process.argv.slice(2);
  const snap = JSON.parse(fs.readFileSync(snapPath, "utf8"));
  const wasm = fs.readFileSync(require.resolve("vscode-oniguruma/release/onig.wasm")).buffer;
  await oniguruma.loadWASM(wasm);
  const registry = new vsctm.Registry({
    onigLib: Promise.resolve({
      createOnigScanner: (p) => new oniguruma.OnigScanner(p),
      createOnigString: (s) => new oniguruma.OnigString(s),
    }),
    loadGrammar: async () => {
      const file = path.join(__dirname, "..", "syntaxes", "steer.tmLanguage.json");
      return vsctm.parseRawGrammar(fs.readFileSync(file, "utf8"), file);
    },
  });
  const grammar = await registry.loadGrammar("source.steer");
  const lines = snap.text.replace(/\n$/, "").split("\n");
  const diags = snap.diagnostics;
  let state = vsctm.INITIAL;
  const rows = [];
  lines.forEach((line, i) => {
    const r = grammar.tokenizeLine(line, state);
    state = r.ruleStack;
    let html = "";
    for (const t of r.tokens) {
      const text = line.slice(t.startIndex, t.endIndex);
      // split tokens at squiggle boundaries
      let chunk = "", kind = undefined;
      const flush = () => {
        if (!chunk) return;
        const cls = kind ? ` class="${kind}"` : "";
        html += `<span style="color:${colour(t.scopes)}"${cls}>${esc(chunk)}</span>`;
        chunk = "";
      };
      for (let k = 0; k < text.length; k++) {
        const sk = squiggleAt(diags, i, t.startIndex + k);
        if (sk !== kind) { flush(); kind = sk; }
        chunk += text[k];
      }
      flush();
    }
    // A diagnostic at the end of a line (missing token) gets a one-cell squiggle.
    for (const d of diags) {
      if (d.range.start.line === i && d.range.start.character >= line.length) {
        html += `<span class="${d.severity === 1 ? "err" : "warn"}">&nbsp;</span>`;
      }
    }
    rows.push(`<div class="row"><span class="ln">${i + 1}</span><span class="code">${html || "&nbsp;"}</span></div>`);
  });

  const first = diags[0];
  const [msg, ...rest] = first.message.split("\n");
  const hover = `
    <div class="hover" style="top:${first.range.start.line * 20 + 7}px; transform:translateY(-100%); left:${70 + first.range.start.character * 8.4}px">
      <div class="hmsg">${esc(msg)} <span class="hsrc">steer(${first.code})</span></div>
      ${rest.map((l) => `<div class="hnote">${esc(l)}</div>`).join("")}
      <div class="hfix">Quick Fix… &nbsp;<span class="kbd">Ctrl+.</span> &nbsp; ${esc(snap.quickfixes[0] || "")}</div>
    </div>`;

  const items = [...snap.completion.items].sort((a, b) => a.sortText.localeCompare(b.sortText));
  const cp = snap.completion.position;
  const sel = items[0];
  const completion = `
    <div class="completion" style="top:${(cp.line + 1) * 20 + 12}px; left:${70 + cp.character * 8.4}px">
      <div class="list">${items
        .map((it, k) => `<div class="item${k === 0 ? " sel" : ""}"><span class="icon">${it.kind === 14 ? "⌨" : "◆"}</span>${esc(it.label)}<span class="det">${esc(it.detail || "")}</span></div>`)
        .join("")}</div>
      <div class="doc">${esc(sel.documentation ? sel.documentation.value : "")}</div>
    </div>`;

  const errs = diags.filter((d) => d.severity === 1).length;
  const warns = diags.filter((d) => d.severity === 2).length;
  const page = `<!doctype html><html><head><meta charset="utf-8"><style>
    body { margin:0; background:#1f1f1f; font-family: "DejaVu Sans Mono", monospace; }
    .tabs { height:35px; background:#181818; display:flex; align-items:flex-end; }
    .tab { background:#1f1f1f; color:#fff; font: 13px "DejaVu Sans", sans-serif; padding:9px 16px; border-top:1px solid #0078d4; }
    .editor { position:relative; padding-top:9px; height:${lines.length * 20 + 260}px; }
    .row { height:20px; line-height:20px; font-size:14px; white-space:pre; }
    .ln { display:inline-block; width:50px; text-align:right; padding-right:20px; color:#6e7681; }
    .err, .warn { display:inline-block; min-width:8px; background-repeat:repeat-x; background-position:left bottom; }
    .err { background-image:url("data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 6 3' height='3' width='6'%3E%3Cg fill='%23f14c4c'%3E%3Cpolygon points='5.5,0 2.5,3 1.1,3 4.1,0'/%3E%3Cpolygon points='4,0 6,2 6,0.6 5.4,0'/%3E%3Cpolygon points='0,2 1,3 2.4,3 0,0.6'/%3E%3C/g%3E%3C/svg%3E"); }
    .warn { background-image:url("data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 6 3' height='3' width='6'%3E%3Cg fill='%23cca700'%3E%3Cpolygon points='5.5,0 2.5,3 1.1,3 4.1,0'/%3E%3Cpolygon points='4,0 6,2 6,0.6 5.4,0'/%3E%3Cpolygon points='0,2 1,3 2.4,3 0,0.6'/%3E%3C/g%3E%3C/svg%3E"); }
    .hover { position:absolute; background:#202020; border:1px solid #454545; color:#ccc; font:13px "DejaVu Sans", sans-serif; padding:6px 10px; max-width:560px; box-shadow:0 2px 8px #000; }
    .hmsg { color:#ddd; margin-bottom:3px; } .hsrc { color:#888; } .hnote { color:#bbb; }
    .hfix { margin-top:6px; border-top:1px solid #454545; padding-top:5px; color:#4daafc; }
    .kbd { color:#999; }
    .completion { position:absolute; display:flex; font:13px "DejaVu Sans Mono", monospace; box-shadow:0 2px 8px #000; }
    .list { background:#202020; border:1px solid #454545; width:260px; }
    .item { color:#ccc; padding:2px 8px; height:18px; line-height:18px; } .item.sel { background:#04395e; color:#fff; }
    .icon { color:#75beff; padding-right:6px; } .det { float:right; color:#888; font-size:12px; }
    .doc { background:#202020; border:1px solid #454545; border-left:none; color:#ccc; width:300px; padding:6px 10px; font-family:"DejaVu Sans", sans-serif; }
    .status { position:absolute; bottom:0; left:0; right:0; height:22px; background:#181818; color:#ccc; font:12px "DejaVu Sans", sans-serif; line-height:22px; padding-left:10px; border-top:1px solid #2b2b2b; }
  </style></head><body>
  <div class="tabs"><div class="tab">waterbirds.steer</div></div>
  <div class="editor">${rows.join("")}${hover}${completion}</div>
  <div class="status">⊗ ${errs} &nbsp; ⚠ ${warns} &nbsp;&nbsp; steerlang · Ln ${cp.line + 1}, Col ${cp.character + 1} · UTF-8 · steer</div>
  </body></html>`;
  fs.writeFileSync(outPath, page);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
