"""Length-ordered batching: rows come back in data order and results do not depend on it."""

import torch

from tests.integrations.tiny_hf import tiny_model
from tests.scoring.tiny_tokenizer import tiny_tokenizer
from vmoer_ppl import bayesianize, predict
from vmoer_ppl.data import MCQARecord
from vmoer_ppl.data.tensors import batches, length_order, subset, token_counts, unsort
from vmoer_ppl.pipeline.evaluate import bayesian_outputs, deterministic_outputs
from vmoer_ppl.scoring import ClozeHead, encode_cloze

WORDS = "the quick brown fox jumps over a lazy dog near some river bank today".split()
RECORDS = [
    MCQARecord(
        " ".join(WORDS[: 2 + 3 * i % 11]) + " ?", ("yes", "no", "maybe so"), i % 3, "t", f"{i}"
    )
    for i in range(7)
]


def test_token_counts_sum_every_mask_and_length_order_is_decreasing_and_stable():
    data = {
        "prompt_mask": torch.tensor([[0, 1, 1], [1, 1, 1], [0, 0, 1], [0, 1, 1]]),
        "option_mask": torch.tensor([[[1, 0]], [[1, 1]], [[1, 1]], [[1, 0]]]),
        "labels": torch.tensor([5, 6, 7, 8]),
    }
    assert token_counts(data).tolist() == [3, 5, 3, 3]
    assert length_order(data).tolist() == [1, 0, 2, 3]
    assert token_counts({"labels": torch.arange(3)}).tolist() == [0, 0, 0]


def test_batches_follow_the_order_and_unsort_restores_data_order():
    data = {"x": torch.arange(7) * 10, "labels": torch.arange(7)}
    order = torch.tensor([6, 2, 0, 5, 1, 3, 4])
    got = list(batches(data, 3, order))
    assert [b["x"].tolist() for b in got] == [[60, 20, 0], [50, 10, 30], [40]]
    assert unsort(torch.cat([b["x"] for b in got]), order).tolist() == data["x"].tolist()
    assert [b["x"].tolist() for b in batches(data, 4)] == [[0, 10, 20, 30], [40, 50, 60]]


def test_evaluation_in_length_order_equals_question_by_question():
    model = tiny_model("mixtral")
    data = encode_cloze(RECORDS, tiny_tokenizer())
    assert len(set(data["prompt_mask"].sum(1).tolist())) > 3  # lengths really differ
    order = length_order(data)
    assert not torch.equal(order, torch.arange(len(RECORDS)))
    head = ClozeHead(model)
    got = deterministic_outputs(head, data, batch_size=3)["probs"]
    with torch.no_grad():
        one = [torch.softmax(head(**subset(data, [i])), -1) for i in range(len(RECORDS))]
    torch.testing.assert_close(got, torch.cat(one), atol=1e-5, rtol=1e-5)
    bm, guide = bayesianize(model, family="logit-mf", layers="last:1", scorer="cloze")
    mean = bayesian_outputs(bm, guide, data, batch_size=3, mode="mean")
    for i in range(len(RECORDS)):
        p = predict(bm, guide, mode="mean", **subset(data, [i]))
        torch.testing.assert_close(mean["probs"][i], p.probs[0], atol=1e-5, rtol=1e-5)
        # tr Σ is closed-form (the entropy and MI signals are MC estimates even in mean mode)
        torch.testing.assert_close(mean["ilv"][i], p.ilv[0], atol=1e-5, rtol=1e-5)
