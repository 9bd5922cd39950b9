"""Cloze and letter scorers against hand computations on a tiny MoE, and cloze under SVI."""

import pyro
import pytest
import torch
from pyro import poutine
from pyro.infer import TraceMeanField_ELBO

from tests.integrations.tiny_hf import tiny_model
from tests.scoring.tiny_tokenizer import tiny_tokenizer
from vmoer_ppl import bayesianize, fused_loss, predict
from vmoer_ppl.data import MCQARecord
from vmoer_ppl.integrations.hf import NextTokenHead
from vmoer_ppl.scoring import (
    ClozeHead,
    cloze_context,
    encode_cloze,
    encode_letter,
    letter_token_ids,
)

RECORDS = [
    MCQARecord("what colour is the sky ?", ("blue", "very dark green", "red"), 0, "toy", "0"),
    MCQARecord("what is the sun ?", ("hot", "cold", "a very light red", "green"), 0, "toy", "1"),
]


def hand_option_logprob(model, tok, record, choice):
    """Sum of log p(option tokens | prefix) from one plain full-sequence forward, no cache."""
    prefix = tok(cloze_context(record)).input_ids
    option = tok(" " + choice, add_special_tokens=False).input_ids
    ids = torch.tensor([prefix + option])
    with torch.no_grad():
        logp = torch.log_softmax(model(ids).logits[0].float(), -1)
    return sum(logp[len(prefix) - 1 + j, t].item() for j, t in enumerate(option)), len(option)


@pytest.mark.parametrize("norm", ["sum", "token", "char"])
def test_cloze_with_shared_prefix_cache_matches_full_sequence_scoring(norm):
    model, tok = tiny_model("mixtral"), tiny_tokenizer()
    batch = encode_cloze(RECORDS, tok)
    assert batch["option_ids"].shape[:2] == (2, 4) and (batch["prompt_mask"] == 0).any()  # padded
    with torch.no_grad():
        got = ClozeHead(model, norm)(**batch)
    for b, r in enumerate(RECORDS):
        for c, choice in enumerate(r.choices):
            total, n_tok = hand_option_logprob(model, tok, r, choice)
            want = {"sum": total, "token": total / n_tok, "char": total / len(" " + choice)}[norm]
            assert got[b, c].item() == pytest.approx(want, abs=1e-4)
    assert got[0, 3] == float("-inf")  # the first question has 3 options


def test_cloze_with_one_token_options_needs_no_option_logits():
    model, tok = tiny_model("mixtral"), tiny_tokenizer()
    records = [MCQARecord("what colour is the sky ?", ("blue", "red"), 0, "toy", "0")]
    batch = encode_cloze(records, tok)
    assert batch["option_mask"].sum(-1).max() == 1  # every option is one token
    with torch.no_grad():
        got = ClozeHead(model, "sum")(**batch)
    for c, choice in enumerate(records[0].choices):
        want, _ = hand_option_logprob(model, tok, records[0], choice)
        assert got[0, c].item() == pytest.approx(want, abs=1e-4)


def test_letter_logits_are_the_next_token_logits_of_the_letters():
    model, tok = tiny_model("granitemoe"), tiny_tokenizer()
    batch = encode_letter(RECORDS[:1], tok, chat=False)
    ids = letter_token_ids(tok, 3)
    assert ids == [[tok.convert_tokens_to_ids(x)] for x in "ABC"]
    with torch.no_grad():
        got = NextTokenHead(model, ids)(batch["input_ids"], batch["attention_mask"])
        full = model(batch["input_ids"]).logits[0, -1]
    torch.testing.assert_close(got[0], full[[i[0] for i in ids]].float())


@pytest.mark.parametrize("side", ["left", "right"])
def test_next_token_head_trims_padding_and_reads_each_rows_last_token(side):
    model = tiny_model("granitemoe")
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 60, (3, 9), generator=g)
    lengths = [4, 7, 5]  # no row fills the 9 columns: two columns are padding everywhere
    mask = torch.zeros(3, 9, dtype=torch.long)
    for b, n in enumerate(lengths):
        if side == "left":
            mask[b, 9 - n :] = 1
        else:
            mask[b, :n] = 1
    head = NextTokenHead(model)
    assert head.routing_grids(ids, mask)[""].shape == (3, 7)
    with torch.no_grad():
        got = head(ids, mask)  # (B, V)
        for b, n in enumerate(lengths):
            row = ids[b, 9 - n :] if side == "left" else ids[b, :n]
            want = model(row[None]).logits[0, -1].float()
            torch.testing.assert_close(got[b], want, atol=1e-5, rtol=1e-5)


def test_bayesian_cloze_routes_prompt_and_options_as_two_grids():
    tok = tiny_tokenizer()
    batch = encode_cloze(RECORDS, tok)
    B, C, Tc = batch["option_ids"].shape
    Tp = batch["prompt_ids"].shape[1]
    with torch.no_grad():
        want = ClozeHead(tiny_model("qwen3_moe"))(**batch)
    model, guide = bayesianize(
        tiny_model("qwen3_moe"), family="logit-fc", layers="last:1", scorer="cloze"
    )
    router = model.sites[0].name
    tr = poutine.trace(model).get_trace(**batch)
    assert tr.nodes[f"{router}.prompt.logits"]["value"].shape == (B, Tp, 4)
    L = int(batch["option_mask"].sum((1, 2)).max())  # a question's options side by side
    assert tr.nodes[f"{router}.option.logits"]["value"].shape == (B, L, 4)
    assert tr.nodes["obs"]["value"].shape == (B, 1)
    # mean mode at the guide's initial point reproduces the deterministic scorer
    out = predict(model, guide, mode="mean", **batch)
    torch.testing.assert_close(out.logits, want, atol=1e-4, rtol=0)
    assert set(out.routing) == {f"{router}.prompt", f"{router}.option"}
    # the fused single pass equals Pyro's ELBO on this two-grid model
    with torch.no_grad():
        for p in guide.parameters():
            p.add_(0.05 * torch.randn_like(p))
    pyro.set_rng_seed(3)
    ref = TraceMeanField_ELBO(max_plate_nesting=2).differentiable_loss(model, guide, **batch)
    pyro.set_rng_seed(3)
    torch.testing.assert_close(fused_loss(model, guide, **batch), ref)


def test_letter_likelihood_puts_no_loss_on_prompt_tokens():
    """Only the last real token's next-token logits, at the letters, get gradient."""
    model, tok = tiny_model("mixtral"), tiny_tokenizer()
    records = [
        RECORDS[1],
        MCQARecord("what colour is grass ?", ("blue", "green", "red", "hot"), 1, "toy", "2"),
    ]
    batch = encode_letter(records, tok, chat=False)
    assert (batch["attention_mask"] == 0).any()  # left padding: last real tokens at the end
    ids = letter_token_ids(tok, 4)
    seen = {}

    def keep(module, args, out):
        out.retain_grad()
        seen["logits"] = out

    handle = model.lm_head.register_forward_hook(keep)
    try:
        logits = NextTokenHead(model, ids)(batch["input_ids"], batch["attention_mask"])
        torch.nn.functional.cross_entropy(logits, batch["labels"]).backward()
    finally:
        handle.remove()
    grad = seen["logits"].grad  # (B, T', V)
    assert grad.shape[1] == 1  # the LM head runs at the last real token only (logits_to_keep)
    letters = [i[0] for i in ids]
    assert grad[:, :-1].abs().sum() == 0  # no prompt position carries loss
    assert grad[:, -1][:, letters].abs().sum() > 0
    others = torch.ones(grad.shape[-1], dtype=torch.bool)
    others[letters] = False
    assert grad[:, -1][:, others].abs().sum() == 0  # nor any non-letter token
