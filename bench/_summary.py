"""The one summary line every benchmark prints, and the results file `nox -s bench` reads.

Each benchmark calls :func:`summary` once per figure it reports against a target (most
call it once). The line reads::

    SUMMARY <benchmark>: <figure> | <ratio> | target <target>: met

When ``CHAPERONE_BENCH_RESULTS`` names a file, the same facts are appended to it as one
JSON object per line, so the nox session can print all the summary lines together at
the end of the run and docs/benchmarks.md can be checked against them.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path


def machine() -> str:
    """What the figures were measured on: CPU count, machine, Python."""
    return (
        f"{os.cpu_count()} cores, {platform.machine()}, {platform.system()}, "
        f"Python {platform.python_version()}"
    )


def summary(
    benchmark: str,
    *,
    figure: str,
    ratio: str,
    target: str,
    met: bool,
    miss: str = "",
) -> None:
    """Print the benchmark's summary line and record it in the results file.

    ``figure`` is the measurement with its unit ("0.41 µs/heartbeat"), ``ratio`` the
    comparison with the peer or floor measured in the same run ("1.9x a dict update"),
    ``target`` the issue's target, ``met`` whether it holds, and ``miss`` (when it does
    not) by how much and what bounds it.
    """
    verdict = "met" if met else f"MISSED ({miss})" if miss else "MISSED"
    print(f"SUMMARY {benchmark}: {figure} | {ratio} | target {target}: {verdict}", flush=True)
    results = os.environ.get("CHAPERONE_BENCH_RESULTS")
    if results:
        record = {
            "benchmark": benchmark,
            "figure": figure,
            "ratio": ratio,
            "target": target,
            "met": met,
            "miss": miss,
            "machine": machine(),
            "argv": sys.argv[1:],
        }
        with Path(results).open("a", encoding="utf-8") as file:
            file.write(json.dumps(record, ensure_ascii=False) + "\n")
