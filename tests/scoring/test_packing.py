"""The packed option pass scores, routes and caches as the padded one does."""

import pytest
import torch

from tests.integrations.tiny_hf import CONFIGS, tiny_model
from tests.scoring.test_scorers import hand_option_logprob
from tests.scoring.tiny_tokenizer import tiny_tokenizer
from vmoer_ppl.data import MCQARecord
from vmoer_ppl.scoring import ClozeHead, encode_cloze
from vmoer_ppl.scoring.packing import OptionPacking, can_pack

#: Options of very different lengths, and a question with fewer options than the batch's C.
RECORDS = [
    MCQARecord("what colour is the sky ?", ("blue", "the very dark green sky", "red"), 0, "t", "0"),
    MCQARecord("what is the sun ?", ("hot", "cold", "a very light red", "green"), 0, "t", "1"),
    MCQARecord("is the grass green ?", ("the grass is very green", "no"), 1, "t", "2"),
]


def test_packing_places_each_option_after_the_one_before():
    mask = torch.tensor([[[1, 1, 0], [1, 0, 0], [0, 0, 0]], [[1, 1, 1], [1, 1, 0], [1, 0, 0]]])
    p = OptionPacking.of(mask)
    assert p.option.tolist() == [[0, 0, 1, -1, -1, -1], [0, 0, 0, 1, 1, 2]]
    assert p.index.tolist() == [[0, 1, 0, 0, 0, 0], [0, 1, 2, 0, 1, 0]]
    assert p.predicts().tolist() == [[1, 0, 0, 0, 0, 0], [1, 1, 0, 1, 0, 0]]
    x = torch.arange(2 * 3 * 3).reshape(2, 3, 3)
    assert p.pack(x)[p.real].tolist() == x[mask.bool()].tolist()
    torch.testing.assert_close(p.unpack(p.pack(x)), x * mask)
    prompt = torch.tensor([[0, 1], [1, 1]])
    assert p.positions(prompt)[1].tolist() == [2, 3, 4, 2, 3, 2]
    att = p.attention(prompt)[:, 0]  # (B, L, Tp + L)
    assert att[1, 4].tolist() == [True, True, False, False, False, True, True, False]
    assert att[0, 5].tolist() == [False, True] + [False] * 6  # padding sees the prompt only
    add = p.attention(prompt, torch.float32)
    assert ((add == 0) == p.attention(prompt)).all() and add.min() == torch.finfo(torch.float32).min


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
@pytest.mark.parametrize("family", sorted(CONFIGS))
def test_packed_scores_equal_the_padded_pass_and_full_sequences(family, attn):
    model, tok = tiny_model(family), tiny_tokenizer()
    model.set_attn_implementation(attn)
    batch = encode_cloze(RECORDS, tok)
    head = ClozeHead(model, "sum")
    assert head.packing(batch["prompt_mask"], batch["option_mask"]) is not None
    with torch.no_grad():
        packed, padded = head(**batch), ClozeHead(model, "sum", pack=False)(**batch)
    torch.testing.assert_close(packed, padded, atol=1e-5, rtol=1e-5)
    for b, r in enumerate(RECORDS):
        for c, choice in enumerate(r.choices):
            want, _ = hand_option_logprob(model, tok, r, choice)
            assert packed[b, c].item() == pytest.approx(want, abs=1e-4)
    assert packed[2, 2] == float("-inf")


def test_packed_gradients_equal_the_padded_pass():
    model, tok = tiny_model("qwen2_moe"), tiny_tokenizer()
    batch = encode_cloze(RECORDS, tok)
    grads = []
    for pack in (True, False):
        model.zero_grad()
        scores = ClozeHead(model, "sum", pack=pack)(**batch)
        scores[scores.isfinite()].sum().backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys() and len(grads[0]) > 10
    for n in grads[0]:
        torch.testing.assert_close(grads[0][n], grads[1][n], atol=1e-5, rtol=1e-4, msg=n)


def test_states_entering_a_layer_equal_the_padded_pass_at_real_tokens():
    model, tok = tiny_model("olmoe"), tiny_tokenizer()
    batch = encode_cloze(RECORDS, tok)
    real = batch["option_mask"].bool()
    with torch.no_grad():
        p1, o1 = ClozeHead(model, first_layer=2).states_entering(2, **batch)
        p2, o2 = ClozeHead(model, first_layer=2, pack=False).states_entering(2, **batch)
        torch.testing.assert_close(p1, p2)
        torch.testing.assert_close(o1[real], o2[real], atol=1e-5, rtol=1e-5)
        assert (o1[~real] == 0).all()
        head = ClozeHead(model, "sum", first_layer=2)
        torch.testing.assert_close(
            head(**batch, prompt_states=p1, option_states=o1), head(**batch), atol=1e-5, rtol=1e-5
        )


def test_a_window_shorter_than_the_row_keeps_the_padded_pass():
    model, tok = tiny_model("mixtral"), tiny_tokenizer()
    batch = encode_cloze(RECORDS, tok)
    span = batch["prompt_ids"].shape[1] + batch["option_ids"].shape[-1]
    model.config.sliding_window = span - 1
    head = ClozeHead(model, "sum")
    assert not can_pack(model.config, span) and can_pack(model.config, span - 1)
    assert head.packing(batch["prompt_mask"], batch["option_mask"]) is None
    B, C, Tc = batch["option_ids"].shape
    assert head.routing_grids(**batch)["option"].shape == (B * C, Tc)
    model.config.sliding_window = None
    assert head.routing_grids(**batch)["option"].shape == (
        B,
        int(batch["option_mask"].sum((1, 2)).max()),
    )
    model.config._attn_implementation = "flash_attention_2"  # no prepared 4D masks there
    assert not can_pack(model.config, span)
