"""PNG plots of a run: reliability diagrams (ID) and OOD ROC curves, with matplotlib (Agg)."""

from __future__ import annotations

from pathlib import Path

import torch

from vmoer_ppl.evaluation.calibration import reliability_data
from vmoer_ppl.evaluation.detection import roc_curve
from vmoer_ppl.safe_files import save_figure


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
    save_figure(fig, path, dpi=100)
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
    save_figure(fig, path, dpi=100)
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
    save_figure(fig, path, dpi=100)
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
    save_figure(fig, path, dpi=100)
    plt.close(fig)
    return path


def plot_fit_diagnostics(record: dict, family: str, path: Path) -> Path | None:
    """SVI curves of one family: NLL, per-router KL, log σ/s, |Δμ|/s, overlap, grad norm, lr.

    Parameters
    ----------
    record : dict
        The family's ``fit.json`` entry (``diagnostics`` per step, ``val_history``).
    family : str
        Title.
    path : Path
        PNG to write.

    Returns
    -------
    Path or None
        ``path``, or None when no diagnostics were recorded (reference ELBO path).
    """
    diag = record.get("diagnostics") or []
    if not diag:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    steps = [d["step"] for d in diag]
    routers = list(diag[0]["routers"])
    fig, axes = plt.subplots(2, 4, figsize=(16, 6.5))
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
    fig.tight_layout()
    save_figure(fig, path, dpi=90)
    plt.close(fig)
    return path
