"""Adapters on the hub, offline: push through a mocked HfApi, load by repo id from a hub cache."""

import shutil

import pytest
import torch
from huggingface_hub import HfApi

from tests.integrations.tiny_hf import tiny_model
from vmoer_ppl import SVIConfig, bayesianize, fit_svi, from_pretrained, predict
from vmoer_ppl.hub import is_repo_id


def _fitted():
    model, guide = bayesianize(tiny_model("qwen2_moe"), family="logit-fc", layers="last:2")
    ids = torch.randint(3, 64, (4, 6))
    mask = torch.ones_like(ids)
    data = {"input_ids": ids, "attention_mask": mask, "labels": torch.randint(64, (4,))}
    fit_svi(model, guide, data, SVIConfig(num_steps=2, batch_size=4, progress=False, lr=0.1))
    return model, guide, ids, mask


def _hub_cache(root, repo_id, files_from):
    """A hub cache holding one snapshot of ``repo_id`` (the layout huggingface_hub reads)."""
    repo = root / f"models--{repo_id.replace('/', '--')}"
    snap = repo / "snapshots" / ("a" * 40)
    shutil.copytree(files_from, snap)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("a" * 40)
    return root


def test_push_to_hub_uploads_the_adapter_and_a_card_then_loads_back_by_repo_id(
    tmp_path, monkeypatch
):
    model, guide, ids, mask = _fitted()
    pushed, created = tmp_path / "pushed", []
    monkeypatch.setattr(HfApi, "create_repo", lambda self, repo_id, **kw: created.append(repo_id))

    def upload_folder(self, *, repo_id, folder_path, commit_message):
        shutil.copytree(folder_path, pushed)
        return f"https://hub.example/{repo_id}"

    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    metrics = {"vmoer-logit-fc": {"acc": 0.75, "nll": 0.62}}
    assert guide.push_to_hub("me/tiny-vmoer", metrics=metrics).endswith("me/tiny-vmoer")
    assert created == ["me/tiny-vmoer"]
    names = {p.name for p in pushed.iterdir()}
    assert names == {"router_adapter.json", "router_adapter.safetensors", "README.md"}
    card = (pushed / "README.md").read_text()
    assert "library_name: vmoer_ppl" in card and "| family | logit-fc |" in card
    assert "| Bayesian routers | 2 of 3 |" in card and "| vmoer-logit-fc | 0.750 | 0.620 |" in card

    cache = _hub_cache(tmp_path / "hub", "me/tiny-vmoer", pushed)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model2, guide2 = from_pretrained(tiny_model("qwen2_moe"), "me/tiny-vmoer", cache_dir=cache)
    want = predict(model, guide, ids, mask, mode="mean").logits
    torch.testing.assert_close(predict(model2, guide2, ids, mask, mode="mean").logits, want)


def test_a_repo_missing_from_the_offline_cache_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match="not in the local hub cache"):
        from_pretrained(tiny_model("qwen2_moe"), "me/absent", cache_dir=tmp_path)


def test_local_paths_are_never_taken_for_repo_ids(tmp_path):
    (tmp_path / "a").mkdir()
    assert is_repo_id("me/model") and not is_repo_id(tmp_path / "a")
    assert not is_repo_id("./me/model") and not is_repo_id("/abs/path")
