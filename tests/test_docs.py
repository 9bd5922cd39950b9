"""The docs site builds from the docstrings with no warning (`make docs`, mkdocs --strict)."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_docs_build_strict_with_the_generated_cli_reference(tmp_path):
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    subprocess.run([sys.executable, "docs/gen_cli.py"], cwd=ROOT, check=True, env=env)
    cli = (ROOT / "docs" / "cli.md").read_text()
    assert "## `vmoer fit`" in cli and "--prior-scale" in cli and "--log-with" in cli
    mkdocs = [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")]
    res = subprocess.run(mkdocs, cwd=ROOT, capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    api = (tmp_path / "site" / "api" / "index.html").read_text()
    assert "bayesianize" in api and "tune_prior" in api
