"""A cloze batch too large for the free memory is refused before anything is allocated."""

import pytest
import torch

from tests.integrations.tiny_hf import tiny_model
from vmoer_ppl.scoring import ClozeHead
from vmoer_ppl.scoring import memory as mem


def _batch(B=2, C=4, Tp=5, Tc=3):
    ids = torch.randint(3, 60, (B, Tp))
    opts = torch.randint(3, 60, (B, C, Tc))
    return dict(
        prompt_ids=ids,
        prompt_mask=torch.ones(B, Tp, dtype=torch.long),
        option_ids=opts,
        option_mask=torch.ones(B, C, Tc, dtype=torch.long),
        option_chars=torch.full((B, C), float(Tc)),
    )


def _count_forwards(model):
    calls = []
    model.model.layers[0].register_forward_pre_hook(lambda *a: calls.append(1))
    return calls


def test_huge_option_is_refused_up_front_with_the_estimate_and_the_fix():
    model = tiny_model("mixtral")
    head, calls = ClozeHead(model), _count_forwards(model)
    with torch.no_grad(), pytest.raises(MemoryError, match=r"GiB \(estimate\).*--batch-size"):
        head(**_batch(Tc=200_000))  # a 200k-token option: attention scores alone are terabytes
    assert calls == []  # refused before the prompt pass ran


def test_refusal_follows_the_free_memory(monkeypatch):
    model = tiny_model("mixtral")
    head, calls = ClozeHead(model), _count_forwards(model)
    with torch.no_grad():
        assert torch.isfinite(head(**_batch())).all()  # plenty of memory: runs
        monkeypatch.setattr(mem, "available_bytes", lambda device: 1024)
        with pytest.raises(MemoryError, match=r"2 questions × 4 options \(5 \+ 3 tokens\)"):
            head(**_batch())
    assert len(calls) == 2  # the first batch's two passes only


def test_estimate_grows_with_each_dimension_and_with_gradients():
    cfg = tiny_model("mixtral").config
    base = dict(B=2, C=4, Tp=16, Tc=8, n_predict=40, layers=3, grad=False)
    est = mem.cloze_batch_bytes(cfg, **base)
    for key in ("B", "C", "Tp", "Tc", "n_predict", "layers"):
        assert mem.cloze_batch_bytes(cfg, **{**base, key: base[key] * 2}) > est
    assert mem.cloze_batch_bytes(cfg, **{**base, "grad": True}) > est
    # never below the float32 log-probabilities it must hold: n × V × 4 bytes
    assert est >= base["n_predict"] * cfg.vocab_size * 4
