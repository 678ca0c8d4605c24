"""Diagnosis of hostile replies: how the time to diagnose a reply grows with its size.

A gateway or a proxy can answer with any body: unclosed markup (``<script>`` 50,000 times), a JSON fault whose
message is 30,000 links, an XML bomb. ``sync.diagnosis.diagnose`` reads every reply the engine gets, so its time
must grow with the body's size, never with its square (it once took minutes on unclosed tags: quadratic regexes).

For each shape, the body is built at a small and a ten times larger size and diagnosed ``--runs`` times each; the
figures are the median milliseconds per size and their ratio. Linear work gives a ratio near 10; quadratic work
near 100. Results go to ``bench/results/diagnosis.json``.

    python -m bench.diagnosis [--runs 5]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.replicas import machine
from bench.retry_all import code_version

RESULTS = Path(__file__).resolve().parent / "results" / "diagnosis.json"

#: Each hostile shape: (HTTP status, content type, the body for a size n).
SHAPES: dict[str, tuple[int, str, Callable[[int], str]]] = {
    "unclosed <script> tags": (502, "text/html", lambda n: "<html><body>" + "<script>" * n + "</body></html>"),
    "a JSON fault of links": (400, "application/json",
                              lambda n: '{"Fault":{"Error":[{"Message":"' + '<a href=\\"x\\">' * n
                              + '","code":"6000"}]}}'),
    "unclosed XML elements": (400, "application/xml",
                              lambda n: "<IntuitResponse><Fault>" + "<Error code='6240'><Message>" * n),
}
SIZES = (5_000, 50_000)


def time_shape(status: int, content_type: str, body_of: Callable[[int], str], runs: int) -> dict[str, Any]:
    """Median ms to diagnose the body at each of :data:`SIZES`, and the ratio of the larger to the smaller."""
    from sync.diagnosis import diagnose

    medians: dict[int, float] = {}
    for n in SIZES:
        body = body_of(n)
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            diagnosis = diagnose(status, body, content_type)
            times.append((time.perf_counter() - started) * 1000)
            if diagnosis.kind is None:
                raise RuntimeError("diagnose gave no kind")
        medians[n] = statistics.median(times)
    small, large = SIZES
    return {"median_ms": {str(n): round(ms, 2) for n, ms in medians.items()},
            "ratio_10x_size": round(medians[large] / max(medians[small], 1e-6), 1), "runs": runs}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    results = {name: time_shape(status, ctype, body, max(1, args.runs))
               for name, (status, ctype, body) in SHAPES.items()}
    summary = {"bench": "diagnosis of hostile replies", "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
               "machine": machine(), "code": code_version(), "sizes": list(SIZES), "results": results,
               "reading": "linear work: ratio near 10; quadratic: near 100"}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(summary, indent=2) + "\n")
    for name, r in results.items():
        print(f"{name:<26} {r['median_ms']}  ratio {r['ratio_10x_size']}")
    print(f"-> {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
