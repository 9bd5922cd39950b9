"""Shared helpers of the benchmark scripts (run as ``python benchmarks/<name>.py``)."""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import torch
from torch import nn

#: The router families whose prediction overhead ``inference.py`` measures and ``summary.py`` reads.
INFERENCE_FAMILIES = ("logit-mf", "logit-fc", "logit-lowrank", "temperature")


def seconds(fn) -> float:
    """Wall time of one call ``fn()``, not counting the release of what it returns.

    The result is dropped after the clock stops: freeing it can return the heap the call just
    used to the OS (glibc trims when a freed block at the heap's top leaves it above its
    threshold), 10-20 ms on the embedded model's forward, charged to whichever call's output
    happened to sit at the top, not to the work being timed.
    """
    t0 = time.perf_counter()
    out = fn()
    elapsed = time.perf_counter() - t0
    del out
    return elapsed


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


class ModuleClock:
    """Wall time spent inside some modules' forwards, summed over their calls (forward hooks).

    Times a component where it runs, inside the pass whose cost it adds to, instead of as the
    difference of two whole passes: the difference of two 1.7 s passes carries the machine's noise
    (several %), the time inside five routers only the noise of that time. Hooks fire for forwards
    an adapter replaced (``router.forward = ...``) as for the class's own. Use as a context
    manager; :attr:`total` is the seconds since the last :meth:`reset`.

    Parameters
    ----------
    modules : sequence of nn.Module
        The modules to time (not nested in one another).
    device : str
        On ``cuda`` each hook synchronises, so the time covers the kernels.
    """

    def __init__(self, modules, device: str = "cpu") -> None:
        self.modules, self.cuda = list(modules), str(device).startswith("cuda")
        self.total, self.handles, self.started = 0.0, [], 0.0

    def now(self) -> float:
        """``perf_counter`` after the device's queued work (CUDA) has finished."""
        if self.cuda:
            torch.cuda.synchronize()
        return time.perf_counter()

    def start(self, module: nn.Module, args) -> None:
        """Forward pre-hook: a call begins."""
        self.started = self.now()

    def stop(self, module: nn.Module, args, output) -> None:
        """Forward hook: a call ended; add its time."""
        self.total += self.now() - self.started

    def reset(self) -> float:
        """The seconds accumulated so far; the clock restarts from zero."""
        total, self.total = self.total, 0.0
        return total

    def __enter__(self) -> ModuleClock:
        for m in self.modules:
            self.handles += [
                m.register_forward_pre_hook(self.start),
                m.register_forward_hook(self.stop),
            ]
        return self

    def __exit__(self, *exc) -> None:
        for h in self.handles:
            h.remove()
        self.handles = []


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
