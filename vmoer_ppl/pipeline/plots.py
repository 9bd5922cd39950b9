"""Plots of a run: reliability (with counts), ROC, risk-coverage, stability, SVI curves.

Every function builds a :class:`matplotlib.figure.Figure` with the object-oriented API (no
pyplot state, no backend switch, so a notebook's backend is left alone) and returns it, so that
notebook users can restyle it; with ``path`` it is also written (atomically) as a PNG.
"""

from __future__ import annotations

from pathlib import Path

import torch
from matplotlib.figure import Figure

from vmoer_ppl.evaluation.calibration import adaptive_ece, reliability_data
from vmoer_ppl.evaluation.detection import ood_scored, roc_curve
from vmoer_ppl.safe_files import save_figure

#: Markers of successive curves, so that identical curves stay distinguishable.
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def _finish(fig: Figure, path: Path | None, dpi: int = 100) -> Figure:
    fig.tight_layout()
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        save_figure(fig, path, dpi=dpi)
    return fig


def plot_reliability(outputs: dict, labels: torch.Tensor, path: Path | None = None) -> Figure:
    """Reliability diagram per router, with each bin's question count and a confidence histogram.

    Parameters
    ----------
    outputs : dict
        Router name -> ``{"probs": (N, C)}``.
    labels : torch.Tensor
        `(N,)` answers.
    path : Path, optional
        PNG to write.

    Returns
    -------
    matplotlib.figure.Figure
        Two rows: accuracy per confidence bin (bars labelled with their counts; the title holds
        the adaptive ECE reported in the metrics), and the number of questions per bin.
    """
    n = len(outputs)
    fig = Figure(figsize=(3.2 * n, 4.4))
    axes = fig.subplots(2, n, squeeze=False, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    centres = ((torch.arange(10) + 0.5) / 10).numpy()
    for j, (name, out) in enumerate(outputs.items()):
        data = reliability_data(out["probs"], labels)
        acc = torch.tensor(data["accuracy"]).nan_to_num(0).numpy()
        count = data["count"]
        top, bottom = axes[0][j], axes[1][j]
        bars = top.bar(centres, acc, width=0.1, edgecolor="k", alpha=0.7)
        top.bar_label(bars, labels=[str(c) if c else "" for c in count], fontsize=6, padding=1)
        top.plot([0, 1], [0, 1], "k--", lw=1)
        ece = adaptive_ece(out["probs"], labels)
        top.set(title=f"{name}\nECE {ece:.3f}", xlim=(0, 1), ylim=(0, 1.08))
        bottom.bar(centres, count, width=0.1, color="grey", edgecolor="k")
        bottom.set(xlabel="confidence", xlim=(0, 1))
    axes[0][0].set_ylabel("accuracy (n per bar)")
    axes[1][0].set_ylabel("questions")
    return _finish(fig, path)


def plot_roc(id_out: dict, ood_outs: dict, router: str, path: Path | None = None) -> Figure:
    """ROC curves of every score, one panel per OOD set, for one router."""
    fig = Figure(figsize=(3.2 * len(ood_outs), 3.2))
    axes = fig.subplots(1, len(ood_outs), squeeze=False)
    for ax, (name, ood) in zip(axes[0], ood_outs.items(), strict=True):
        for score in ("answer_entropy", "routing_entropy", "mutual_information", "ilv"):
            if score in id_out and score in ood:
                fpr, tpr = roc_curve(*ood_scored(id_out[score], ood[score]))
                ax.plot(fpr.numpy(), tpr.numpy(), label=score)
        ax.plot([0, 1], [0, 1], "k:", lw=1)
        ax.set(title=f"{router}: {name}", xlabel="FPR", ylabel="TPR")
    axes[0][0].legend(fontsize=7)
    return _finish(fig, path)


def plot_risk_coverage(outputs: dict, labels: torch.Tensor, path: Path | None = None) -> Figure:
    """Selective risk vs coverage (sorted by max probability), one curve per router."""
    from vmoer_ppl.evaluation.detection import risk_coverage

    fig = Figure(figsize=(4.5, 3.2))
    ax = fig.subplots()
    for name, out in outputs.items():
        cov, risk = risk_coverage(out["probs"], labels)
        ax.plot(cov.numpy(), risk.numpy(), label=name)
    ax.set(xlabel="coverage", ylabel="selective risk (error rate)", title="risk-coverage (ID)")
    ax.legend(fontsize=7)
    return _finish(fig, path)


def plot_stability(results: dict, path: Path | None = None) -> Figure | None:
    """Mean Jaccard of the top-K sets vs noise level γ, one curve per router.

    Curves get distinct markers and a small horizontal offset each (×1.04 per curve on the log
    axis), so identical curves (the temperature router samples on top of the deterministic
    routing) stay visible. None when no router has stability results.
    """
    curves = {k: r["stability"] for k, r in results.items() if "stability" in r}
    if not curves:
        return None
    fig = Figure(figsize=(5.0, 3.4))
    ax = fig.subplots()
    for i, (name, st) in enumerate(curves.items()):
        gamma = [g * 1.04**i for g in st["gamma"]]
        ax.plot(gamma, st["overall"], marker=MARKERS[i % len(MARKERS)], ms=5, label=name)
    ax.set(xscale="log", xlabel="γ (noise / mean embedding norm)", ylabel="mean Jaccard")
    ax.set_title("routing stability (markers offset for visibility)", fontsize=9)
    ax.legend(fontsize=7)
    return _finish(fig, path)


def plot_fit_diagnostics(record: dict, family: str, path: Path | None = None) -> Figure | None:
    """SVI curves of one family: NLL, per-router KL, log σ/s, |Δμ|/s, overlap, grad norm, lr.

    Parameters
    ----------
    record : dict
        The family's ``fit.json`` entry (``diagnostics`` per step, ``val_history``).
    family : str
        Title.
    path : Path, optional
        PNG to write.

    Returns
    -------
    matplotlib.figure.Figure or None
        None when no diagnostics were recorded (reference ELBO path).
    """
    diag = record.get("diagnostics") or []
    if not diag:
        return None
    steps = [d["step"] for d in diag]
    routers = list(diag[0]["routers"])
    fig = Figure(figsize=(16, 6.5))
    axes = fig.subplots(2, 4)
    ax = axes[0][0]
    ax.plot(steps, [d["nll"] for d in diag], label="train NLL (batch)")
    if record.get("val_history"):
        vs, vv = zip(*record["val_history"], strict=True)
        ax.plot(vs, vv, "o-", label="val NLL")
    ax.set(title="NLL", xlabel="step")
    ax.legend(fontsize=7)
    panels = [
        (axes[0][1], "kl", "KL per token (nats)"),
        (axes[0][2], "log_sigma_mean", "mean log σ/s (band: ±std)"),
        (axes[0][3], "dmu_over_s", "mean |Δμ|/s"),
        (axes[1][0], "overlap", "top-K overlap with deterministic"),
    ]
    for ax, key, title in panels:
        for r in routers:
            y = [d["routers"][r][key] for d in diag]
            (line,) = ax.plot(steps, y, label=r.split(".")[-3] if r.count(".") >= 3 else r)
            if key == "log_sigma_mean":
                sd = [d["routers"][r]["log_sigma_std"] for d in diag]
                lo = [a - b for a, b in zip(y, sd, strict=True)]
                hi = [a + b for a, b in zip(y, sd, strict=True)]
                ax.fill_between(steps, lo, hi, color=line.get_color(), alpha=0.15)
        ax.set(title=title, xlabel="step")
    axes[1][0].legend(fontsize=6, title="layer", title_fontsize=6)
    axes[1][1].plot(steps, [d["grad_norm"] for d in diag])
    axes[1][1].set(title="gradient norm", xlabel="step", yscale="log")
    axes[1][2].plot(steps, [d["lr"] for d in diag])
    axes[1][2].set(title="learning rate", xlabel="step")
    axes[1][3].plot(steps, [d["loss"] for d in diag])
    axes[1][3].set(title="loss (NLL + β KL)", xlabel="step")
    fig.suptitle(f"SVI of {family}")
    return _finish(fig, path, dpi=90)
