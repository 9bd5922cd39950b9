"""Shared helpers of the benchmark scripts (run as ``python benchmarks/<name>.py``)."""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import torch

#: The router families whose prediction overhead ``inference.py`` measures and ``summary.py`` reads.
INFERENCE_FAMILIES = ("logit-mf", "logit-fc", "logit-lowrank", "temperature")


def seconds(fn) -> float:
    """Wall time of one call ``fn()``."""
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def timed(fn, repeats: int) -> float:
    """Median wall time of ``fn()`` over ``repeats`` calls after one warm-up call."""
    fn()
    return statistics.median(seconds(fn) for _ in range(repeats))


def pair_ratios(fa, fb, repeats: int) -> tuple[list[float], list[float], list[float]]:
    """Wall times of ``fa()`` and ``fb()`` called alternately ``repeats`` times, and each b/a.

    Alternating the calls keeps slow drifts of the machine (other load, clocks) out of the ratio;
    the spread of the per-pair ratios is what a ratio measured this way can resolve.
    """
    fa(), fb()
    ta, tb = zip(*[(seconds(fa), seconds(fb)) for _ in range(repeats)], strict=True)
    return list(ta), list(tb), [b / a for a, b in zip(ta, tb, strict=True)]


def timed_pair(fa, fb, repeats: int) -> tuple[float, float, float]:
    """Median wall times of ``fa()`` and ``fb()`` called alternately, and the median of b/a."""
    ta, tb, ratios = pair_ratios(fa, fb, repeats)
    return statistics.median(ta), statistics.median(tb), statistics.median(ratios)


def quartiles(values: list[float]) -> tuple[float, float]:
    """First and third quartiles of ``values`` (the interquartile range's ends; one value: it)."""
    if len(values) < 2:
        return values[0], values[0]
    q = statistics.quantiles(values, n=4, method="inclusive")
    return q[0], q[2]


def synced(fn, device: str):
    """``fn`` followed by a device synchronisation on CUDA (wall time then covers the kernels)."""
    if not str(device).startswith("cuda"):
        return fn

    def run():
        fn()
        torch.cuda.synchronize()

    return run


def write_result(out, result: dict) -> None:
    """Write a benchmark's result as JSON to ``out`` (parent folders created); no-op if None."""
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(result, indent=2))
