"""One dense FFN split into a shared expert, routed experts and a decisive router (MoEfication).

Per MoE layer, on the dense model's own activations: the S most used neurons form the shared
expert, the rest are grouped into E experts by co-activation, a router learns which K experts
contribute most, its scale is fitted by held-out likelihood, and the down projections are
refitted by least squares for that routing. The first 80 % of the tokens fit, the last 20 %
are held out for the scale and for the reported errors and routing statistics.
"""

from __future__ import annotations

import math

import torch
from tqdm.auto import tqdm

from vmoer_ppl.embedded.clustering import split_neurons
from vmoer_ppl.embedded.convert import MoELayer
from vmoer_ppl.embedded.routers import (
    expert_outputs,
    fit_scale,
    refit_down,
    relative_error,
    routed_output,
    routing_stats,
    train_router,
)

FIT_SHARE = 0.8  # fraction of the tokens that fit; the rest are held out


def block_error(a: dict, layer: MoELayer, down: torch.Tensor, dense_out, top_k: int) -> float:
    """Relative error of the MoE block `(N, D)` against the dense MLP output on tokens ``a``."""
    x, h = a["x"], a["h"]
    shared = h[:, layer.shared] @ down[:, layer.shared].T  # (N, D)
    routed = routed_output(x, layer.router, expert_outputs(h, down, layer.groups), top_k)
    return relative_error(shared + routed, dense_out)


def moefy_layer(i: int, mlp, a: dict, cfg) -> tuple[MoELayer, dict]:
    """Split one dense MLP; its :class:`MoELayer` and a report row.

    Parameters
    ----------
    i : int
        Layer index (seeds the clustering).
    mlp : nn.Module
        The dense SwiGLU MLP (``gate_proj``, ``up_proj``, ``down_proj``).
    a : dict
        ``{"x": (N, D), "h": (N, F)}`` activations of this layer.
    cfg : EmbeddedConfig
        Build settings (E, K, S, steps, refit).

    Returns
    -------
    tuple
        The layer's split and its report: scale, held-out listwise NLL, held-out block errors
        (routed as is, and refitted) and the router's :func:`routing_stats` on held-out tokens.
    """
    down0 = mlp.down_proj.weight.detach()  # (D, F)
    groups, shared = split_neurons(
        a["h"],
        down0,
        cfg.num_experts,
        cfg.shared_neurons,
        iters=cfg.kmeans_iters,
        seed=cfg.seed + i,
    )
    n = int(FIT_SHARE * len(a["x"]))
    fit = {k: v[:n] for k, v in a.items()}
    held = {k: v[n:] for k, v in a.items()}
    contrib = expert_outputs(a["h"], down0, groups).norm(dim=-1)  # (N, E)
    w = train_router(fit["x"], contrib[:n], cfg.top_k, steps=cfg.router_steps, seed=cfg.seed)
    alpha, nll = fit_scale(w, held["x"], contrib[n:], cfg.top_k)
    layer = MoELayer(groups, shared, alpha * w)
    dense_out = a["h"] @ down0.T  # (N, D)
    row = {
        "layer": i,
        "alpha": alpha,
        "heldout_topk_nll": nll,
        "heldout_topk_nll_uniform": math.log(cfg.num_experts),
        "held_out_relative_error": block_error(held, layer, down0, dense_out[n:], cfg.top_k),
        **routing_stats(held["x"] @ layer.router.T, cfg.top_k),
    }
    if cfg.refit_down:
        layer.down = refit_down(
            fit["x"], fit["h"], layer.router, groups, shared, dense_out[:n], cfg.top_k
        )
        row["held_out_relative_error_refit"] = block_error(
            held, layer, layer.down, dense_out[n:], cfg.top_k
        )
    return layer, row


def moefy_layers(dense, acts, cfg) -> tuple[dict[int, MoELayer], list[dict]]:
    """Split every layer that ``acts`` yields activations for.

    ``acts`` yields ``(i, {"x": (N, D), "h": (N, F)})`` in layer order; each is dropped before
    the next is read, so a lazy source keeps one layer's activations in memory.

    Returns
    -------
    tuple
        ``{layer index: MoELayer}`` and one report row per layer.
    """
    layers, report = {}, []
    for i, a in tqdm(acts, total=cfg.moe_layers, desc="experts"):
        layers[i], row = moefy_layer(i, dense.model.layers[i].mlp, a, cfg)
        del a  # before the next layer's activations are computed
        report.append(row)
    return layers, report
