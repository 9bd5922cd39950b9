"""Run directories: config.json, metrics.json and a report.md with one table per data set."""

from __future__ import annotations

import json
import math
from pathlib import Path

from vmoer_ppl.pipeline.confound_report import length_table
from vmoer_ppl.pipeline.evaluate import mean_over_ood
from vmoer_ppl.pipeline.machine import machine_label
from vmoer_ppl.pipeline.regime import regime_text
from vmoer_ppl.pipeline.stability_report import (
    SELF_AGREEMENT,
    jaccard_column,
    jaccard_columns,
    run_stability_table,
)
from vmoer_ppl.safe_files import write_text

#: Columns of the summary table, in order.
SUMMARY_COLUMNS = (
    "ID acc",
    "ID NLL",
    "ID ECE",
    "ID Brier",
    "OOD AUROC (entropy)",
    "OOD AUROC (MI)",
    "OOD AUROC (ILV)",
    jaccard_column(0.01),
)


def summary_row(r: dict) -> list[float]:
    """One router's :data:`SUMMARY_COLUMNS` from its ``metrics.json`` results (nan if absent)."""
    i = r["id"]
    return [
        i["acc"],
        i["nll"],
        i["ece"],
        i["brier"],
        mean_over_ood(r, "auroc_answer_entropy"),
        mean_over_ood(r, "auroc_mutual_information"),
        mean_over_ood(r, "auroc_ilv"),
        jaccard_columns(r).get(jaccard_column(0.01), math.nan),
    ]


def summary_table(results: dict) -> str:
    """The main table: ID accuracy, NLL, ECE, Brier, mean OOD AUROC per score, stability."""
    lines = [
        "| router | " + " | ".join(SUMMARY_COLUMNS) + " |",
        "|" + "---|" * (len(SUMMARY_COLUMNS) + 1),
    ]
    for name, r in results.items():
        lines.append(f"| {name} | " + " | ".join(f"{c:.3f}" for c in summary_row(r)) + " |")
    return "\n".join(lines)


def ci_table(results: dict) -> str:
    """ID metrics with bootstrap 95% CIs and the paired NLL difference to the deterministic one."""
    lines = [
        "| router | acc [95% CI] | NLL [95% CI] | ECE [95% CI] | Brier [95% CI] | "
        "ΔNLL vs det. [95% CI] |",
        "|" + "---|" * 6,
    ]
    for name, r in results.items():
        i, cells = r["id"], []
        for k in ("acc", "nll", "ece", "brier"):
            lo, hi = i.get(f"{k}_ci", (float("nan"), float("nan")))
            cells.append(f"{i[k]:.3f} [{lo:.3f}, {hi:.3f}]")
        d = r.get("vs_deterministic", {}).get("nll")
        cells.append(f"{d['diff']:+.3f} [{d['lo']:+.3f}, {d['hi']:+.3f}]" if d else "-")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def per_set_tables(results: dict) -> str:
    """One OOD table per set: accuracy and AUROC of each score, per router."""
    sets = sorted({k for r in results.values() for k in r if ":" in k})
    blocks = []
    for s in sets:
        scores = sorted(
            {k for r in results.values() for k in r.get(s, {}) if k.startswith("auroc_")}
        )
        rows = [
            f"### {s}",
            "",
            "| router | acc | " + " | ".join(scores) + " |",
            "|" + "---|" * (len(scores) + 2),
        ]
        for name, r in results.items():
            v = r.get(s, {})
            rows.append(
                f"| {name} | {v.get('acc', float('nan')):.3f} | "
                + " | ".join(f"{v.get(k, float('nan')):.3f}" for k in scores)
                + " |"
            )
        blocks.append("\n".join(rows))
    return "\n\n".join(blocks)


ROUTING_SCORES = ("auroc_routing_entropy", "auroc_mutual_information", "auroc_ilv")


def direction_notes(results: dict) -> str:
    """Name the routing-level scores whose mean OOD AUROC is below 0.5 (inverted direction).

    Every score is read as "higher = more OOD"; a mean AUROC below 0.5 means the score is
    *lower* on the OOD sets, i.e. the router is more certain there than in distribution.
    """
    lines = []
    for name, r in results.items():
        for key in ROUTING_SCORES:
            m = mean_over_ood(r, key)
            if not math.isnan(m):
                word = "inverted (lower on OOD)" if m < 0.5 else "as expected (higher on OOD)"
                lines.append(f"- {name}, {key.removeprefix('auroc_')}: mean AUROC {m:.3f}, {word}")
    if not lines:
        return "No routing-level scores (deterministic routers only)."
    return "Routing-level scores, read as higher = more OOD:\n\n" + "\n".join(lines)


def prediction_text(meta: dict) -> str:
    """How the VMoER routers predicted: Monte Carlo (the paper's) or the closed form."""
    if meta.get("predict_mode", "mc") == "analytic":
        return f"closed-form routing probabilities ({meta.get('link')} link)"
    return "Monte Carlo over S routing draws"


def fit_curves_text(out: Path) -> str:
    """Links to the SVI curves: the fit's PNGs and, when logged, the TensorBoard directory."""
    pngs = sorted(p.name for p in (out / "plots").glob("fit_*.png"))
    lines = ["### SVI curves (NLL, KL and log σ/s per router, |Δμ|/s, overlap, gradient norm)"]
    lines += [f"\n![{p}](plots/{p})\n" for p in pngs] or ["\nnone recorded\n"]
    if (out / "logs").is_dir():
        lines.append(f"Per-step curves in TensorBoard: `tensorboard --logdir {out / 'logs'}`\n")
    return "\n".join(lines)


def stability_text(results: dict) -> str:
    """The report's stability section: :func:`run_stability_table` and how to read it."""
    table = run_stability_table(results)
    if not table:
        return "Not measured (`--stability-questions 0`)."
    return (
        "Noise γ × the mean embedding norm. Each router is routed as its answers were predicted, "
        "with fresh draws on the noisy side where it draws (its own MC variability included; the "
        "summary's column too); its ', same draws' row reuses the clean run's draws (the input "
        f"noise alone). {SELF_AGREEMENT}: two clean runs, different draws (1 where nothing is "
        "drawn).\n\n" + table
    )


def write_run(out: Path, meta: dict, results: dict) -> None:
    """Write metrics.json and report.md into the run directory ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "metrics.json", json.dumps({"meta": meta, "results": results}, indent=2))
    plots = "".join(f"\n![{p}](plots/{p})\n" for p in meta.get("plots", []))
    report = [
        "# vmoer run report",
        "",
        f"Model: `{meta['model']}`; scorer: {meta['scorer']}; ID set: **{meta['id_set']}**; "
        f"Bayesian routers: {meta['layers']}; S = {meta['num_samples']}; "
        f"prediction: {prediction_text(meta)}.",
        "",
        f"Sizes: {meta['sizes']}",
        "",
        f"Computed on: {machine_label(meta) or 'not recorded'}.",
        "",
        regime_text(meta.get("regime")),
        "",
        "## Summary",
        "",
        summary_table(results),
        "",
        "## ID metrics with 95% bootstrap CIs",
        "",
        ci_table(results),
        "",
        "## Per OOD set (AUROC; AUPRC and FPR@95%TPR in metrics.json)",
        "",
        per_set_tables(results),
        "",
        "Answer-level scores are normalised for the option count (entropy / log C, "
        f"(1 − max p) / (1 − 1/C)); option counts per set: {meta.get('option_counts', {})}.",
        "",
        direction_notes(results),
        "",
        "## OOD AUROC at equal prompt length",
        "",
        length_table(results) or "Not measured (no prompt lengths in the data).",
        "",
        "## Routing stability (mean Jaccard of top-K sets, clean vs noisy input)",
        "",
        stability_text(results),
        "",
        "## Plots",
        plots,
        fit_curves_text(out),
        f"Timings (s): {json.dumps({k: round(v, 1) for k, v in meta['timings'].items()})}",
        "",
    ]
    write_text(out / "report.md", "\n".join(report))
