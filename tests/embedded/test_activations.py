"""Layer-by-layer activations equal those of one full forward over all layers."""

import random

import pytest
import torch

from tests.embedded.test_convert import tiny_llama
from tests.scoring.tiny_tokenizer import WORDS, tiny_tokenizer
from vmoer_ppl.embedded.activations import encode_passages, mlp_activations


def passages(n=11, seed=0):
    rng = random.Random(seed)
    return [" ".join(rng.choices(WORDS[4:], k=rng.randint(2, 9))) for _ in range(n)]


def full_forward_activations(model, batches):
    """The reference: hooks on every MLP during one ordinary forward per batch."""
    store = [{"x": [], "h": []} for _ in model.model.layers]
    mask: list = []

    def hook(i):
        def fn(module, args, output):
            x = args[0][mask[0]]
            store[i]["x"].append(x)
            store[i]["h"].append(module.act_fn(module.gate_proj(x)) * module.up_proj(x))

        return fn

    handles = [la.mlp.register_forward_hook(hook(i)) for i, la in enumerate(model.model.layers)]
    with torch.no_grad():
        for enc in batches:
            mask[:] = [enc.attention_mask.bool()]
            model(**enc)
    for h in handles:
        h.remove()
    return [{k: torch.cat(v) for k, v in s.items()} for s in store]


@pytest.mark.parametrize("side", ["left", "right"])
def test_streamed_activations_equal_a_full_forward(side):
    model, tok, texts = tiny_llama(), tiny_tokenizer(), passages()
    tok.padding_side = side
    kw = dict(max_tokens=25, max_length=6, batch_size=4)
    batches = encode_passages(tok, texts, **kw)
    n_real = [int(b.attention_mask.sum()) for b in batches]
    assert sum(n_real[:-1]) < 25 <= sum(n_real) and len(batches) < 3  # read until enough
    want = full_forward_activations(model, batches)
    got = list(mlp_activations(model, tok, texts, **kw))
    assert [i for i, _ in got] == [0, 1]
    for (_, a), w in zip(got, want, strict=True):
        assert a["x"].shape == (25, 32) and a["h"].shape == (25, 64)
        torch.testing.assert_close(a["x"], w["x"][:25], atol=0, rtol=0)
        torch.testing.assert_close(a["h"], w["h"][:25], atol=0, rtol=0)


def test_only_the_layers_asked_for_are_yielded():
    model, tok = tiny_llama(), tiny_tokenizer()
    kw = dict(max_tokens=20, max_length=6, batch_size=4)
    every = dict(mlp_activations(model, tok, passages(), **kw))
    (only,) = mlp_activations(model, tok, passages(), layers=[1], **kw)
    assert only[0] == 1
    torch.testing.assert_close(only[1]["h"], every[1]["h"], atol=0, rtol=0)
