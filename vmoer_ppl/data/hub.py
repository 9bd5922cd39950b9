"""The paper's sets from the Hugging Face hub through ``datasets``, cut into the paper's splits.

PAPER.md §4 (thesis ``load_exp_dataset``, seed 42), with one fix: validation is the last 50 of the
training pool taken *before* truncation, so it never overlaps train (the thesis code's quirk).

=================  ================================  ==========================================
name               hub repository (config)           test / train pool
=================  ================================  ==========================================
``openbookqa``     allenai/openbookqa (main)         official test 500 / train+validation
``arc_challenge``  allenai/ai2_arc (ARC-Challenge)   500 shuffled test / rest + train+validation
``arc_easy``       allenai/ai2_arc (ARC-Easy)        500 shuffled test / train+validation
``sciq``           allenai/sciq                      first 500 test / train+validation
``mmlu_law``       cais/mmlu (professional_law)      500 of validation+test / the rest
``medmcqa``        openlifescienceai/medmcqa         "Medicine", single choice, shuffled:
                                                     first 500 / the next ones
=================  ================================  ==========================================

``path`` points at a local copy laid out like the hub repository (``<path>/<config dir>/
<split>-00000-of-00001.parquet``), for machines without a hub and for tests.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from vmoer_ppl.data.packaged import arc_style_row, mmlu_row, sciq_row
from vmoer_ppl.data.records import (
    MCQARecord,
    Splits,
    check_disjoint,
    dedupe,
    question_key,
    shuffle_choices,
)

log = logging.getLogger(__name__)


def medmcqa_row(i: int, row: dict) -> MCQARecord:
    """A MedMCQA row (options ``opa``..``opd``, ``cop`` the 0-based answer)."""
    choices = (row["opa"], row["opb"], row["opc"], row["opd"])
    return MCQARecord(row["question"], choices, int(row["cop"]), "medmcqa", str(row["id"]))


@dataclass(frozen=True)
class HubSet:
    """Where a set lives on the hub and how its rows become records."""

    repo: str
    config: str | None  # hub config name; None for the default one
    data_dir: str  # the config's folder in the repository (used with a local ``path``)
    convert: Callable[[int, dict], MCQARecord]


HUB: dict[str, HubSet] = {
    "openbookqa": HubSet(
        "allenai/openbookqa", "main", "main", arc_style_row("openbookqa", "question_stem")
    ),
    "arc_challenge": HubSet(
        "allenai/ai2_arc",
        "ARC-Challenge",
        "ARC-Challenge",
        arc_style_row("arc_challenge", "question"),
    ),
    "arc_easy": HubSet(
        "allenai/ai2_arc", "ARC-Easy", "ARC-Easy", arc_style_row("arc_easy", "question")
    ),
    "sciq": HubSet("allenai/sciq", None, "data", sciq_row),
    "mmlu_law": HubSet("cais/mmlu", "professional_law", "professional_law", mmlu_row),
    "medmcqa": HubSet("openlifescienceai/medmcqa", None, "data", medmcqa_row),
}


def load_hub_split(hs: HubSet, split: str, path: str | Path | None = None):
    """One split of a hub set through ``datasets``: from the hub, or from a local copy ``path``.

    Raises
    ------
    ValueError
        When the hub cannot be reached (no network, ``HF_HUB_OFFLINE``), naming ``--hub-path``.
    """
    from datasets import load_dataset

    if path is not None:
        return load_dataset(str(path), data_dir=hs.data_dir, split=split)
    try:
        return load_dataset(hs.repo, hs.config, split=split)
    except ConnectionError as err:
        raise ValueError(
            f"{hs.repo}: the hub cannot be reached from this machine ({type(err).__name__}); "
            f"pass --hub-path DIR, a local copy in the hub layout "
            f"(DIR/{hs.data_dir}/{split}-00000-of-00001.parquet), or use a packaged set or a "
            "local file"
        ) from None


def read_split(name: str, split: str, *, path: str | Path | None = None) -> list[MCQARecord]:
    """One split of a hub set as records.

    Parameters
    ----------
    name : str
        A key of :data:`HUB`.
    split : str
        ``"train"``, ``"validation"`` or ``"test"``.
    path : str or Path, optional
        Local copy in the hub's layout; default: the hub itself.

    Returns
    -------
    list of MCQARecord
    """
    if name not in HUB:
        raise ValueError(f"unknown hub set {name!r}; known: {', '.join(HUB)}")
    hs = HUB[name]
    ds = load_hub_split(hs, split, path)
    # ids qualified by split: several sets number rows per split (SciQ, MMLU)
    records = [hs.convert(i, row) for i, row in enumerate(ds)]
    return [replace(r, id=f"{split}/{r.id}") for r in records]


def _test_and_pool(name: str, path, rng: random.Random, n_test: int):
    read = lambda split: read_split(name, split, path=path)  # noqa: E731
    if name in ("openbookqa", "sciq"):
        return read("test")[:n_test], read("train") + read("validation")
    if name in ("arc_challenge", "arc_easy"):
        test = read("test")
        rng.shuffle(test)
        rest = test[n_test:] if name == "arc_challenge" else []
        return test[:n_test], read("train") + read("validation") + rest
    if name == "mmlu_law":
        rows = read("validation") + read("test")
        rng.shuffle(rows)
        return rows[:n_test], rows[n_test:]
    hs = HUB[name]  # medmcqa: the "Medicine" single-choice questions of the labelled train split
    ds = load_hub_split(hs, "train", path)
    rows = [
        medmcqa_row(i, r)
        for i, r in enumerate(ds)
        if r["subject_name"] == "Medicine" and r["choice_type"] == "single"
    ]
    rng.shuffle(rows)
    return rows[:n_test], rows[n_test:]


def paper_splits(
    name: str,
    *,
    path: str | Path | None = None,
    seed: int = 42,
    n_test: int = 500,
    n_val: int = 50,
    n_train: int = 5000,
) -> Splits:
    """The paper's train / val / test splits of a hub set (PAPER.md §4), disjoint.

    Parameters
    ----------
    name : str
        A key of :data:`HUB`.
    path : str or Path, optional
        Local copy in the hub's layout.
    seed : int
        Seed of the shuffles (the thesis: 42) and of the choice order.
    n_test, n_val, n_train : int
        Split sizes; the pool is cut to ``n_train + n_val`` before validation is taken.

    Returns
    -------
    Splits
    """
    rng = random.Random(seed)
    test, pool = _test_and_pool(name, path, rng, n_test)
    test, _ = dedupe(test)
    in_test = {question_key(r) for r in test}
    unique, _ = dedupe(pool)
    kept = [r for r in unique if question_key(r) not in in_test]
    if len(kept) < len(pool):
        dropped = len(pool) - len(kept)
        log.warning("%s: dropped %d duplicate questions before splitting", name, dropped)
    pool = kept[: n_train + n_val]
    if len(pool) <= n_val:
        raise ValueError(f"{name}: only {len(pool)} pool questions for n_val={n_val}")
    train, val = pool[:-n_val], pool[-n_val:]
    return check_disjoint(Splits(*(shuffle_choices(part, seed) for part in (train, val, test))))
