"""Trained routers as an ArviZ DataTree: posterior latents, answers, log-likelihood, ELBO history.

Each posterior draw is one joint draw of every routing latent (``predict(mode="sample")``), so
``log_likelihood`` holds ``log p(y_n | draw s)`` per question: what PSIS-LOO needs. Latents are
read at the last real prompt token of each question (the token whose routing decides the answer
in the letter format, and the one the uncertainty signals use). Dims come from the project's
vocabulary: ``chain``/``draw`` (ArviZ's sample dims), ``layer``, ``question``, ``expert``,
``option``, ``step``; coordinates are router names, question indices and expert ids.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
import xarray as xr
from tqdm.auto import tqdm

from vmoer_ppl.data.tensors import batches, inputs_of, length_order, unsort
from vmoer_ppl.infer.predictive import predict, routing_key
from vmoer_ppl.nn.masks import last_token_index
from vmoer_ppl.safe_files import atomic_write


def _latents_at_last(model, out, first) -> dict[str, torch.Tensor]:
    """Each latent at the last prompt token, stacked over Bayesian layers: `(L, B, ...)`."""
    grid, ctx_mask = first.name, first.mask
    rows = torch.arange(ctx_mask.shape[0])
    last = last_token_index(ctx_mask)
    per_latent: dict[str, list] = {}
    for site in model.sites:
        draws = out.routing[routing_key(site, grid)].draws
        for name, v in draws.items():
            v = v[0]  # one draw per call
            if v.dim() >= 2 and v.shape[:2] == ctx_mask.shape:  # per token: (B, T, ...)
                v = v[rows, last]
            else:  # global: broadcast over questions
                v = v.expand(len(rows), *v.shape)
            per_latent.setdefault(name, []).append(v)
    return {k: torch.stack(v) for k, v in per_latent.items()}


def _one_draw(model, guide, inputs, labels, order, batch_size: int, gen):
    """One joint posterior draw over all questions: log-lik `(N,)`, answers `(N,)`, latents."""
    ll, ans, lat = [], [], []
    for b, y in zip(
        batches(inputs, batch_size, order), labels[order].split(batch_size), strict=True
    ):
        out = predict(model, guide, mode="sample", num_samples=1, keep_draws=True, **b)
        ctx = model.context(model.net_inputs(**b)).first
        ll.append(out.probs.gather(-1, y[:, None]).squeeze(-1).clamp_min(1e-30).log())
        ans.append(torch.multinomial(out.probs.double(), 1, generator=gen).squeeze(-1))
        lat.append(_latents_at_last(model, out, ctx))
    latents = {k: unsort(torch.cat([x[k] for x in lat], 1), order, 1) for k in lat[0]}
    return unsort(torch.cat(ll), order), unsort(torch.cat(ans), order), latents


def _posterior_arrays(latents: list[dict], experts: int) -> tuple[dict, dict]:
    """``(posterior, dims)`` for ArviZ: `(1, S, layer, question, ...)` arrays per latent."""
    posterior, dims = {}, {"answer": ["question"]}
    for name in latents[0]:
        arr = torch.stack([d[name] for d in latents]).float().numpy()[None]  # (1, S, L, N, ...)
        extra = arr.shape[4:]
        if extra and extra[-1] == experts:
            tail = ["expert"]
        elif extra == (1,):
            arr, tail = arr[..., 0], []
        else:
            tail = [f"{name}_component"] if extra else []
        posterior[name] = arr
        dims[name] = ["layer", "question", *tail]
    return posterior, dims


@torch.no_grad()
def to_datatree(
    model,
    guide,
    data: Mapping[str, torch.Tensor],
    *,
    num_draws: int = 20,
    batch_size: int = 16,
    losses: Sequence[float] | None = None,
    seed: int = 0,
    progress: bool = True,
) -> xr.DataTree:
    """Export a trained router to an ArviZ-ready DataTree.

    Parameters
    ----------
    model : RouterModel
        The Bayesian router model.
    guide : RouterGuide
        Its trained guide.
    data : mapping of str to torch.Tensor
        N questions: the network's inputs and ``labels`` `(N,)`.
    num_draws : int
        S, joint posterior draws (one network pass each).
    batch_size : int
        Questions per pass.
    losses : sequence of float, optional
        The SVI loss per step (``SVIResult.losses``): ``sample_stats.loss`` with dim ``step``.
    seed : int
        Seed of the draws.
    progress : bool
        Show a tqdm bar over the draws.

    Returns
    -------
    xarray.DataTree
        Groups ``posterior`` (one variable per latent, e.g. ``logits`` `(chain, draw, layer,
        question, expert)`), ``posterior_predictive`` and ``log_likelihood`` (``answer``
        `(chain, draw, question)`), ``observed_data`` (``answer`` `(question)`) and
        ``sample_stats`` (``loss`` `(step)`).
    """
    import arviz as az

    labels = data["labels"]
    inputs, order = inputs_of(data), length_order(data)
    gen = torch.Generator().manual_seed(seed)
    loglik, answers, latents = [], [], []
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        for _ in tqdm(range(num_draws), desc="posterior draws", disable=not progress):
            ll, ans, lat = _one_draw(model, guide, inputs, labels, order, batch_size, gen)
            loglik.append(ll)
            answers.append(ans)
            latents.append(lat)
    n, layers = len(labels), [s.name for s in model.sites]
    experts = model.sites[0].num_experts
    posterior, dims = _posterior_arrays(latents, experts)
    idata = az.from_dict(
        posterior=posterior,
        posterior_predictive={"answer": torch.stack(answers).numpy()[None]},
        log_likelihood={"answer": torch.stack(loglik).double().numpy()[None]},
        observed_data={"answer": labels.numpy()},
        dims=dims,
        coords={"layer": layers, "question": np.arange(n), "expert": np.arange(experts)},
    )
    tree = idata.to_datatree()
    if losses is not None:
        stats = xr.Dataset({"loss": ("step", np.asarray(losses, dtype=float))})
        tree["sample_stats"] = xr.DataTree(stats.assign_coords(step=np.arange(len(losses))))
    return tree


def save_datatree(tree: xr.DataTree, path: str | Path) -> Path:
    """Write a DataTree to netCDF (one group per ArviZ group)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, lambda tmp: tree.to_netcdf(tmp, engine="h5netcdf"))


def load_datatree(path: str | Path) -> xr.DataTree:
    """Read a DataTree written by :func:`save_datatree` (loaded into memory, file closed)."""
    with xr.open_datatree(path, engine="h5netcdf") as tree:
        return tree.load()
