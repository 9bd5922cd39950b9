"""FitConfig hands SVI its settings through one declared map (no field copied by hand)."""

from dataclasses import fields

from vmoer_ppl.infer.svi_config import SVIConfig
from vmoer_ppl.pipeline.config import SVI_FIELDS, FitConfig


def test_every_mapped_name_exists_on_both_sides():
    fit, svi = {f.name for f in fields(FitConfig)}, {f.name for f in fields(SVIConfig)}
    assert set(SVI_FIELDS) <= fit, set(SVI_FIELDS) - fit
    assert set(SVI_FIELDS.values()) <= svi, set(SVI_FIELDS.values()) - svi


def test_svi_config_carries_the_run_settings_and_the_runtime_ones():
    cfg = FitConfig(svi_steps=7, svi_epochs=1.5, eval_every=3, patience=None, seed=4)
    cfg.predict_mode, cfg.val_samples, cfg.num_samples = "mc", None, 11
    svi = cfg.svi_config(lr=0.5, shards=2, progress=False)
    for name, target in SVI_FIELDS.items():
        assert getattr(svi, target) == getattr(cfg, name), name
    assert (svi.lr, svi.shards, svi.progress) == (0.5, 2, False)
    assert svi.val_samples == 11  # num_samples when val_samples is None
    assert FitConfig(val_samples=5).svi_config().val_samples == 5
