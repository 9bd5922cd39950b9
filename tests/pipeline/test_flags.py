"""Flags from FitConfig's settings, sections included, and ``--config`` files (JSON or YAML)."""

import json

import pytest

from vmoer_ppl.cli import build_parser
from vmoer_ppl.pipeline.config import FitConfig
from vmoer_ppl.pipeline.demo import DEMO
from vmoer_ppl.pipeline.flags import config_from
from vmoer_ppl.settings import flat_paths, leaf_field


def parse(*argv, defaults=None):
    args = build_parser().parse_args(["fit", *argv])
    return config_from(args, defaults or FitConfig())


def test_every_setting_is_a_documented_flag():
    helps = build_parser()._subparsers._group_actions[0].choices["fit"].format_help()
    cfg = FitConfig()
    for name, path in flat_paths(cfg).items():
        assert leaf_field(cfg, path)[0].metadata.get("help"), f"{name} has no help text"
        assert "--" + name.replace("_", "-") in helps


def test_flags_parse_by_the_field_types():
    cfg = parse("--n-train", "7", "--lr", "0.5", "--svi-epochs", "none", "--families", "logit-fc")
    got = (cfg.dataset.n_train, cfg.svi.lr, cfg.svi.epochs, cfg.families)
    assert got == (7, 0.5, None, ("logit-fc",))
    cfg = parse("--lr-grid", "1e-3", "1e-2", "--overwrite", "--patience", "none")
    assert cfg.lr_grid == (1e-3, 1e-2) and cfg.overwrite and cfg.svi.patience is None
    assert parse() == FitConfig()


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_a_config_file_sets_defaults_and_given_flags_win(tmp_path, suffix):
    values = {"n_train": 12, "families": ["logit-mf", "temperature"], "lr": 0.02}
    path = tmp_path / f"run{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps(values))
    else:
        path.write_text("n_train: 12\nfamilies: [logit-mf, temperature]\nlr: 0.02\n")
    cfg = parse("--config", str(path), "--lr", "0.5")
    assert cfg.dataset.n_train == 12 and cfg.families == ("logit-mf", "temperature")
    assert cfg.svi.lr == 0.5
    assert parse("--config", str(path), defaults=DEMO).dataset.n_val == DEMO.dataset.n_val


def test_a_config_file_may_nest_sections_as_config_json_does(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("svi:\n  num_steps: 9\n  optimizer: adam\ndataset:\n  n_val: 5\nseed: 2\n")
    cfg = parse("--config", str(path), "--n-val", "6")
    assert (cfg.svi.num_steps, cfg.svi.optimizer, cfg.dataset.n_val, cfg.seed) == (9, "adam", 6, 2)
    FitConfig(out=str(tmp_path)).save(tmp_path)  # a run's own config.json is a config file too
    assert parse("--config", str(tmp_path / "config.json")) == FitConfig(out=str(tmp_path))


def test_config_files_are_data_only_and_checked(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("n_train: !!python/object/apply:os.system ['echo hi']\n")
    with pytest.raises(ValueError, match="not a valid config file"):
        parse("--config", str(bad))
    typo = tmp_path / "typo.json"
    typo.write_text(json.dumps({"n_trian": 3}))
    with pytest.raises(ValueError, match=r"unknown settings \['n_trian'\]"):
        parse("--config", str(typo))
