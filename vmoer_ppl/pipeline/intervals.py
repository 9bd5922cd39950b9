"""Mean, spread and Student-t interval of a handful of per-seed values."""

from __future__ import annotations

import math
import statistics


def mean_sd(xs: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation of ``xs``, nan values dropped (nan when undefined)."""
    xs = [x for x in xs if not math.isnan(x)]
    mean = statistics.fmean(xs) if xs else math.nan
    return mean, statistics.stdev(xs) if len(xs) > 1 else math.nan


def t_interval(xs: list[float], level: float = 0.95) -> tuple[float, float]:
    """Student-t confidence interval of the mean of ``xs`` (nan with fewer than 2 values)."""
    from scipy.stats import t

    xs = [x for x in xs if not math.isnan(x)]
    if len(xs) < 2:
        return math.nan, math.nan
    mean, sd = statistics.fmean(xs), statistics.stdev(xs)
    half = t.ppf(0.5 + level / 2, len(xs) - 1) * sd / math.sqrt(len(xs))
    return mean - half, mean + half
