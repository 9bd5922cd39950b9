"""PSIS-LOO comparison of fitted routers through ArviZ, with Pareto-k diagnostics surfaced."""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np
import xarray as xr


def loo_compare(trees: Mapping[str, xr.DataTree]) -> dict:
    """ELPD-LOO of each exported router, ranked, with its Pareto-k diagnostics.

    Parameters
    ----------
    trees : mapping of str to xarray.DataTree
        Name -> output of :func:`vmoer_ppl.diagnostics.to_datatree` (same questions in each).

    Returns
    -------
    dict
        ``table``: rows (best first) with ``name``, ``elpd_loo``, ``se``, ``p_loo``,
        ``elpd_diff``, ``dse``, ``weight``; ``pareto_k``: per name the counts of k in
        (-inf, 0.5], (0.5, 0.7], (0.7, 1], (1, inf) and the share above 0.7 (PSIS unreliable there);
        ``warnings``: ArviZ's messages, kept rather than printed.
    """
    import arviz as az

    idata = {k: az.InferenceData.from_datatree(t) for k, t in trees.items()}
    caught, pareto = [], {}
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        for name, d in idata.items():
            k = az.loo(d, pointwise=True).pareto_k.values
            unknown = ~np.isfinite(k)  # too few draws for the tail fit (ArviZ returns NaN/inf)
            pareto[name] = {
                "good (<=0.5)": int((k <= 0.5).sum()),
                "ok (0.5-0.7]": int(((k > 0.5) & (k <= 0.7)).sum()),
                "bad (0.7-1]": int(((k > 0.7) & (k <= 1)).sum()),
                "very bad (>1)": int(((k > 1) & ~unknown).sum()),
                "not estimable": int(unknown.sum()),
                "share_above_0.7": float(((k > 0.7) | unknown).mean()),
            }
        cmp = az.compare(idata, ic="loo") if len(idata) > 1 else None
        caught = sorted({str(x.message) for x in w})
    rows = []
    if cmp is not None:
        for name, r in cmp.iterrows():
            rows.append(
                {
                    "name": name,
                    "elpd_loo": float(r["elpd_loo"]),
                    "se": float(r["se"]),
                    "p_loo": float(r["p_loo"]),
                    "elpd_diff": float(r["elpd_diff"]),
                    "dse": float(r["dse"]),
                    "weight": float(r["weight"]),
                }
            )
    else:
        for name, d in idata.items():
            lo = az.loo(d)
            row = {"name": name, "elpd_loo": float(lo.elpd_loo), "se": float(lo.se)}
            rows.append({**row, "p_loo": float(lo.p_loo), "elpd_diff": 0.0, "dse": 0.0})
            rows[-1]["weight"] = 1.0
    return {"table": rows, "pareto_k": pareto, "warnings": caught}


def loo_markdown(result: dict) -> str:
    """The comparison as a markdown table, Pareto-k counts beside each row."""
    lines = [
        "| router | elpd_loo | se | p_loo | elpd_diff | dse | weight | Pareto k > 0.7 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in result["table"]:
        k = result["pareto_k"][r["name"]]
        lines.append(
            f"| {r['name']} | {r['elpd_loo']:.2f} | {r['se']:.2f} | {r['p_loo']:.2f} | "
            f"{r['elpd_diff']:.2f} | {r['dse']:.2f} | {r['weight']:.2f} | "
            f"{100 * k['share_above_0.7']:.1f}% |"
        )
    return "\n".join(lines)
