"""FitConfig holds its sections (SVIConfig itself for SVI); config.json nests them."""

import json

import pytest

from vmoer_ppl.infer.svi_config import SVIConfig
from vmoer_ppl.pipeline.config import FitConfig
from vmoer_ppl.pipeline.demo import DEMO
from vmoer_ppl.pipeline.stage1 import LoRASettings
from vmoer_ppl.settings import flat_paths, flat_values


def test_the_run_holds_an_svi_config_and_a_lora_settings_not_copies():
    cfg = FitConfig()
    assert type(cfg.svi) is SVIConfig and type(cfg.stage1) is LoRASettings
    fit_fields = {name for name, path in flat_paths(cfg).items() if len(path) == 1}
    assert not fit_fields & {"svi_steps", "batch_size", "lr", "lora_steps"}


def test_svi_config_carries_the_run_settings_and_the_runtime_ones():
    cfg = FitConfig().replace(svi_steps=7, svi_epochs=1.5, eval_every=3, patience=None, seed=4)
    cfg = cfg.replace(predict_mode="mc", val_samples=None, num_samples=11)
    svi = cfg.svi_config(lr=0.5, shards=2, progress=False)
    assert (svi.num_steps, svi.epochs, svi.eval_every, svi.patience) == (7, 1.5, 3, None)
    assert (svi.seed, svi.val_mode, svi.val_link) == (4, "mc", "second-order")
    assert (svi.lr, svi.shards, svi.progress) == (0.5, 2, False)
    assert svi.val_samples == 11  # num_samples when val_samples is None
    assert FitConfig().replace(val_samples=5).svi_config().val_samples == 5


def test_replace_copies_sections_so_the_demo_recipe_never_changes():
    before = flat_values(DEMO)
    changed = DEMO.replace(lr=0.5, n_test=3, lora_steps=1)
    assert (changed.svi.lr, changed.dataset.n_test, changed.stage1.steps) == (0.5, 3, 1)
    assert flat_values(DEMO) == before
    with pytest.raises(ValueError, match=r"unknown settings \['n_trian'\]"):
        DEMO.replace(n_trian=3)


def test_config_json_nests_the_sections_and_round_trips(tmp_path):
    cfg = DEMO.replace(out=str(tmp_path), ood=("arc_easy:test",), lr_grid=(1e-3, 1e-2))
    cfg.save(tmp_path)
    raw = json.loads((tmp_path / "config.json").read_text())
    assert (
        raw["svi"]["num_steps"] == cfg.svi.num_steps and raw["dataset"]["name"] == cfg.dataset.name
    )
    assert "progress" not in raw["svi"] and "checkpoint_dir" not in raw["svi"]  # runtime ones
    assert FitConfig.load(tmp_path) == cfg


def test_a_flat_config_json_of_an_earlier_version_loads(tmp_path):
    cfg = DEMO.replace(out=str(tmp_path), seed=3)
    flat = {**flat_values(cfg), "embedded": {"moe_layers": 8}, "logit_prior_scale": "relative:0.5"}
    for name in ("lora_alpha", "lora_dropout", "lora_batch_size", "optimizer", "clip_norm"):
        flat.pop(name)  # settings that were not flags then
    flat.pop("prior_scale")
    (tmp_path / "config.json").write_text(json.dumps(flat))
    assert FitConfig.load(tmp_path) == cfg


def test_a_config_json_with_an_unknown_setting_is_refused_naming_it(tmp_path):
    FitConfig(out=str(tmp_path)).save(tmp_path)
    raw = json.loads((tmp_path / "config.json").read_text())
    raw["svi"]["num_stepz"] = 3
    (tmp_path / "config.json").write_text(json.dumps(raw))
    with pytest.raises(ValueError, match=r"config.json: unknown settings \['svi.num_stepz'\]"):
        FitConfig.load(tmp_path)
