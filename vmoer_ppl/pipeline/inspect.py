"""``vmoer inspect RUN_DIR``: export each fitted router to ArviZ, compare by LOO, plot.

Writes ``posteriors/<family>.nc`` (the DataTree), ``loo.md`` (PSIS-LOO comparison with Pareto-k
shares) and PNGs under ``plots/``: ``inspect_scale_forest_<family>.png`` (per-layer posterior
spread), ``inspect_temperature_<family>.png`` (temperature families), ``inspect_ppc.png``
(posterior predictive check of the answer distribution), ``inspect_routing_entropy.png``.
"""

from __future__ import annotations

import contextlib
import json
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import xarray as xr

from vmoer_ppl.data.tensors import first_rows, inputs_of
from vmoer_ppl.diagnostics.export import save_datatree, to_datatree
from vmoer_ppl.diagnostics.loo import loo_compare, loo_markdown
from vmoer_ppl.infer.predictive import predict, routing_key
from vmoer_ppl.nn.masks import last_token_index
from vmoer_ppl.pipeline.backbone import adapted, suffix_data
from vmoer_ppl.pipeline.config import FitConfig
from vmoer_ppl.pipeline.loading import load_model
from vmoer_ppl.pipeline.run_data import encode_sets
from vmoer_ppl.pipeline.run_dir import FIT_FILE, strip
from vmoer_ppl.pretrained import from_pretrained
from vmoer_ppl.safe_files import run_lock, save_figure, write_text


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


@contextlib.contextmanager
def quiet_arviz_plots() -> Iterator[None]:
    """ArviZ 0.23's plots call a matplotlib 3.11 deprecated helper: silence that warning only."""
    from matplotlib import MatplotlibDeprecationWarning

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=MatplotlibDeprecationWarning)
        yield


def spread(tree: xr.DataTree) -> xr.Dataset:
    """Per-layer posterior spread: mean |draw - posterior mean| `(chain, draw, layer)`."""
    post = tree["posterior"].ds
    out = {}
    for name, v in post.data_vars.items():
        if name == "gumbel":  # q(g) = p(g): no posterior information
            continue
        dev = abs(v - v.mean(("chain", "draw")))
        out[f"{name}_spread"] = dev.mean([d for d in v.dims if d not in ("chain", "draw", "layer")])
    return xr.Dataset(out)


def plot_tree(tree: xr.DataTree, family: str, plots: Path) -> list[str]:
    """Forest of per-layer spread and, for temperature families, temperature posteriors."""
    import arviz as az

    plt, names = _plt(), []
    ds = spread(tree)
    with quiet_arviz_plots():
        axes = az.plot_forest(ds, combined=True, figsize=(6, 1 + 0.4 * ds.sizes["layer"]))
    axes[0].set_title(f"{family}: posterior spread per layer")
    names.append(f"inspect_scale_forest_{family}.png")
    save_figure(axes[0].figure, plots / names[-1], dpi=100, bbox_inches="tight")
    plt.close("all")
    if "temperature" in tree["posterior"].ds:
        t = tree["posterior"].ds["temperature"]
        t = t.mean([d for d in t.dims if d not in ("chain", "draw", "layer")])
        with quiet_arviz_plots():
            axes = az.plot_posterior(t, figsize=(3 * t.sizes["layer"], 2.5))
        names.append(f"inspect_temperature_{family}.png")
        save_figure(np.ravel(axes)[0].figure, plots / names[-1], dpi=100, bbox_inches="tight")
        plt.close("all")
    return names


def plot_ppc(trees: dict, plots: Path) -> str:
    """Answer-position frequencies: observed vs posterior predictive (mean, 5-95% over draws)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3))
    first = next(iter(trees.values()))
    obs = first["observed_data"].ds["answer"].values
    C = int(max(obs.max(), *(t["posterior_predictive"].ds["answer"].max() for t in trees.values())))
    bins = np.arange(C + 2) - 0.5
    ax.hist(obs, bins=bins, histtype="step", color="k", lw=2, label="observed")
    for i, (name, t) in enumerate(trees.items()):
        pp = t["posterior_predictive"].ds["answer"].values.reshape(-1, len(obs))
        counts = np.stack([np.histogram(d, bins=bins)[0] for d in pp])
        x = np.arange(C + 1) + 0.15 * (i - len(trees) / 2)
        lo, hi = np.percentile(counts, [5, 95], axis=0)
        mean = counts.mean(0)
        ax.errorbar(x, mean, yerr=[mean - lo, hi - mean], fmt="o", label=name)
    ax.set(xlabel="answer option", ylabel="questions", title="posterior predictive check")
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, plots / "inspect_ppc.png", dpi=100)
    plt.close(fig)
    return "inspect_ppc.png"


@torch.no_grad()
def routing_entropy(model, guide, data: dict, num_samples: int) -> np.ndarray:
    """MC routing entropy at the last prompt token, `(L, N)` per Bayesian layer."""
    out = predict(model, guide, mode="mc", num_samples=num_samples, **data)
    first = model.context(model.net_inputs(**inputs_of(data))).first
    rows, last = torch.arange(first.mask.shape[0]), last_token_index(first.mask)
    keys = [routing_key(s, first.name) for s in model.sites]
    return torch.stack([out.routing[k].entropy[rows, last] for k in keys]).numpy()


def inspect_run(
    run_dir: str | Path, *, num_draws: int = 100, n_questions: int = 30, num_samples: int = 35
) -> dict:
    """Export, compare and plot every family of a fitted run (see the module docstring).

    Parameters
    ----------
    run_dir : str or Path
        A directory written by ``vmoer fit`` / ``vmoer demo``.
    num_draws : int
        Joint posterior draws per family.
    n_questions : int
        Validation questions exported (the LOO data).
    num_samples : int
        S of the routing-entropy pass.

    Returns
    -------
    dict
        ``loo`` (see :func:`loo_compare`), ``posteriors`` and ``plots`` (paths).
    """
    with run_lock(run_dir, "inspect"):
        return inspect_locked(Path(run_dir), num_draws, n_questions, num_samples)


def inspect_locked(out: Path, num_draws: int, n_questions: int, num_samples: int) -> dict:
    """The body of :func:`inspect_run` while the run directory is locked."""
    cfg = FitConfig.load(out)
    if not (out / FIT_FILE).exists():
        raise FileNotFoundError(f"{out}: the fit did not finish; run `vmoer fit` again first")
    fit = json.loads((out / FIT_FILE).read_text())
    net, tok, _ = load_model(cfg)
    net = adapted(cfg, out, net, tok)
    enc, _, _ = encode_sets(cfg, tok)
    guides = {f: from_pretrained(net, out / "adapters" / f) for f in cfg.families}
    head = next(iter(guides.values()))[0].net
    val = {"val": enc["val"]}
    data = strip(suffix_data(head, val, net)["val"])
    data = first_rows(data, n_questions)
    plots, post_dir = out / "plots", out / "posteriors"
    plots.mkdir(exist_ok=True)
    trees, names, posteriors, entropies = {}, [], {}, {}
    for family, (model, guide) in guides.items():
        losses = fit["families"][family]["losses"]
        trees[family] = to_datatree(model, guide, data, num_draws=num_draws, losses=losses)
        posteriors[family] = str(save_datatree(trees[family], post_dir / f"{family}.nc"))
        names += plot_tree(trees[family], family, plots)
        entropies[family] = routing_entropy(model, guide, data, num_samples)
    names.append(plot_ppc(trees, plots))
    names.append(plot_entropy(entropies, [s.name for s in model.sites], plots))
    loo = loo_compare(trees)
    title = "# PSIS-LOO comparison (validation questions)\n\n"
    write_text(out / "loo.md", title + loo_markdown(loo) + "\n")
    return {"loo": loo, "posteriors": posteriors, "plots": [str(plots / n) for n in names]}


def plot_entropy(entropies: dict, layers: list[str], plots: Path) -> str:
    """Routing entropy per Bayesian layer (box per layer, one colour per family)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(1.5 + 1.2 * len(layers), 3))
    width = 0.8 / len(entropies)
    for i, (family, e) in enumerate(entropies.items()):
        pos = np.arange(len(layers)) + i * width
        ax.boxplot(list(e), positions=pos, widths=width * 0.9, showfliers=False)
        ax.plot([], [], label=family)
    ax.set_xticks(np.arange(len(layers)) + 0.4 - width / 2, [n.split(".")[-3] for n in layers])
    ax.set(xlabel="Bayesian layer", ylabel="routing entropy (nats)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, plots / "inspect_routing_entropy.png", dpi=100)
    plt.close(fig)
    return "inspect_routing_entropy.png"
