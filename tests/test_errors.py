"""Bad input gets a clear error naming the fix."""

import pytest
import torch

from tests.common import toy_batch, toy_net, toy_pair
from vmoer_ppl import bayesianize, predict
from vmoer_ppl.nn import Router, ToyMoEConfig
from vmoer_ppl.sites import router_grid


def test_k_larger_than_e():
    with pytest.raises(ValueError, match="top_k=5 must be between 1 and num_experts=4"):
        Router(8, 4, 5, "topk-softmax")
    with pytest.raises(ValueError, match="top_k"):
        toy_net(num_experts_per_tok=9)


def test_non_finite_router_inputs():
    model, guide = toy_pair("logit-mf")
    ids, mask, _ = toy_batch()
    with torch.no_grad():
        model.net.embed_tokens.weight[ids[1, 0]] = float("nan")
    with pytest.raises(ValueError, match="layers.0.moe.router: router input contains NaN"):
        predict(model, guide, ids, mask)


def test_router_input_width_mismatch():
    model, _ = toy_pair("logit-mf")
    site = model.sites[0]
    with pytest.raises(ValueError, match=r"width 8 but W_r has shape \(4, 16\)"):
        router_grid(site, torch.randn(1, 2, 8), torch.randn(1, 2, 4), 1, 2)
    with pytest.raises(ValueError, match=r"router saw \(6,\) tokens but the batch is \(1, 2\)"):
        router_grid(site, torch.randn(6, 16), torch.randn(6, 4), 1, 2)


def test_unknown_family_lists_the_known_ones():
    with pytest.raises(
        ValueError, match="known families: 'logit-mf', 'logit-fc', 'logit-lowrank', 'temperature'"
    ):
        bayesianize(toy_net(), family="dirichlet")


@pytest.mark.parametrize("layers", ["last:0", "last:9", "first:2", [5], []])
def test_bad_layer_choice(layers):
    with pytest.raises(ValueError, match="layers"):
        bayesianize(toy_net(), layers=layers)


def test_network_without_routers():
    with pytest.raises(ValueError, match="has no vmoer_ppl Router module"):
        bayesianize(torch.nn.Linear(3, 3))


def test_labels_out_of_range_and_mask_shape():
    model, _ = toy_pair("logit-mf")
    ids, mask, _ = toy_batch()
    with pytest.raises(ValueError, match=r"values in \[0, 4\)"):
        model(ids, mask, torch.tensor([0, 1, 7]))
    with pytest.raises(ValueError, match="attention_mask has shape"):
        model(ids, mask[:, :2])


def test_config_default_is_valid():
    assert ToyMoEConfig().num_experts_per_tok <= ToyMoEConfig().num_local_experts
