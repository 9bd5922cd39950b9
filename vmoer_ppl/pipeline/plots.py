"""PNG plots of a run: reliability diagrams (ID) and OOD ROC curves, with matplotlib (Agg)."""

from __future__ import annotations

from pathlib import Path

import torch

from vmoer_ppl.evaluation.calibration import reliability_data
from vmoer_ppl.evaluation.detection import roc_curve


def plot_reliability(outputs: dict, labels: torch.Tensor, path: Path) -> Path:
    """One reliability diagram per router (panels side by side)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(outputs), figsize=(3.2 * len(outputs), 3.2), squeeze=False)
    for ax, (name, out) in zip(axes[0], outputs.items(), strict=True):
        acc = torch.tensor(reliability_data(out["probs"], labels)["accuracy"]).nan_to_num(0)
        centres = ((torch.arange(10) + 0.5) / 10).numpy()
        ax.bar(
            centres,
            acc.numpy(),
            width=0.1,
            edgecolor="k",
            alpha=0.7,
            label="accuracy",
        )
        ax.plot([0, 1], [0, 1], "k--", lw=1)
        ax.set(title=name, xlabel="confidence", xlim=(0, 1), ylim=(0, 1))
    axes[0][0].set_ylabel("accuracy")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_roc(id_out: dict, ood_outs: dict, router: str, path: Path) -> Path:
    """ROC curves of every score, one panel per OOD set, for one router."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(ood_outs), figsize=(3.2 * len(ood_outs), 3.2), squeeze=False)
    for ax, (name, ood) in zip(axes[0], ood_outs.items(), strict=True):
        for score in ("answer_entropy", "routing_entropy", "mutual_information", "ilv"):
            if score in id_out and score in ood:
                s = torch.cat([id_out[score], ood[score]])
                y = torch.cat([torch.zeros(len(id_out[score])), torch.ones(len(ood[score]))])
                fpr, tpr = roc_curve(s, y.bool())
                ax.plot(fpr.numpy(), tpr.numpy(), label=score)
        ax.plot([0, 1], [0, 1], "k:", lw=1)
        ax.set(title=f"{router}: {name}", xlabel="FPR", ylabel="TPR")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_risk_coverage(outputs: dict, labels: torch.Tensor, path: Path) -> Path:
    """Selective risk vs coverage (sorted by max probability), one curve per router."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from vmoer_ppl.evaluation.detection import risk_coverage

    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    for name, out in outputs.items():
        cov, risk = risk_coverage(out["probs"], labels)
        ax.plot(cov.numpy(), risk.numpy(), label=name)
    ax.set(xlabel="coverage", ylabel="selective risk (error rate)", title="risk-coverage (ID)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_stability(results: dict, path: Path) -> Path | None:
    """Mean Jaccard of the top-K sets vs noise level gamma, one curve per router."""
    curves = {k: r["stability"] for k, r in results.items() if "stability" in r}
    if not curves:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    for name, st in curves.items():
        ax.plot(st["gamma"], st["overall"], marker="o", label=name)
    ax.set(xscale="log", xlabel="γ (noise / mean embedding norm)", ylabel="mean Jaccard")
    ax.set_title("routing stability")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
