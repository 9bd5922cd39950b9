"""`--dtype`, `--device`, `--device-map`: bf16 end to end on CPU, checked settings, sizes."""

# ruff: noqa: F811 - `setup` is the shared fixture of test_fit_cli

import json

import pytest
import torch

from tests.pipeline.test_fit_cli import fit_args, setup  # noqa: F401 - the fixture
from vmoer_ppl.cli import main
from vmoer_ppl.integrations.hf.tiny import tiny_config
from vmoer_ppl.pipeline import FitConfig
from vmoer_ppl.pipeline.placement import check_fits, load_kwargs, model_bytes


def _id_metrics(run):
    return json.loads((run / "metrics.json").read_text())["results"]


def test_fit_and_evaluate_in_bfloat16_on_cpu_keep_router_math_in_float32(setup, tmp_path):
    model, data = setup
    runs = {}
    for dtype in ("float32", "bfloat16"):
        run = tmp_path / dtype
        extra = ["--families", "logit-fc", "--baselines", "--dtype", dtype, "--device", "cpu"]
        assert main(fit_args(model, data, run, *extra)) == 0
        assert FitConfig.load(run).placement.dtype == dtype  # recorded, and honoured by evaluate
        assert main(["evaluate", str(run)]) == 0
        runs[dtype] = _id_metrics(run)
    for name in ("deterministic", "vmoer-logit-fc"):
        f32, bf16 = runs["float32"][name]["id"], runs["bfloat16"][name]["id"]
        # 8 test questions: bf16 rounding (2^-8 relative) may flip at most a near-tie answer
        assert abs(f32["nll"] - bf16["nll"]) < 0.05
        assert abs(f32["acc"] - bf16["acc"]) <= 1 / 8 + 1e-9


def test_bf16_backbone_routes_in_float32(setup):
    from vmoer_ppl.pipeline.loading import load_model

    model, _ = setup
    hf, _, _ = load_model(FitConfig().replace(model=model, dtype="bfloat16", device="cpu"))
    assert next(hf.parameters()).dtype == torch.bfloat16
    from vmoer_ppl import bayesianize, predict

    ids = torch.randint(3, 60, (2, 6))
    m, g = bayesianize(hf, family="logit-fc", layers="last:1")
    out = predict(m, g, ids, torch.ones_like(ids), mode="mc", num_samples=2)
    assert all(r.probs.dtype == torch.float32 for r in out.routing.values())


@pytest.mark.parametrize(
    ("flag", "value", "match"),
    [
        ("--dtype", "float8", "--dtype 'float8'"),
        ("--device", "tpu:0", "--device"),
        ("--device-map", "everywhere", "--device-map 'everywhere'"),
    ],
)
def test_bad_placement_settings_are_refused_before_any_work(
    setup, tmp_path, capsys, flag, value, match
):
    model, data = setup
    assert main(fit_args(model, data, tmp_path / "r", flag, value)) == 2
    assert match in capsys.readouterr().err
    assert not (tmp_path / "r" / "fit.json").exists()


def test_cuda_requested_without_cuda_names_the_fix(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="no CUDA device here; use --device cpu"):
        load_kwargs("cuda", "auto", None)
    assert load_kwargs("auto", "bfloat16", None) == {"dtype": torch.bfloat16}
    assert load_kwargs("cpu", "auto", '{"": "cpu"}')["device_map"] == {"": "cpu"}


def test_size_on_meta_and_refusal_of_a_model_that_cannot_fit(monkeypatch):
    cfg = tiny_config("mixtral")
    n, nbytes = model_bytes(cfg, torch.bfloat16)
    with torch.device("meta"):
        from transformers import AutoModelForCausalLM

        assert n == sum(p.numel() for p in AutoModelForCausalLM.from_config(cfg).parameters())
    assert nbytes == 2 * n
    assert "GiB free on cpu" in check_fits(cfg, "cpu", "bfloat16", None)
    from vmoer_ppl.pipeline import placement

    monkeypatch.setattr(placement, "available_bytes", lambda device: 1000)
    with pytest.raises(MemoryError, match=r"--dtype bfloat16, --device-map auto"):
        check_fits(cfg, "cpu", "float32", None)
