"""The questions of a run: ID train/val/test and the OOD sets, as records and as token tensors."""

from __future__ import annotations

import hashlib
import json
import logging
import random
from collections import Counter
from pathlib import Path

import torch

from vmoer_ppl.data.files import FORMATS, load_mcqa_file
from vmoer_ppl.data.folders import data_exists, data_label, is_data_path
from vmoer_ppl.data.hub import HUB, paper_splits
from vmoer_ppl.data.packaged import PACKAGED
from vmoer_ppl.data.records import MCQARecord, Splits, check_disjoint, dedupe, question_key
from vmoer_ppl.pipeline.config import FitConfig
from vmoer_ppl.pipeline.sets import ID_CANDIDATES, OOD_FOR, SetSpec, id_splits, ood_records
from vmoer_ppl.scoring.batches import cut_prompts, encode_cloze
from vmoer_ppl.scoring.letter import LETTERS, encode_letter
from vmoer_ppl.scoring.names import ScorerKind, parse_scorer

log = logging.getLogger(__name__)

#: The paper's role of each packaged OOD set (PAPER.md §5).
ROLES = {"arc_easy": "near", "arc_challenge": "near", "openbookqa": "near"}


def _existing(flag: str, name: str) -> str:
    """``name``, a local data file, folder or pattern that is there (else the flag's error)."""
    if not data_exists(name):
        raise FileNotFoundError(f"{flag} {name}: no such file (or no file matches)")
    return name


def _file_splits(path: str, cfg: FitConfig) -> Splits:
    records, dropped = dedupe(load_mcqa_file(path))
    if dropped:
        log.warning("%s: dropped %d duplicate questions (same text and options)", path, dropped)
    random.Random(cfg.seed).shuffle(records)
    n_test, n_held = cfg.dataset.n_test, cfg.dataset.n_test + cfg.dataset.n_val
    if len(records) <= n_held:
        raise ValueError(
            f"{path} has {len(records)} questions; need more than n_test + n_val = "
            f"{n_held} (lower --n-test / --n-val)"
        )
    test, val = records[:n_test], records[n_test:n_held]
    return check_disjoint(Splits(records[n_held:][: cfg.dataset.n_train], val, test))


def id_data(cfg: FitConfig) -> tuple[Splits, bool, str]:
    """The ID splits, whether prompts show a support passage, and the set's label."""
    d = cfg.dataset
    n = {"n_test": d.n_test, "n_val": d.n_val, "n_train": d.n_train}
    if d.name in ID_CANDIDATES:
        spec = ID_CANDIDATES[d.name]
        return id_splits(spec, **n, seed=cfg.seed), spec.with_context, spec.label
    if d.name.startswith("hub:"):
        name = d.name.removeprefix("hub:")
        if name not in HUB:
            raise ValueError(f"--data {d.name}: unknown hub set; known: hub:{', hub:'.join(HUB)}")
        return paper_splits(name, path=d.hub_path, seed=cfg.seed, **n), False, name
    if is_data_path(d.name):
        splits = _file_splits(_existing("--data", d.name), cfg)
        passages = any(r.context for part in (splits.train, splits.val, splits.test) for r in part)
        return splits, passages, data_label(Path(d.name))  # a passage column is shown
    raise ValueError(
        f"--data {d.name!r}: use a packaged set ({', '.join(ID_CANDIDATES)}), hub:<name> "
        f"({', '.join(HUB)}), a {'/'.join(FORMATS)} file, a folder or glob pattern of them, or "
        "a datasets save_to_disk folder"
    )


def ood_data(cfg: FitConfig) -> dict[str, list[MCQARecord]]:
    """OOD sets keyed ``"<role>:<label>"`` (near/far for packaged sets, ood for files)."""
    names = cfg.dataset.ood
    if names is None:
        default = OOD_FOR.get(cfg.dataset.name, OOD_FOR["openbookqa"])
        return {f"{s.role}:{s.label}": ood_records(s, cfg.dataset.n_ood, cfg.seed) for s in default}
    out = {}
    for name in names:
        if name in PACKAGED:
            base = name.split(":")[0]
            spec = SetSpec(name, ROLES.get(base, "far"))
            out[f"{spec.role}:{spec.label}"] = ood_records(spec, cfg.dataset.n_ood, cfg.seed)
        elif is_data_path(name):
            recs = load_mcqa_file(_existing("--ood", name))
            random.Random(cfg.seed + 1).shuffle(recs)
            out[f"ood:{data_label(Path(name))}"] = recs[: cfg.dataset.n_ood]
        else:
            raise ValueError(
                f"--ood {name!r}: neither a packaged set ({', '.join(PACKAGED)}) nor a data file "
                "or folder"
            )
    return out


def run_records(cfg: FitConfig) -> tuple[dict[str, list[MCQARecord]], bool, str]:
    """Every set of a run: ``train``, ``val``, ``id:<label>`` and the OOD sets."""
    splits, with_context, label = id_data(cfg)
    sets = {"train": splits.train, "val": splits.val, f"id:{label}": splits.test, **ood_data(cfg)}
    id_keys = {question_key(r) for k in ("train", "val", f"id:{label}") for r in sets[k]}
    for name, recs in sets.items():
        if name.split(":")[0] in ("near", "far", "ood"):
            if shared := sum(question_key(r) in id_keys for r in recs):
                raise ValueError(
                    f"OOD set {name} shares {shared} of its {len(recs)} questions with the ID "
                    f"set {label!r}; an OOD set must not contain ID questions (check --ood)"
                )
    return sets, with_context, label


def _same_width(name: str, records: list[MCQARecord], width: int) -> list[MCQARecord]:
    kept = [r for r in records if len(r.choices) == width]
    if not kept:
        raise ValueError(
            f"{name}: no question has the ID set's {width} options, which the letter format "
            "needs; use --scorer cloze or other --ood sets"
        )
    if len(kept) < len(records):
        log.warning(
            "%s: the letter format needs one option count; kept %d of %d questions with %d options",
            name,
            len(kept),
            len(records),
            width,
        )
    return kept


def record_hash(records) -> str:
    """SHA-256 (16 hex digits) of questions, options, answers and passages, in order."""
    h = hashlib.sha256()
    for r in records:
        h.update(json.dumps([r.question, list(r.choices), r.answer, r.context]).encode())
    return h.hexdigest()[:16]


def encode_sets(
    cfg: FitConfig, tokenizer, hashes: dict | None = None
) -> tuple[dict, dict[str, int], str]:
    """Token tensors of every set for the run's scorer, their sizes, and the ID label.

    With ``hashes`` (a dict), also records each set's :func:`record_hash` into it.
    """
    sets, with_context, label = run_records(cfg)
    if hashes is not None:
        hashes.update({k: record_hash(v) for k, v in sets.items()})
    if parse_scorer(cfg.dataset.scorer)[0] is ScorerKind.CLOZE:
        most = cfg.dataset.max_prompt_tokens
        enc = {
            k: encode_cloze(v, tokenizer, with_context=with_context, max_prefix=most)
            for k, v in sets.items()
        }
        cut = {k: f"{n} of {len(sets[k])}" for k, v in enc.items() if (n := cut_prompts(v, most))}
        if cut:
            log.warning(
                "prompts of %d tokens or more were cut from the left (a passage loses its "
                "beginning, the question is kept; --max-prompt-tokens keeps more): %s",
                most,
                ", ".join(f"{k} {v}" for k, v in cut.items()),
            )
    else:
        width = Counter(len(r.choices) for r in sets[f"id:{label}"]).most_common(1)[0][0]
        if width > len(LETTERS):
            raise ValueError(
                f"the ID set's questions have {width} options; the letter format labels at most "
                f"{len(LETTERS)} (A-{LETTERS[-1]}); use --scorer cloze"
            )
        sets = {k: _same_width(k, v, width) for k, v in sets.items()}
        enc = {k: encode_letter(v, tokenizer) for k, v in sets.items()}
        for v in enc.values():  # the letter head's option count (C), kept with the data
            v["num_options"] = torch.full_like(v["labels"], width)
    return enc, {k: len(v) for k, v in sets.items()}, label
