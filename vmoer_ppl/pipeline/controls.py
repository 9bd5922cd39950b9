"""What the posterior adds: each VMoER router against the controls that tune routers without it.

A VMoER fit moves the routers (``Δμ``) and spreads them (``σ``). Two controls separate the two:
the same fit routed at its posterior mean (``vmoer-<family>@mean``, ``--baselines
posterior-mean``) and routers fine-tuned to a point estimate on the same questions (``map``;
``swag`` adds SWAG's spread to them). Paired over seeds (same test questions per seed), a
difference whose interval excludes 0 is what the posterior's uncertainty buys, or costs.
"""

from __future__ import annotations

import math

from vmoer_ppl.pipeline.intervals import mean_sd, t_interval
from vmoer_ppl.pipeline.scaled_rows import SCALED_SUFFIX, scaled_name

#: Columns compared (lower is better for all but accuracy).
CONTROL_COLUMNS = ("ID acc", "ID NLL", "ID ECE", "ID Brier")

#: Controls tried for each VMoER router, in order (``{r}``: the router's own name).
CONTROLS = ("{r}@mean", "map", "swag")


def fitted_vmoer(agg: dict) -> list[str]:
    """The fitted VMoER routers of ``agg``: ``vmoer-<family>``, not its ``@mean`` / ``+ts`` rows."""
    return [
        r for r in agg if r.startswith("vmoer-") and "@" not in r and not r.endswith(SCALED_SUFFIX)
    ]


def paired(agg: dict, a: str, b: str, col: str, col_b: str | None = None) -> dict[str, float]:
    """Mean, sd and 95 % t-interval over seeds of ``a``'s ``col`` minus ``b``'s ``col_b``.

    Parameters
    ----------
    agg : dict
        :func:`vmoer_ppl.pipeline.seeds.aggregate` (per router and column, ``values`` per seed).
    a, b : str
        Routers of the same runs.
    col : str
        A summary column.
    col_b : str, optional
        ``b``'s column (default: ``col``).

    Returns
    -------
    dict
        ``mean``, ``sd``, ``lo``, ``hi`` (nan where a value is missing).
    """
    xa, xb = agg[a][col]["values"], agg[b][col_b or col]["values"]
    d = [x - y for x, y in zip(xa, xb, strict=True) if not (math.isnan(x) or math.isnan(y))]
    mean, sd = mean_sd(d)
    lo, hi = t_interval(d)
    return {"mean": mean, "sd": sd, "lo": lo, "hi": hi}


def controls_table(agg: dict, n_runs: int) -> str:
    """Markdown: paired differences of each VMoER router to each control present in ``agg``.

    Empty when no control was evaluated.
    """
    rows = []
    pairs = [(r, c.format(r=r)) for r in fitted_vmoer(agg) for c in CONTROLS]
    pairs += [(scaled_name(r), scaled_name(c)) for r, c in pairs]  # both temperature-scaled
    for r, c in pairs:
        if r not in agg or c not in agg:
            continue
        cells = []
        for col in CONTROL_COLUMNS:
            d = paired(agg, r, c, col)
            ci = "" if math.isnan(d["lo"]) else f" [{d['lo']:+.3f}, {d['hi']:+.3f}]"
            cells.append(f"{d['mean']:+.3f}{ci}")
        rows.append(f"| {r} − {c} | " + " | ".join(cells) + " |")
    if not rows:
        return ""
    head = [
        f"What the posterior adds (paired over {n_runs} seeds, mean [95% t-CI]): each VMoER "
        "router minus its own fit at the posterior mean (@mean), MAP-tuned routers (map) and "
        "SWAG routers (swag), where evaluated; +ts: both temperature-scaled post hoc.",
        "",
        "| difference | " + " | ".join(f"Δ {c}" for c in CONTROL_COLUMNS) + " |",
        "|" + "---|" * (len(CONTROL_COLUMNS) + 1),
    ]
    return "\n".join(head + rows)
