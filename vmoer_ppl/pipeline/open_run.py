"""Open a fitted run for evaluation: the adapted model, its guides and the encoded sets."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from vmoer_ppl.pipeline.backbone import adapted, suffix_data, svi_sets
from vmoer_ppl.pipeline.config import FitConfig
from vmoer_ppl.pipeline.loading import load_model, model_fingerprint
from vmoer_ppl.pipeline.run_data import encode_sets
from vmoer_ppl.pipeline.run_dir import strip
from vmoer_ppl.pretrained import from_pretrained

log = logging.getLogger(__name__)


@dataclass
class OpenedRun:
    """Everything evaluation reads from a run directory.

    Attributes
    ----------
    cfg : FitConfig
        The run's settings.
    net, tok
        The adapted network and its tokenizer.
    enc : dict
        Encoded sets as stored (``train``, ``val``, ``id:<name>``, ``ood:<name>``).
    sizes : dict
        Questions per set.
    id_key : str
        ``"id:<name>"``.
    eval_sets : list of str
        The ID and OOD keys, in order.
    guides : dict
        Family to ``(model, guide)`` loaded from ``adapters/``.
    data : dict
        The sets as network inputs (frozen-prefix states attached where the cache applies).
    """

    cfg: FitConfig
    net: object
    tok: object
    enc: dict
    sizes: dict
    id_key: str
    eval_sets: list
    guides: dict
    data: dict


def open_run(out: Path, run: dict, cfg: FitConfig | None = None) -> OpenedRun:
    """Load a run's model (checked against its weight fingerprint), guides and data.

    Parameters
    ----------
    out : Path
        The run directory.
    run : dict
        Its ``run.json``.
    cfg : FitConfig, optional
        Settings to use (default: the run's ``config.json``).

    Returns
    -------
    OpenedRun
    """
    cfg = cfg or FitConfig.load(out)
    net, tok, label = load_model(cfg)
    net = adapted(cfg, out, net, tok)
    if (fp := model_fingerprint(net)) != run["fingerprint"]:
        raise ValueError(
            f"{out} was fitted on model {run['model']!r} (weights {run['fingerprint']}), but "
            f"{label!r} has weights {fp}; evaluate with the run's model"
        )
    hashes: dict = {}
    enc, sizes, id_label = encode_sets(cfg, tok, hashes)
    check_data(out, run, hashes, cfg)
    guides = {f: from_pretrained(net, out / "adapters" / f) for f in cfg.families}
    head = next(iter(guides.values()))[0].net
    data = {k: strip(v) for k, v in suffix_data(head, svi_sets(cfg, enc), net).items()}
    eval_sets = [k for k in enc if ":" in k]
    return OpenedRun(cfg, net, tok, enc, sizes, f"id:{id_label}", eval_sets, guides, data)


def check_data(out: Path, run: dict, hashes: dict, cfg: FitConfig) -> None:
    """Refuse sets whose content differs from what the fit saw (``run.json`` ``data_hashes``).

    Editing, shuffling or replacing a data file between fit and evaluation would otherwise
    re-draw the splits silently (the test split could then hold training questions).

    Raises
    ------
    ValueError
        Naming each set that changed and where it comes from.
    """
    saved = run.get("data_hashes")
    if saved is None:  # a run fitted before the hashes were recorded
        log.warning("%s records no data hashes; the sets cannot be checked against the fit", out)
        return
    changed = [k for k, v in hashes.items() if k in saved and v != saved[k]]
    changed += [k for k in saved if k not in hashes]
    if changed:
        name = cfg.dataset.name
        sources = {"train": name, "val": name, f"id:{run['id_set']}": name}
        named = ", ".join(f"{k} (from {sources.get(k, k.split(':', 1)[-1])})" for k in changed)
        raise ValueError(
            f"{out}: the data differ from what the fit saw: {named}; restore the files the run "
            "was fitted on, or fit again"
        )
