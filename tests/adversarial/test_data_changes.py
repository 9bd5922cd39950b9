"""Evaluation refuses data that differ from what the fit saw."""

import json
from pathlib import Path

import pytest

from tests.pipeline.test_fit_cli import fit_args
from vmoer_ppl.cli import main


@pytest.mark.parametrize("change", ["edit", "shuffle"])
def test_an_edited_or_shuffled_data_file_is_named_at_evaluation(setup, tmp_path, change, capsys):
    model, data = setup
    run = tmp_path / "run"
    assert main(fit_args(model, data, run, "--families", "logit-mf")) == 0
    assert json.loads((run / "run.json").read_text())["data_hashes"]
    lines = Path(data).read_text().splitlines()
    if change == "edit":
        row = json.loads(lines[5])
        row["question"] += " exactly"
        lines[5] = json.dumps(row)
    else:
        lines = lines[1:] + lines[:1]
    Path(data).write_text("\n".join(lines))
    capsys.readouterr()
    assert main(["evaluate", str(run)]) == 2
    err = capsys.readouterr().err
    assert "differ from what the fit saw" in err and data in err and "fit again" in err
    assert not (run / "metrics.json").exists()
