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


def test_duplicates_are_dropped_before_splitting_and_never_cross_splits(tmp_path, caplog):
    from vmoer_ppl.pipeline.config import FitConfig
    from vmoer_ppl.pipeline.run_data import run_records

    rows = [{"question": f"q {i}?", "choices": ["a", "b"], "answer": 0} for i in range(30)]
    rows += [{"question": "  Q 3? ", "choices": ["b", "a"], "answer": 1}] * 5  # same as q 3
    path = tmp_path / "dup.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    cfg = FitConfig().replace(data=str(path), n_train=20, n_val=4, n_test=6, ood=())
    sets, _, _ = run_records(cfg)
    texts = [r.question.strip().lower() for k in ("train", "val", "id:dup") for r in sets[k]]
    assert len(texts) == len(set(texts)) == 30
    assert "dropped 5 duplicate questions" in caplog.text


def test_an_ood_set_holding_id_questions_is_refused(setup, tmp_path, capsys):
    model, data = setup
    argv = fit_args(model, data, tmp_path / "run")
    argv[argv.index("--ood") + 1 : argv.index("--ood") + 3] = [data]  # the ID file as OOD
    assert main(argv) == 2
    assert "shares" in capsys.readouterr().err


@pytest.mark.parametrize(
    "content, message",
    [
        ("garbage", "is damaged"),
        ("{}", "lacks"),
        ('{"meta": {}, "results": {"x": Infinity}}', "is damaged"),
    ],
)
def test_damaged_metrics_are_named_before_comparing(tmp_path, content, message, capsys):
    from tests.pipeline.test_compare import fake_run

    runs = [fake_run(tmp_path, s, 0.7, 0.7) for s in (0, 1)]
    (Path(runs[1]) / "metrics.json").write_text(content)
    assert main(["compare", *map(str, runs)]) == 2
    err = capsys.readouterr().err
    assert message in err and "--overwrite" in err


def test_the_letter_format_refuses_more_options_than_letters(tmp_path):
    from vmoer_ppl.pipeline.config import FitConfig
    from vmoer_ppl.pipeline.run_data import encode_sets

    rows = [
        {"question": f"q{i}", "choices": [f"o{j}" for j in range(12)], "answer": 0}
        for i in range(20)
    ]
    path = tmp_path / "wide.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    cfg = FitConfig().replace(data=str(path), n_train=5, n_val=2, n_test=3, ood=(), scorer="letter")
    with pytest.raises(ValueError, match="12 options; the letter format labels at most 10"):
        encode_sets(cfg, tokenizer=None)
