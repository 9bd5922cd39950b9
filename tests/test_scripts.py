"""Scripts and the CLI are smoke-tested with tiny settings (STYLE rule 25)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vmoer_ppl.cli import main

ROOT = Path(__file__).resolve().parents[1]


def run_script(name, *args):
    cmd = [sys.executable, str(ROOT / "benchmarks" / name), *map(str, args)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, f"{name} exited {done.returncode}:\n{done.stderr[-4000:]}"
    return done.stdout


def test_benchmark_training_runs_and_writes_json(tmp_path):
    out = tmp_path / "training.json"
    tiny = ["--batch-size", 2, "--num-samples", 3, "--hidden", 8, "--experts", 4, "--layers", 1]
    run_script("training.py", "--repeats", 1, *tiny, "--backend", "eager", "--out", out)
    result = json.loads(out.read_text())
    assert result["fused_over_reference"] > 0 and result["vectorised_over_looped"] > 0
    assert result["compiled_speedup"] > 0 and result["fused_tokens_per_s"] > 0


def test_benchmark_flops_runs_and_writes_json(tmp_path):
    out = tmp_path / "flops.json"
    printed = run_script(
        "flops.py", "--specs", "Granite-3.1-3B-A800M", "--samples", 2, "--out", out
    )
    row = json.loads(out.read_text())["rows"][0]
    assert "| Granite-3.1-3B-A800M |" in printed
    assert 3.0e9 < row["params_meta"] < 3.6e9  # the public 3.3B parameters
    assert 0 < row["logit-mf last 5 (%)"] < row["logit-fc last 5 (%)"] < 5


def test_benchmark_inference_runs_on_a_tiny_model(tmp_path):
    from tests.pipeline.test_demo import save_tiny

    out = tmp_path / "inference.json"
    model = save_tiny(tmp_path / "tiny")
    args = ["--model", model, "--batch-size", 2, "--num-samples", 2, "--repeats", 1]
    run_script("inference.py", *args, "--layers", "last:1", "--out", out)
    result = json.loads(out.read_text())
    for family in ("logit-mf", "logit-fc", "logit-lowrank", "temperature"):
        for mode in ("mc", "analytic"):
            row = result[family][mode]
            assert row["bayesian_s"] > 0 and row["deterministic_s"] > 0
            lo, hi = row["overhead_pct_iqr"]
            assert lo <= hi and len(row["pair_ratios"]) == 1
            (pair,) = row["pairs"]  # the hooks saw the routers run in both passes, inside the net
            assert 0 < pair["det_routers_s"] < pair["det_s"]
            assert 0 < pair["bayes_routers_s"] < pair["bayes_net_s"] <= pair["bayes_s"]
            lo, hi = row["in_pass_overhead_pct_iqr"]
            assert lo <= row["in_pass_overhead_pct"] <= hi


def test_benchmark_micro_batches_runs_on_a_tiny_model(tmp_path, monkeypatch):
    from tests.pipeline.test_demo import save_tiny

    monkeypatch.setenv("VMOER_PPL_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "micro.json"
    model = save_tiny(tmp_path / "tiny", family="qwen3_moe")
    args = ["--model", model, "--questions", 24, "--batch-size", 8, "--repeats", 1]
    run_script("micro_batches.py", *args, "--layers", "last:1", "--overheads", 0, 64, "--out", out)
    result = json.loads(out.read_text())
    assert result["padding_one_pass"] > 1.0
    assert result["overhead_0"]["padding"] <= result["overhead_64"]["padding"]
    assert len(result["overhead_0"]["passes"]) == 3 and result["overhead_64"]["grouped_s"] > 0


def test_vmoer_toy_smoke(tmp_path, capsys):
    assert main(["toy", "--smoke", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "deterministic" in printed and "vmoer-logit-fc" in printed
    metrics = json.loads((tmp_path / "metrics.json").read_text())["metrics"]
    assert set(metrics) == {
        "deterministic",
        "vmoer-logit-mf",
        "vmoer-logit-fc",
        "vmoer-temperature",
        "vmoer-weight",
    }


@pytest.mark.slow  # a benchmark script end to end; `make test-slow` runs it
def test_benchmark_scaling_runs_one_and_two_processes(tmp_path):
    out = tmp_path / "scaling.json"
    run_script("scaling.py", "--steps", 2, "--batch", 4, "--hidden", 16, "--out", out)
    res = json.loads(out.read_text())
    assert res["tokens_per_s_1proc"] > 0 and res["tokens_per_s_2proc"] > 0
    assert {r["model"] for r in res["estimate"]} == {"Mixtral-8x7B", "Qwen3-30B-A3B"}


@pytest.mark.slow  # a benchmark script end to end; `make test-slow` runs it
def test_benchmark_fsdp_frozen_counts_what_fsdp_moves_for_a_frozen_backbone(tmp_path):
    out = tmp_path / "fsdp.json"
    tiny = ["--hidden", 64, "--layers", 2, "--experts", 4, "--batch", 2, "--tokens", 8]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]
    cmd += ["--master_port", "29519", str(ROOT / "benchmarks" / "fsdp_frozen.py")]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [*cmd, *map(str, tiny), "--repeats", "1", "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    res = json.loads(out.read_text())["results"]
    rep, fsdp = res["replicated"], res["fsdp"]
    assert abs(fsdp["layers_MB"] - rep["layers_MB"] / 2) < 1e-3  # each process half the layers
    assert fsdp["collectives"]["c10d._allgather_base_"] == 1 + 2 * 2  # root, layers fwd + bwd
    assert rep["collectives"] == {"c10d.allreduce_": 2}  # only the trainable map's gradients
    assert 0 < fsdp["received_MB"] < rep["resident_MB"]


@pytest.mark.slow  # a benchmark script end to end; `make test-slow` runs it
def test_benchmark_stage1_regime_measures_along_training(tmp_path):
    from tests.pipeline.test_demo import save_tiny
    from vmoer_ppl.pipeline.demo import demo_config

    run, out = tmp_path / "run", tmp_path / "regime.json"
    small = {"n_train": 8, "n_val": 4, "n_test": 8, "n_ood": 6, "layers": "last:1"}
    demo_config(model=save_tiny(tmp_path / "tiny"), **small).save(run)
    env = {**os.environ, "VMOER_PPL_CACHE": str(tmp_path / "cache")}
    args = ["--run", run, "--steps", 3, "--every", 2, "--train-questions", 3, "--out", out]
    cmd = [sys.executable, str(ROOT / "benchmarks" / "stage1_regime.py"), *map(str, args)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(out.read_text())
    steps = [(h["step"], h["split"]) for h in result["history"]]
    assert steps == [(s, split) for s in (0, 2, 3) for split in ("val", "train")]
    assert len(result["losses"]) == 3 and result["settings"]["scorer"] == "cloze"
    for h in result["history"]:
        assert 0 <= h["acc"] <= 1 and h["temperature"] > 0 and h["nll"] > 0
    assert "| 3 | val |" in done.stdout
