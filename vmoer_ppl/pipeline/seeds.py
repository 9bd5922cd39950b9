"""`vmoer compare RUN_DIR ...`: one table over several evaluated runs (seeds) of the same setup.

A seed of ``vmoer fit`` draws the data splits, the guide's initialisation, the minibatches and
the MC routing draws, so the spread over seeds is the figure's run-to-run uncertainty; the
bootstrap CIs of one run cover only the test questions. Each cell is mean ± sample standard
deviation over the runs; the paired columns are per-run differences to the deterministic router
of the same run (same test questions), then averaged.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

from vmoer_ppl.pipeline.config import FitConfig
from vmoer_ppl.pipeline.confound_report import length_seeds_table
from vmoer_ppl.pipeline.controls import controls_table
from vmoer_ppl.pipeline.goals import goals_table
from vmoer_ppl.pipeline.intervals import mean_sd, t_interval
from vmoer_ppl.pipeline.machine import fit_machine, machine_label, machine_mismatch
from vmoer_ppl.pipeline.regime import regime_seeds_text
from vmoer_ppl.pipeline.report import SUMMARY_COLUMNS, summary_row
from vmoer_ppl.pipeline.stability_report import jaccard_columns, stability_table
from vmoer_ppl.settings import flat_values

log = logging.getLogger(__name__)

#: Settings that must agree for runs to be pooled (everything but the seed and the directory).
IGNORED = {"seed", "out", "overwrite"}


def read_metrics(d: Path) -> dict:
    """A run's ``metrics.json``, or a ``ValueError`` naming what is wrong and the fix.

    ``Infinity`` is refused (no evaluation writes it); ``NaN`` marks a metric that is undefined.
    """

    def no_constants(name):
        if name == "NaN":
            return float("nan")
        raise ValueError(f"non-finite number {name}")

    path = d / "metrics.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"), parse_constant=no_constants)
    except (ValueError, UnicodeDecodeError) as err:
        fix = f"run `vmoer evaluate {d} --overwrite`"
        raise ValueError(f"{path} is damaged ({err}); {fix}") from None
    ok = isinstance(data, dict) and isinstance(data.get("results"), dict) and data["results"]
    if not ok or not isinstance(data.get("meta"), dict):
        raise ValueError(
            f"{path} lacks its 'meta' or 'results'; run `vmoer evaluate {d} --overwrite`"
        )
    return data


def load_runs(run_dirs) -> list[dict]:
    """``metrics.json`` of each run, after checking that only their seeds differ.

    Parameters
    ----------
    run_dirs : sequence of str or Path
        Evaluated run directories (``vmoer evaluate`` done).

    Returns
    -------
    list of dict
        ``{"meta", "results", "seed"}`` per run.
    """
    runs, first, fitted_on = [], None, []  # fitted_on: fit.json's machine record per run
    for d in map(Path, run_dirs):
        if not (d / "metrics.json").exists():
            raise FileNotFoundError(
                f"{d}: not evaluated (no metrics.json); run `vmoer evaluate {d}`"
            )
        cfg = FitConfig.load(d)  # a clear error when d is not a run directory
        every = {**flat_values(cfg), "embedded": cfg.embedded}
        settings = {k: v for k, v in every.items() if k not in IGNORED}
        if first is None:
            first = (d, settings)
        elif settings != first[1]:
            diff = sorted(
                k for k in settings.keys() | first[1] if settings.get(k) != first[1].get(k)
            )
            raise ValueError(
                f"{d} and {first[0]} differ in {diff}, not only in the seed; "
                "compare runs of one setup"
            )
        runs.append({**read_metrics(d), "seed": cfg.seed})
        fitted_on.append(fit_machine(d))
    if len({r["seed"] for r in runs}) < len(runs):
        raise ValueError("two of the runs have the same seed; pass each seed once")
    if why := machine_mismatch([*(r["meta"].get("machine") for r in runs), *fitted_on]):
        log.warning(why)
    return runs


def aggregate(runs: list[dict]) -> dict:
    """Mean and sd over runs of every summary column, and of the paired differences.

    Parameters
    ----------
    runs : list of dict
        From :func:`load_runs`.

    Returns
    -------
    dict
        ``{router: {column: {"mean", "sd", "values"}}}``, the columns being the summary's and
        ``"Jaccard (γ=…)"`` at every noise level of the first run's stability probe; paired
        columns are ``"Δ <column>"`` and also carry the 95% Student-t interval ``"lo"``,
        ``"hi"`` of the mean difference.
    """
    routers = [r for r in runs[0]["results"] if all(r in run["results"] for run in runs)]
    det = [_row(run["results"]["deterministic"]) for run in runs]
    out = {}
    for name in routers:
        cols = {}
        rows = [_row(run["results"][name]) for run in runs]
        for col in rows[0]:
            values = [row.get(col, math.nan) for row in rows]
            cols[col] = dict(zip(("mean", "sd"), mean_sd(values), strict=True), values=values)
            if name != "deterministic":
                d = [
                    row.get(col, math.nan) - base.get(col, math.nan)
                    for row, base in zip(rows, det, strict=True)
                ]
                lo, hi = t_interval(d)
                cols[f"Δ {col}"] = {
                    **dict(zip(("mean", "sd"), mean_sd(d), strict=True)),
                    "lo": lo,
                    "hi": hi,
                    "values": d,
                }
        out[name] = cols
    return out


def _row(r: dict) -> dict[str, float]:
    """A router's summary columns, then its mean Jaccard at every γ its stability probe measured."""
    return {**dict(zip(SUMMARY_COLUMNS, summary_row(r), strict=True)), **jaccard_columns(r)}


def seeds_table(agg: dict, n_runs: int) -> str:
    """Markdown tables: mean ± sd over ``n_runs`` runs, then paired differences with 95% CIs."""
    cols = list(SUMMARY_COLUMNS)
    lines = [
        f"| router (mean ± sd over {n_runs} seeds) | " + " | ".join(cols) + " |",
        "|" + "---|" * (len(cols) + 1),
    ]
    for name, c in agg.items():
        cells = []
        for col in cols:
            v = c.get(col)
            if v is None or math.isnan(v["mean"]):
                cells.append("–")
            else:
                sd = "" if math.isnan(v["sd"]) else f" ± {v['sd']:.3f}"
                cells.append(f"{v['mean']:.3f}{sd}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"| paired Δ to deterministic (mean [95% t-CI], {n_runs} seeds) | "
        + " | ".join(cols)
        + " |",
        "|" + "---|" * (len(cols) + 1),
    ]
    for name, c in agg.items():
        if name == "deterministic":
            continue
        cells = []
        for col in cols:
            v = c.get(f"Δ {col}")
            if v is None or math.isnan(v["mean"]):
                cells.append("–")
            elif math.isnan(v["lo"]):
                cells.append(f"{v['mean']:+.3f}")
            else:
                cells.append(f"{v['mean']:+.3f} [{v['lo']:+.3f}, {v['hi']:+.3f}]")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def compare_runs(run_dirs, out: str | Path | None = None) -> str:
    """Pool several seeds' evaluations into one table; optionally write it (and JSON) to ``out``.

    Parameters
    ----------
    run_dirs : sequence of str or Path
        Evaluated run directories that differ only in their seed.
    out : str or Path, optional
        Write ``out.md`` and ``out.json`` (per router and column: mean, sd and the values).

    Returns
    -------
    str
        The markdown table.
    """
    runs = load_runs(run_dirs)
    agg = aggregate(runs)
    table = seeds_table(agg, len(runs)) + "\n\n" + goals_table(agg)
    if regime := regime_seeds_text([r["meta"] for r in runs]):
        table += "\n\n" + regime
    if stab := stability_table(agg, len(runs)):
        table += "\n\n" + stab
    if controls := controls_table(agg, len(runs)):
        table += "\n\n" + controls
    if lengths := length_seeds_table(runs):
        table += "\n\n" + lengths
    if out is not None:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.with_suffix(".md").write_text(
            f"Seeds {[r['seed'] for r in runs]} of {[str(d) for d in run_dirs]}"
            f"{computed_on(runs)}\n\n{table}\n"
        )
        seeds = [r["seed"] for r in runs]
        out.with_suffix(".json").write_text(json.dumps({"seeds": seeds, "routers": agg}, indent=2))
    return table


def computed_on(runs: list[dict]) -> str:
    """``"; computed on <machine>[, <machine>...]"`` for the runs that record one, else ``""``."""
    labels = sorted({lab for r in runs if (lab := machine_label(r["meta"]))})
    return f"; computed on {', '.join(labels)}" if labels else ""
