"""Editor latency: time from a `didChange` to the `publishDiagnostics` for that version.

Starts `python -m steerlang lsp` as a subprocess (exactly what the VS Code extension runs),
opens a 200-rule recipe and sends one incremental edit at a time, alternating a threshold
change with introducing/removing a typo (so results really change: each answer is checked
for the expected E003). The clock runs from just before the change is written to the pipe
until the matching notification has been read back, so it includes JSON-RPC framing, the
server's debounce, the check itself and the conversion to LSP positions.

    python benchmarks/lsp_latency.py [--rules 200] [--samples 60]

The last line of output is one JSON object. Target: median and p95 <= 100 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import statistics
import subprocess
import sys
import threading
import time
from typing import Any

TARGET_MS = 100.0


def make_recipe(n_rules: int) -> str:
    """A realistic recipe: declarations, then `n_rules` rules of every shape the language has."""
    head = [
        "steer 1",
        'recipe big "latency benchmark"',
        "model default",
        "dataset waterbirds",
        'task classify y as ["landbird", "waterbird"] prompt "a photo of a {}."',
        "groups y, place",
        "concept water = place == 1",
        "concept land = place == 0",
        "concept waterbird = y == 1",
        "param thr = 0.3",
        "param k = 10",
        'set stats_split = "train"',
    ]
    shapes = [
        "rule r{i}: at layer {l} suppress features where corr(water) > 0.{d} and freq() < 0.5",
        "rule r{i}: at layers {l}..{l2} tokens patches scale top {k} features by corr(land) by 0.5",
        "rule r{i}: at layer {l} clamp feature {f} to 20",
        "rule r{i}: at layer {l} site mlp_out mean-ablate features where mean(not water) > 0.{d}",
        'rule r{i}: at layer {l} suppress features where promotes("text") > 0.1 or corr(waterbird) < -thr',
        "rule r{i}: at layer {l} add 2.5 to top k features by steerability() where max() > 1",
    ]
    rules = []
    for i in range(n_rules):
        layer = i % 12
        rules.append(
            shapes[i % len(shapes)].format(
                i=i, l=layer, l2=min(11, layer + 2), d=1 + i % 9, k=5 + i % 20, f=100 + i
            )
        )
    return "\n".join(head + rules) + "\n"


class Server:
    """Minimal JSON-RPC over the server's stdio, with a reader thread timestamping messages."""

    def __init__(self, cmd: list[str]) -> None:
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        self.inbox: queue.Queue[tuple[float, dict[str, Any]]] = queue.Queue()
        self._id = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        out = self.proc.stdout
        assert out is not None
        while True:
            length = 0
            while True:
                line = out.readline()
                if not line:
                    return
                if line in (b"\r\n", b"\n"):
                    break
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            body = out.read(length)
            self.inbox.put((time.perf_counter(), json.loads(body)))

    def send(self, msg: dict[str, Any]) -> float:
        body = json.dumps(msg).encode("utf-8")
        assert self.proc.stdin is not None
        t = time.perf_counter()
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.proc.stdin.flush()
        return t

    def request(self, method: str, params: Any) -> Any:
        self._id += 1
        self.send({"jsonrpc": "2.0", "id": self._id, "method": method, "params": params})
        while True:
            _, m = self.inbox.get(timeout=60)
            if m.get("id") == self._id:
                return m.get("result")

    def notify(self, method: str, params: Any) -> float:
        return self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def wait_diagnostics(self, version: int, timeout: float = 60.0) -> tuple[float, list[Any]]:
        deadline = time.perf_counter() + timeout
        while True:
            t, m = self.inbox.get(timeout=max(0.01, deadline - time.perf_counter()))
            if m.get("method") == "textDocument/publishDiagnostics":
                if m["params"].get("version") == version:
                    return t, m["params"]["diagnostics"]

    def close(self) -> None:
        try:
            self.request("shutdown", None)
            self.notify("exit", None)
            self.proc.wait(timeout=10)
        except Exception:
            self.proc.kill()


def percentile(xs: list[float], q: float) -> float:
    s = sorted(xs)
    k = (len(s) - 1) * q
    lo, hi = int(k), min(len(s) - 1, int(k) + 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rules", type=int, default=200)
    ap.add_argument("--samples", type=int, default=60)
    ap.add_argument("--warmup", type=int, default=5)
    args = ap.parse_args()

    from steerlang.lang.api import compile_text

    text = make_recipe(args.rules)
    lines = text.split("\n")
    # In-process cold check time of the same text, for context (the server re-checks an
    # edited document incrementally, so it can beat this).
    compile_text(text, "big.steer")
    compile_ms = []
    for _ in range(15):
        t = time.perf_counter()
        res = compile_text(text, "big.steer")
        compile_ms.append((time.perf_counter() - t) * 1000)
    n_rules = len(res.ir.rules) if res.ir is not None else 0
    assert n_rules == args.rules, res.render()
    base_errors = sum(1 for d in res.diagnostics if d.severity == "error")

    srv = Server([sys.executable, "-m", "steerlang", "lsp"])
    uri = "file://" + os.path.abspath("big.steer")
    try:
        t_start = time.perf_counter()
        srv.request("initialize", {"processId": os.getpid(), "rootUri": None, "capabilities": {}})
        srv.notify("initialized", {})
        t_open = srv.notify(
            "textDocument/didOpen",
            {"textDocument": {"uri": uri, "languageId": "steer", "version": 1, "text": text}},
        )
        t_first, _ = srv.wait_diagnostics(1)
        startup_ms = (t_first - t_start) * 1000
        open_ms = (t_first - t_open) * 1000

        latencies: list[float] = []
        version = 1
        target_line = len(lines) - 2  # the last rule
        original = lines[target_line]
        word = next(
            w for w in ("suppress", "scale", "clamp", "mean-ablate", "add") if f" {w} " in original
        )
        misspelt = original.replace(f" {word} ", f" {word[:-1]}x ", 1)
        current = original
        for i in range(args.warmup + args.samples):
            version += 1
            typo = i % 2 == 0  # alternate: misspell the action word, then fix it again
            new_line = misspelt if typo else original
            change = {
                "range": {
                    "start": {"line": target_line, "character": 0},
                    "end": {"line": target_line, "character": len(current)},  # ASCII line
                },
                "text": new_line,
            }
            t0 = srv.notify(
                "textDocument/didChange",
                {"textDocument": {"uri": uri, "version": version}, "contentChanges": [change]},
            )
            t1, diags = srv.wait_diagnostics(version)
            current = new_line
            n_err = sum(1 for d in diags if d.get("severity") == 1)
            assert n_err == base_errors + (1 if typo else 0), (version, n_err, diags[:3])
            assert typo == any(d["code"] == "E003" for d in diags)
            if i >= args.warmup:
                latencies.append((t1 - t0) * 1000)
    finally:
        srv.close()

    med = statistics.median(latencies)
    p95 = percentile(latencies, 0.95)
    cmed = statistics.median(compile_ms)
    print(f"recipe: {args.rules} rules, {len(lines) - 1} lines, {len(text)} characters")
    print(f"compile_text in-process: median {cmed:.1f} ms")
    print(
        f"server start to first diagnostics: {startup_ms:.0f} ms (didOpen to diagnostics {open_ms:.1f} ms)"
    )
    print(
        f"didChange -> publishDiagnostics over {len(latencies)} edits: median {med:.1f} ms, "
        f"p95 {p95:.1f} ms, min {min(latencies):.1f} ms, max {max(latencies):.1f} ms "
        f"(target <= {TARGET_MS:.0f} ms)"
    )
    print(
        json.dumps(
            {
                "benchmark": "lsp_latency",
                "rules": args.rules,
                "samples": len(latencies),
                "median_ms": round(med, 2),
                "p95_ms": round(p95, 2),
                "min_ms": round(min(latencies), 2),
                "max_ms": round(max(latencies), 2),
                "compile_median_ms": round(cmed, 2),
                "open_ms": round(open_ms, 2),
                "target_ms": TARGET_MS,
                "meets_target": med <= TARGET_MS and p95 <= TARGET_MS,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
