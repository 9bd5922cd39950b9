"""Scripts and the CLI are smoke-tested with tiny settings (STYLE rule 25)."""

import json
import subprocess
import sys
from pathlib import Path

from vmoer_ppl.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_benchmark_svi_step_runs_and_writes_json(tmp_path):
    out = tmp_path / "svi_step.json"
    cmd = [
        sys.executable,
        str(ROOT / "benchmarks/svi_step.py"),
        "--repeats",
        "1",
        "--batch-size",
        "2",
        "--num-samples",
        "3",
        "--hidden",
        "8",
        "--experts",
        "4",
        "--layers",
        "1",
        "--out",
        str(out),
    ]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    result = json.loads(out.read_text())
    assert result["fused_over_reference"] > 0 and result["vectorised_over_looped"] > 0


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
