"""vmoer_ppl.routing: the one place that runs a network with a routing policy."""

import torch

from tests.common import toy_net
from vmoer_ppl.routing import Capture, Deterministic, RoutingPolicy, run_routed
from vmoer_ppl.sites import find_routers


def test_deterministic_policy_is_the_untouched_network():
    net = toy_net()
    ids = torch.randint(32, (3, 6))
    with torch.no_grad():
        want = net(ids)
        got = run_routed(net, {"input_ids": ids}, find_routers(net), Deterministic())
    assert torch.equal(got, want)


def test_capture_keeps_each_routers_first_input_and_logits():
    net = toy_net()
    sites = find_routers(net)
    capture = Capture()
    with torch.no_grad():
        run_routed(net, {"input_ids": torch.randint(32, (2, 4))}, sites, capture)
    assert list(capture.inputs) == [s.name for s in sites]
    for site, u, l_det in capture.inputs.values():
        torch.testing.assert_close(l_det, u @ site.weight.T)


def test_a_policy_changes_only_the_sites_it_is_given_and_nothing_after():
    net = toy_net()
    sites = find_routers(net)

    class Flip(RoutingPolicy):
        def __call__(self, site, u, l_det):
            return Deterministic()(site, u, -l_det)

    ids = torch.randint(32, (3, 6))
    with torch.no_grad():
        clean = net(ids)
        flipped = run_routed(net, {"input_ids": ids}, sites[-1:], Flip())
        after = net(ids)
    assert not torch.allclose(flipped, clean)
    assert torch.equal(after, clean)
    assert all(s.router.routing_fn is None for s in sites)
