"""CUDA checks (skipped without a GPU; `bash benchmarks/gpu_check.sh` runs them with the rest).

A tiny MoE in bfloat16 on the GPU: routers and guides in float32 on the router's device, SVI
and prediction; the CLI's fit + evaluate with --device cuda --dtype bfloat16; two processes over
the "cpu:gloo,cuda:nccl" backend equal one process.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]
ROOT = Path(__file__).resolve().parents[2]


def test_bf16_tiny_model_fits_and_predicts_on_cuda():
    from tests.integrations.tiny_hf import tiny_model
    from vmoer_ppl import SVIConfig, bayesianize, fit_svi, predict

    hf = tiny_model("qwen3_moe").to("cuda", torch.bfloat16)
    ids = torch.randint(3, 60, (4, 7))
    mask = torch.ones_like(ids)
    model, guide = bayesianize(hf, family="logit-fc", layers="last:2")
    guide.to("cuda")
    assert all(p.dtype == torch.float32 and p.is_cuda for p in guide.parameters())
    data = {"input_ids": ids, "attention_mask": mask, "labels": torch.randint(60, (4,))}
    res = fit_svi(model, guide, data, SVIConfig(num_steps=3, batch_size=4, progress=False))
    assert torch.isfinite(torch.tensor(res.losses)).all()
    out = predict(model, guide, ids, mask, mode="mc", num_samples=4)
    assert all(r.probs.dtype == torch.float32 for r in out.routing.values())


def test_cli_fit_and_evaluate_on_cuda_in_bf16(tmp_path, monkeypatch):
    from tests.pipeline.test_demo import FAST, SMALL, save_tiny
    from tests.pipeline.test_fit_cli import write_jsonl
    from vmoer_ppl.cli import main

    monkeypatch.setenv("VMOER_PPL_CACHE", str(tmp_path / "cache"))
    model, data, run = (
        save_tiny(tmp_path / "tiny"),
        write_jsonl(tmp_path / "qa.jsonl"),
        tmp_path / "r",
    )
    ood = tmp_path / "ood.jsonl"  # a local OOD file (no packaged sets needed), no ID questions
    ood.write_text(Path(write_jsonl(ood, n=12)).read_text().replace("plus one", "minus one"))
    args = ["fit", "--model", model, "--data", data, "--out", str(run), *SMALL, *FAST]
    args += ["--ood", str(ood)]
    assert main([*args, "--device", "cuda", "--dtype", "bfloat16", "--baselines"]) == 0
    assert main(["evaluate", str(run)]) == 0


def test_two_processes_over_nccl_equal_one_process(tmp_path):
    from tests.infer.ddp_worker import fit

    out, init = tmp_path / "ddp.pt", f"file://{tmp_path / 'rendezvous'}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    worker = str(ROOT / "tests" / "infer" / "ddp_worker.py")
    procs = [
        subprocess.Popen(
            [sys.executable, worker, str(r), "2", init, str(out), "cpu:gloo,cuda:nccl"], env=env
        )
        for r in range(2)
    ]
    assert all(p.wait(timeout=600) == 0 for p in procs)
    two, one = torch.load(out), fit(shards=2)
    for k, v in one.params.items():
        torch.testing.assert_close(two["params"][k], v)
