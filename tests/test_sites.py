"""vmoer_ppl.sites: choosing Bayesian routers, shaping their inputs, installing routing."""

import pytest
import torch

from tests.common import toy_net
from vmoer_ppl.nn.gates import route
from vmoer_ppl.sites import (
    check_router_input,
    current_grid,
    find_routers,
    install_routing,
    router_grid,
    routing_grid,
    select_layers,
)


def test_find_routers_in_module_order_with_their_sizes():
    net = toy_net()
    sites = find_routers(net)
    assert [s.layer for s in sites] == list(range(len(sites)))
    for s in sites:
        assert (s.num_experts, s.hidden_size) == tuple(s.weight.shape)
        assert s.latent("logits") == f"{s.name}.logits"
        assert s.latent("logits", "prompt") == f"{s.name}.prompt.logits"


@pytest.mark.parametrize(
    ("layers", "want"),
    [
        ("all", [0, 1]),
        ("last:1", [1]),
        (0, [0]),
        (-1, [1]),
        ([1, 0, 1], [0, 1]),
        ("0,1", [0, 1]),  # the command line's form of indices
        ("-1", [1]),
        (" 1, 0 ", [0, 1]),
    ],
)
def test_select_layers(layers, want):
    sites = find_routers(toy_net())
    assert [s.layer for s in select_layers(sites, layers)] == want


@pytest.mark.parametrize(
    "layers", ["last:0", "last:9", "first:1", 5, -3, [], "", "0;1", "1,,2", "2", [True], True]
)
def test_select_layers_refuses_with_the_valid_forms(layers):
    sites = find_routers(toy_net())
    with pytest.raises(ValueError, match="last:N|MoE routers|router index"):
        select_layers(sites, layers)


def test_router_grid_reshapes_flat_tokens_and_promotes_to_the_logits_dtype():
    site = find_routers(toy_net())[0]
    u = torch.randn(2 * 3, site.hidden_size, dtype=torch.bfloat16)
    l_det = (u.to(site.weight.dtype) @ site.weight.T).double()
    u2, l2 = router_grid(site, u, l_det, 2, 3)
    assert u2.shape == (2, 3, site.hidden_size) and u2.dtype == torch.float64
    assert l2.shape == (2, 3, site.num_experts)
    with pytest.raises(ValueError, match="same input_ids"):
        router_grid(site, u, l_det, 2, 4)


def test_check_router_input_names_width_and_non_finite_inputs():
    site = find_routers(toy_net())[0]
    with pytest.raises(ValueError, match="width"):
        check_router_input(site, torch.randn(2, site.hidden_size + 1))
    bad = torch.full((2, site.hidden_size), float("nan"))
    with pytest.raises(ValueError, match="NaN or inf"):
        check_router_input(site, bad, bad @ site.weight.T)


def test_install_routing_calls_the_policy_per_site_and_restores_on_error():
    net = toy_net()
    sites = find_routers(net)
    seen = []

    def policy(site, u, l_det):
        seen.append(site.name)
        return route(l_det, site.top_k, site.gate_rule)

    ids = torch.randint(32, (2, 5))
    with install_routing(sites, policy):
        net(ids)
    assert seen == [s.name for s in sites]
    with pytest.raises(RuntimeError, match="boom"), install_routing(sites, policy):
        raise RuntimeError("boom")
    assert all(s.router.routing_fn is None for s in sites)


def test_routing_grid_is_scoped():
    assert current_grid() == ""
    with routing_grid("prompt"):
        assert current_grid() == "prompt"
    assert current_grid() == ""
