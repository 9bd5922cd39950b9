"""Run directories: config.json, metrics.json and a report.md with one table per data set."""

from __future__ import annotations

import json
from pathlib import Path


def _mean_auroc(r: dict, key: str) -> float:
    ood = [v for k, v in r.items() if ":" in k and key in v]
    return sum(o[key] for o in ood) / len(ood) if ood else float("nan")


def summary_table(results: dict) -> str:
    """The main table: ID accuracy, NLL, ECE, Brier and the mean OOD AUROC per score."""
    head = "| router | ID acc | ID NLL | ID ECE | ID Brier | OOD AUROC (entropy) | OOD AUROC (MI) |"
    lines = [head, "|" + "---|" * 7]
    for name, r in results.items():
        i = r["id"]
        cells = [i["acc"], i["nll"], i["ece"], i["brier"]]
        cells += [
            _mean_auroc(r, "auroc_answer_entropy"),
            _mean_auroc(r, "auroc_mutual_information"),
        ]
        lines.append(f"| {name} | " + " | ".join(f"{c:.3f}" for c in cells) + " |")
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


def write_run(out: Path, meta: dict, results: dict) -> None:
    """Write metrics.json and report.md into the run directory ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    plots = "".join(f"\n![{p}](plots/{p})\n" for p in meta.get("plots", []))
    report = [
        "# vmoer run report",
        "",
        f"Model: `{meta['model']}`; scorer: {meta['scorer']}; ID set: **{meta['id_set']}**; "
        f"Bayesian routers: {meta['layers']}; S = {meta['num_samples']}.",
        "",
        f"Sizes: {meta['sizes']}",
        "",
        "## Summary",
        "",
        summary_table(results),
        "",
        "## Per OOD set",
        "",
        per_set_tables(results),
        "",
        "## Plots",
        plots,
        f"Timings (s): {json.dumps({k: round(v, 1) for k, v in meta['timings'].items()})}",
        "",
    ]
    (out / "report.md").write_text("\n".join(report))
