"""A patched router's output through its routing slot, beside upstream's own output."""

import torch

from vmoer_ppl.nn.gates import route


def upstream_and_routed(site, h: torch.Tensor) -> tuple:
    """``(upstream output, output with the site's gate rule in the slot, {"u", "l"} seen)``.

    The routing function selects by the site's own gate rule on ``l_det``, so the two outputs
    agree when the adapter rebuilds upstream's contract exactly; ``seen`` holds the router input
    ``u`` `(N, D)` and logits ``l`` `(N, E)` the guides would see for ``h`` `(N, D)`.
    """
    r, seen = site.router, {}

    def fn(u, l_det):
        seen["u"], seen["l"] = u, l_det
        return route(l_det, site.top_k, site.gate_rule)

    want = r(h)  # no routing function: upstream's forward
    r.routing_fn = fn
    try:
        return want, r(h), seen
    finally:
        r.routing_fn = None
