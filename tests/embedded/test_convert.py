"""MoEfication on a tiny random Llama through the same conversion code as the embedded build."""

import pytest
import torch
from transformers import AutoModelForCausalLM, LlamaConfig

from tests.integrations.tiny_hf import COMMON
from vmoer_ppl import bayesianize, predict
from vmoer_ppl.embedded.build import EmbeddedConfig, moefy_layers
from vmoer_ppl.embedded.clustering import balanced_assign, cluster_neurons
from vmoer_ppl.embedded.convert import dense_to_mixtral
from vmoer_ppl.embedded.routers import expert_outputs, refit_down, relative_error, routed_output


def tiny_llama():
    torch.manual_seed(0)
    cfg = LlamaConfig(**{**COMMON, "intermediate_size": 64, "num_hidden_layers": 2})
    return AutoModelForCausalLM.from_config(cfg, dtype=torch.float32).eval()


def activations(dense, n=256):
    out = []
    for layer in dense.model.layers:
        x = torch.randn(n, 32, dtype=torch.float32)
        with torch.no_grad():
            h = layer.mlp.act_fn(layer.mlp.gate_proj(x)) * layer.mlp.up_proj(x)
        out.append({"x": x, "h": h})
    return out


def test_all_experts_with_a_uniform_router_reproduce_the_dense_model():
    dense, E = tiny_llama(), 4
    groups = [cluster_neurons(a["h"], E, seed=i) for i, a in enumerate(activations(dense))]
    zero = [torch.zeros(E, 32) for _ in groups]  # uniform router: every gate value 1/E
    moe = dense_to_mixtral(dense, groups, zero, top_k=E)
    ids = torch.randint(3, 64, (2, 9))
    with torch.no_grad():
        torch.testing.assert_close(moe(ids).logits, dense(ids).logits, atol=1e-5, rtol=1e-5)


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
    dense = tiny_llama()
    cfg = EmbeddedConfig(num_experts=4, top_k=2, router_steps=20, kmeans_iters=3)
    groups, routers, downs, report = moefy_layers(dense, activations(dense), cfg)
    assert len(report) == 2 and all(r["alpha"] > 0 for r in report)
    assert all("held_out_relative_error_refit" in r for r in report)
    moe = dense_to_mixtral(dense, groups, routers, top_k=2, downs=downs)
    assert moe.config.model_type == "mixtral" and moe.config.num_experts_per_tok == 2
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
    g = cluster_neurons(a["h"], 4)
    w = torch.randn(4, 32, dtype=torch.float32)
    y = layer.down_proj(a["h"]).detach()  # (N, D) dense output

    def error(down):
        return relative_error(routed_output(a["x"], w, expert_outputs(a["h"], down, g), 2), y)

    refit = refit_down(a["x"], a["h"], w, g, y, 2, ridge=1e-8)
    raw = layer.down_proj.weight.detach()
    assert error(refit) < error(raw)
    for _ in range(3):  # and no nearby down projection does better
        assert error(refit) <= error(refit + 1e-2 * torch.randn_like(refit)) + 1e-6
