"""The Bayesian router forward compiles to one graph (no graph breaks) and matches eager."""

import pytest
import torch
import torch._dynamo

from vmoer_ppl import bayesianize
from vmoer_ppl.infer.compiled import no_validation, router_forward
from vmoer_ppl.nn import ToyMoEClassifier, ToyMoEConfig


# dynamo's tracer reads .grad of non-leaf tensors while inspecting them (its warning, not ours)
@pytest.mark.filterwarnings("ignore:The .grad attribute of a Tensor that is not a leaf")
@pytest.mark.parametrize("family", ["logit-mf", "logit-fc", "temperature", "temperature-expert"])
def test_router_forward_has_no_graph_breaks(family):
    model, guide = bayesianize(ToyMoEClassifier(ToyMoEConfig()), family=family)
    site = model.sites[0]
    u, l_det = torch.randn(2, 5, site.hidden_size), torch.randn(2, 5, site.num_experts)

    def fn(u, l_det):
        return router_forward(model, guide, site, u, l_det, 8).weights

    torch._dynamo.reset()
    with no_validation():
        explained = torch._dynamo.explain(fn)(u, l_det)
    assert explained.graph_break_count == 0, explained.break_reasons
    assert explained.graph_count == 1


@pytest.mark.filterwarnings("ignore:The .grad attribute of a Tensor that is not a leaf")
def test_compiled_router_matches_eager():
    model, guide = bayesianize(ToyMoEClassifier(ToyMoEConfig()), family="logit-fc")
    site = model.sites[0]
    u, l_det = torch.randn(2, 5, site.hidden_size), torch.randn(2, 5, site.num_experts)
    torch._dynamo.reset()
    compiled = torch.compile(router_forward, backend="eager", fullgraph=True)
    with no_validation():
        torch.manual_seed(3)
        eager = router_forward(model, guide, site, u, l_det, 8)
        torch.manual_seed(3)
        traced = compiled(model, guide, site, u, l_det, 8)
    torch.testing.assert_close(traced.weights, eager.weights)
    assert torch.equal(traced.experts, eager.experts)


@pytest.mark.filterwarnings("ignore:The .grad attribute of a Tensor that is not a leaf")
@pytest.mark.parametrize("policy", ["predict", "fused"])
def test_routed_transformers_network_breaks_only_in_the_heads_input_preparation(policy):
    """Decoder layers, Bayesian routers, guides and experts trace as one graph per forward."""
    from tests.integrations.tiny_hf import tiny_model
    from vmoer_ppl.infer.fused import FusedELBO
    from vmoer_ppl.infer.predictive import PredictiveRouting, PredictMode
    from vmoer_ppl.routing import run_routed

    hf = tiny_model("qwen3_moe")
    hf.set_experts_implementation("grouped_mm")  # the looped kernel branches on which experts run
    model, guide = bayesianize(hf, family="logit-fc", layers="last:2")
    ids = torch.randint(3, 60, (3, 6))
    inputs = model.net_inputs(ids, torch.ones_like(ids))
    ctx = model.context(inputs)
    if policy == "predict":
        routing = PredictiveRouting(model, guide, ctx, PredictMode.MC, "second-order", 4)
    else:
        routing = FusedELBO(model, guide, ctx, num_questions=3)
    torch._dynamo.reset()
    with no_validation(), torch.no_grad():
        explained = torch._dynamo.explain(run_routed)(model.net, inputs, model.sites, routing)
    files = {r.user_stack[-1].filename for r in explained.break_reasons if r.user_stack}
    assert all(f.endswith(("nn/masks.py", "hf/heads.py")) for f in files), files
    assert len(routing.terms if policy == "fused" else routing.store) > 0
