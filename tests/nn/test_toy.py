import torch

from tests.common import toy_batch, toy_net
from vmoer_ppl.nn import RoutingOutput, route


def test_toy_classifier_shapes_and_router_names():
    net = toy_net()
    ids, mask, _ = toy_batch()
    assert net(ids, mask).shape == (3, 4)
    names = [n for n, _ in net.named_modules() if n.endswith("router")]
    assert names == ["layers.0.moe.router", "layers.1.moe.router"]


def test_installed_routing_fn_is_used_and_sees_router_inputs():
    net = toy_net()
    ids, mask, _ = toy_batch()
    seen = []

    def fn(u, l_det):
        seen.append((u.shape, l_det.shape))
        return route(l_det, 2, "softmax-topk-norm")

    router = net.layers[1].moe.router
    base = net(ids, mask)
    router.routing_fn = fn
    torch.testing.assert_close(net(ids, mask), base)  # same rule: same output
    assert seen == [((3, 6, 16), (3, 6, 4))]


def test_right_padding_does_not_change_the_answer():
    net = toy_net()
    ids = torch.randint(32, (1, 5))
    padded = torch.cat([ids, torch.zeros(1, 3, dtype=torch.long)], 1)
    mask = torch.tensor([[1, 1, 1, 1, 1, 0, 0, 0]])
    torch.testing.assert_close(net(padded, mask), net(ids))


def test_routing_output_is_named():
    out = route(torch.randn(2, 4), 2, "topk-softmax")
    assert isinstance(out, RoutingOutput) and out.weights.shape == (2, 2)
