"""Results with and without the frozen-prefix cache are identical."""

import pyro
import torch

from tests.integrations.tiny_hf import tiny_model
from tests.scoring.test_scorers import RECORDS
from tests.scoring.tiny_tokenizer import tiny_tokenizer
from vmoer_ppl import bayesianize, fused_loss, predict
from vmoer_ppl.data.tensors import subset
from vmoer_ppl.embedded.prefix_cache import cached_prefix_states
from vmoer_ppl.scoring import ClozeHead, encode_cloze


def test_suffix_run_on_cached_states_equals_the_full_forward():
    model = tiny_model("mixtral")
    batch = encode_cloze(RECORDS, tiny_tokenizer())
    head = ClozeHead(model, first_layer=2)
    with torch.no_grad():
        full = head(**batch)
        p, o = head.states_entering(2, **batch)
        cached = head(**batch, prompt_states=p, option_states=o)
    torch.testing.assert_close(cached, full, atol=1e-5, rtol=1e-5)


def test_svi_loss_and_predictive_identical_with_the_on_disk_cache(tmp_path):
    tok = tiny_tokenizer()
    data = encode_cloze(RECORDS, tok)
    model, guide = bayesianize(
        tiny_model("qwen3_moe"), family="logit-mf", layers="last:1", scorer="cloze"
    )
    assert model.net.first_layer == 2
    with_states = cached_prefix_states(model.net, data, 2, "tiny-qwen3", tmp_path)
    assert len(list(tmp_path.iterdir())) == 1
    again = cached_prefix_states(model.net, data, 2, "tiny-qwen3", tmp_path)  # read back from disk
    torch.testing.assert_close(again["prompt_states"], with_states["prompt_states"])
    with torch.no_grad():
        for p in guide.parameters():
            p.add_(0.1 * torch.randn_like(p))
    pyro.set_rng_seed(5)
    plain = fused_loss(model, guide, **data)
    pyro.set_rng_seed(5)
    cached = fused_loss(model, guide, **with_states)
    torch.testing.assert_close(cached, plain, atol=1e-5, rtol=1e-5)
    a = predict(model, guide, mode="mean", **subset(data, [1]))
    b = predict(model, guide, mode="mean", **subset(with_states, [1]))
    torch.testing.assert_close(b.logits, a.logits, atol=1e-5, rtol=1e-5)
    # the cached path really skips the lower layers: corrupting them changes nothing
    with torch.no_grad():
        for p in model.net.model.model.layers[0].parameters():
            p.mul_(0.0)
    c = predict(model, guide, mode="mean", **subset(with_states, [1]))
    torch.testing.assert_close(c.logits, b.logits)
    assert not torch.allclose(
        predict(model, guide, mode="mean", **subset(data, [1])).logits, a.logits
    )
