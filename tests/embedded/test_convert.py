"""MoEfication on a tiny random Llama through the same conversion code as the embedded build."""

import math
from dataclasses import replace

import pytest
import torch
from transformers import AutoModelForCausalLM, LlamaConfig

from tests.integrations.tiny_hf import COMMON
from vmoer_ppl import bayesianize, predict
from vmoer_ppl.embedded.build import EmbeddedConfig
from vmoer_ppl.embedded.clustering import balanced_assign, cluster_neurons, split_neurons
from vmoer_ppl.embedded.convert import MoELayer, dense_to_moe, qwen2_moe_config
from vmoer_ppl.embedded.moefy import block_error, moefy_layers
from vmoer_ppl.embedded.routers import fit_scale, listwise_nll, refit_down, routing_stats


def tiny_llama(num_layers=2):
    torch.manual_seed(0)
    cfg = LlamaConfig(**{**COMMON, "intermediate_size": 64, "num_hidden_layers": num_layers})
    return AutoModelForCausalLM.from_config(cfg, dtype=torch.float32).eval()


def activations(dense, n=256):
    out = []
    for layer in dense.model.layers:
        x = torch.randn(n, 32, dtype=torch.float32)
        with torch.no_grad():
            h = layer.mlp.act_fn(layer.mlp.gate_proj(x)) * layer.mlp.up_proj(x)
        out.append({"x": x, "h": h})
    return out


def uniform_split(dense, E, S, layers):
    """Each MoE layer: S shared neurons, the rest in E groups, a zero (uniform) router."""
    out = {}
    for i in layers:
        a = activations(dense)[i]
        groups, shared = split_neurons(a["h"], dense.model.layers[i].mlp.down_proj.weight, E, S)
        out[i] = MoELayer(groups, shared, torch.zeros(E, 32))
    return out


def test_dense_layers_are_bit_equal_and_all_experts_reproduce_the_dense_model():
    dense, E = tiny_llama(3), 4
    moe = dense_to_moe(dense, uniform_split(dense, E, 16, [2]), top_k=E)
    assert moe.config.model_type == "qwen2_moe" and moe.config.mlp_only_layers == [0, 1]
    assert type(moe.model.layers[1].mlp).__name__ == "Qwen2MoeMLP"
    ids = torch.randint(3, 64, (2, 9))
    with torch.no_grad():
        got, want = moe(ids, output_hidden_states=True), dense(ids, output_hidden_states=True)
    for layer in range(3):  # states entering layers 0..2: everything below the MoE layer
        torch.testing.assert_close(
            got.hidden_states[layer], want.hidden_states[layer], atol=0, rtol=0
        )
    torch.testing.assert_close(got.logits, want.logits, atol=1e-5, rtol=1e-5)


def test_shared_expert_and_routed_groups_partition_the_neurons():
    dense = tiny_llama()
    a, mlp = activations(dense)[0], dense.model.layers[0].mlp
    groups, shared = split_neurons(a["h"], mlp.down_proj.weight, 4, 16)
    assert groups.shape == (4, 12) and shared.shape == (16,)
    assert sorted(torch.cat([shared, groups.flatten()]).tolist()) == list(range(64))
    use = a["h"].abs().mean(0) * mlp.down_proj.weight.norm(dim=0)
    assert use[shared].min() >= use[groups.flatten()].max()  # the most used neurons are shared
    with pytest.raises(ValueError, match="must divide"):
        qwen2_moe_config(dense.config, [1], 5, 2, 16)


def test_clusters_partition_the_neurons_into_equal_groups():
    h = torch.randn(128, 64, dtype=torch.float32)
    g = cluster_neurons(h, 8)
    assert g.shape == (8, 8)
    assert sorted(g.flatten().tolist()) == list(range(64))
    with pytest.raises(ValueError, match="must divide"):
        cluster_neurons(h, 6)


def test_balanced_assignment_respects_capacity_and_prefers_best_scores():
    scores = torch.tensor([[3.0, 0.0], [2.0, 0.0], [1.0, 0.5], [0.0, 1.0]])
    assert balanced_assign(scores, 2).tolist() == [0, 0, 1, 1]


def test_moefied_model_routes_top_k_and_is_bayesianizable():
    dense = tiny_llama(3)
    cfg = EmbeddedConfig(moe_layers=2, num_experts=4, top_k=2, shared_neurons=16, router_steps=20)
    cfg = replace(cfg, kmeans_iters=3)
    acts = [(i, a) for i, a in enumerate(activations(dense, 512)) if i >= 1]
    layers, report = moefy_layers(dense, iter(acts), cfg)
    assert sorted(layers) == [1, 2] and [r["layer"] for r in report] == [1, 2]
    for r in report:
        assert r["alpha"] > 0 and r["gate_entropy"] <= r["gate_entropy_max"] + 1e-9
        assert math.isfinite(r["held_out_relative_error_refit"])
    moe = dense_to_moe(dense, layers, top_k=2)
    assert moe.config.num_experts_per_tok == 2 and moe.config.mlp_only_layers == [0]
    ids, mask = torch.randint(3, 64, (2, 6)), torch.ones(2, 6, dtype=torch.long)
    with torch.no_grad():
        want = moe(ids).logits[:, -1]
    model, guide = bayesianize(moe, family="logit-fc", layers="last:1")
    torch.testing.assert_close(
        predict(model, guide, ids, mask, mode="mean").logits, want, atol=1e-5, rtol=0
    )


def test_refit_is_the_least_squares_optimum_on_its_fit_tokens():
    dense = tiny_llama()
    a = activations(dense, 1024)[0]
    layer = dense.model.layers[0].mlp
    raw = layer.down_proj.weight.detach()
    g, shared = split_neurons(a["h"], raw, 4, 16)
    w = torch.randn(4, 32, dtype=torch.float32)
    y = layer.down_proj(a["h"]).detach()  # (N, D) dense output

    def error(down):
        return block_error(a, MoELayer(g, shared, w), down, y, 2)

    refit = refit_down(a["x"], a["h"], w, g, shared, y, 2, ridge=1e-8)
    assert error(refit) < error(raw)
    for _ in range(3):  # and no nearby down projection does better
        assert error(refit) <= error(refit + 1e-2 * torch.randn_like(refit)) + 1e-6


def test_router_scale_is_an_interior_likelihood_optimum_and_edges_are_refused():
    torch.manual_seed(0)
    x, w = torch.randn(2000, 8), torch.randn(6, 8)
    noisy = x @ w.T + 2.0 * torch.randn(2000, 6)  # the experts that matter, seen through noise
    alpha, nll = fit_scale(w, x, noisy, 2)
    target = torch.zeros(2000, 6).scatter_(1, noisy.topk(2, -1).indices, 1.0)
    f = lambda a: float(listwise_nll(a * (x @ w.T)[None], target))  # noqa: E731
    assert abs(f(alpha) - nll) < 1e-6
    assert nll < f(alpha * 1.05) and nll < f(alpha / 1.05) and nll < math.log(6)
    with pytest.raises(RuntimeError, match="grid edge"):  # a router that is wrong: alpha -> 0
        fit_scale(w, x, -(x @ w.T), 2)


def test_routing_stats_by_hand():
    logits = torch.tensor([[3.0, 1.0, 0.0, -1.0], [2.0, 2.0, 0.0, 0.0]])
    s = routing_stats(logits, 2)
    assert s["gap_k"] == pytest.approx(1.0)  # gaps 1 and 2; torch's median: the lower middle
    assert s["logit_std"] == pytest.approx(float(logits.std(-1).median()))
    g = torch.softmax(torch.tensor([3.0, 1.0]), -1)
    h0 = float(-(g * g.log()).sum())
    assert s["gate_entropy"] == pytest.approx((h0 + math.log(2)) / 2)
    assert s["gate_entropy_max"] == pytest.approx(math.log(2))
