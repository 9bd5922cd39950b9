"""The hub path through `datasets`, on local files in the hub's layout (parquet per split)."""

from collections import Counter

import pytest
from datasets import Dataset

from vmoer_ppl.data.hub import paper_splits, read_split


def write(root, folder, split, rows):
    (root / folder).mkdir(parents=True, exist_ok=True)
    Dataset.from_list(rows).to_parquet(str(root / folder / f"{split}-00000-of-00001.parquet"))


def obqa_rows(split, n):
    return [
        {
            "id": f"{split}-{i}",
            "question_stem": f"q{i} of {split}?",
            "choices": {"text": ["w", "x", "y", "z"], "label": ["A", "B", "C", "D"]},
            "answerKey": "ABCD"[i % 4],
        }
        for i in range(n)
    ]


@pytest.fixture
def hub_copy(tmp_path):
    for split, n in (("train", 120), ("validation", 30), ("test", 40)):
        write(tmp_path, "main", split, obqa_rows(split, n))
    for split in ("train", "validation", "test"):  # same row numbers, different questions
        sciq = [
            {
                "question": f"s{i} of {split}",
                "distractor1": "a",
                "distractor2": "b",
                "distractor3": "c",
                "correct_answer": f"right{i}",
                "support": "passage",
            }
            for i in range(25)
        ]
        write(tmp_path, "data", split, sciq)
    return tmp_path


def test_read_split_converts_rows_with_answer_keys(hub_copy):
    recs = read_split("openbookqa", "test", path=hub_copy)
    assert len(recs) == 40
    assert [r.answer for r in recs[:5]] == [0, 1, 2, 3, 0]
    assert recs[1].choices[recs[1].answer] == "x" and recs[0].id == "test/test-0"


def test_paper_splits_are_disjoint_with_the_official_test(hub_copy):
    s = paper_splits("openbookqa", path=hub_copy, n_test=500, n_val=50, n_train=100)
    assert (len(s.train), len(s.val), len(s.test)) == (100, 50, 40)
    assert {r.id.split("/")[0] for r in s.test} == {"test"}
    pool = {r.id for r in s.train} | {r.id for r in s.val}
    assert len(pool) == 150 and not pool & {r.id for r in s.test}
    keys = {r.id: r for r in read_split("openbookqa", "test", path=hub_copy)}
    for r in s.test:  # choices shuffled, the right answer kept
        orig = keys[r.id]
        assert r.choices[r.answer] == orig.choices[orig.answer]


def test_rows_numbered_per_split_do_not_collide(hub_copy):
    s = paper_splits("sciq", path=hub_copy, n_test=10, n_val=5, n_train=30)
    assert (len(s.train), len(s.val), len(s.test)) == (30, 5, 10)
    assert all(r.choices[r.answer].startswith("right") for r in s.train + s.val + s.test)
    assert max(Counter(r.answer for r in s.train + s.val + s.test).values()) < 30


def test_unknown_set_names_the_known_ones():
    with pytest.raises(ValueError, match="openbookqa"):
        read_split("obqa", "test")


def test_questions_repeated_across_official_splits_stay_in_test_only(hub_copy, caplog):
    dup = {"question": "s3 of test", "distractor1": "a", "distractor2": "b", "distractor3": "c"}
    rows = [{**dup, "correct_answer": "right3", "support": "passage"}] * 3
    write(hub_copy, "data", "validation", rows)
    s = paper_splits("sciq", path=hub_copy, n_test=25, n_val=5, n_train=30)
    assert all(r.question != "s3 of test" for r in s.train + s.val)
    assert "dropped 3 duplicate questions" in caplog.text


def test_an_unreachable_hub_names_the_local_copy_flag(monkeypatch):
    import datasets

    def offline(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'allenai/sciq' on the Hub (LocalEntryNotFoundError)")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(ValueError, match=r"allenai/sciq: the hub cannot be reached.*--hub-path"):
        read_split("sciq", "test")
