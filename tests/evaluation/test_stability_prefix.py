"""Routing stability from shared noisy prefix states equals the full-forward probe."""

import pytest

from tests.integrations.tiny_hf import tiny_model
from tests.scoring.test_scorers import RECORDS
from tests.scoring.tiny_tokenizer import tiny_tokenizer
from vmoer_ppl import bayesianize
from vmoer_ppl.evaluation.stability import routing_stability
from vmoer_ppl.evaluation.stability_prefix import stability_inputs
from vmoer_ppl.scoring import encode_cloze

GAMMAS = (0.01, 0.3, 3.0)


@pytest.mark.parametrize("family", [None, "logit-mf"])
def test_shared_prefix_states_give_the_full_forward_stability(family):
    model, guide = bayesianize(
        tiny_model("qwen3_moe"), family=family or "logit-mf", layers="last:1", scorer="cloze"
    )
    guide = guide if family else None
    assert model.net.first_layer == 2
    data = encode_cloze(RECORDS, tiny_tokenizer())
    full = routing_stability(model, guide, data, gammas=GAMMAS, num_samples=4)
    prepared = stability_inputs(model.net, data, GAMMAS)
    shared = routing_stability(model, guide, data, gammas=GAMMAS, num_samples=4, prepared=prepared)
    assert shared["overall"] == pytest.approx(full["overall"], abs=1e-6)
    assert full["overall"][-1] < 1.0  # the noise does move experts (the comparison is not empty)


def test_prepared_states_refuse_other_gammas_and_heads_without_a_prefix():
    data = encode_cloze(RECORDS, tiny_tokenizer())
    every, _ = bayesianize(tiny_model("qwen3_moe"), family="logit-mf", scorer="cloze")
    with pytest.raises(ValueError, match="no frozen prefix"):
        stability_inputs(every.net, data, GAMMAS)  # every layer Bayesian: first_layer 0
    cloze, _ = bayesianize(
        tiny_model("qwen3_moe"), family="logit-mf", layers="last:1", scorer="cloze"
    )
    prepared = stability_inputs(cloze.net, data, GAMMAS)
    assert prepared.clean["prompt_states"].shape[:2] == data["prompt_ids"].shape
    with pytest.raises(ValueError, match="other gammas"):
        routing_stability(cloze, None, data, gammas=(0.01,), prepared=prepared)
