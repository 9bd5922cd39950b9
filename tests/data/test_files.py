"""MCQA records from local jsonl, csv and parquet files; bad files get a clear message."""

import json

import pytest

from vmoer_ppl.data import load_mcqa_file

ROWS = [
    {"question": "What is blue?", "choices": ["sky", "grass", "sun"], "answer": 0},
    {"question": "What is hot?", "choices": ["ice", "sun", "snow"], "answer": "B"},
]


def test_jsonl_with_index_and_letter_answers(tmp_path):
    p = tmp_path / "mine.jsonl"
    p.write_text("\n".join(json.dumps(r) for r in ROWS))
    recs = load_mcqa_file(p)
    assert [r.answer for r in recs] == [0, 1] and recs[1].choices == ("ice", "sun", "snow")
    assert recs[0].source == "mine"


def test_csv_with_one_column_per_option_and_parquet(tmp_path):
    csv = tmp_path / "q.csv"
    csv.write_text("q,A,B,C,key\nWhat is blue?,sky,grass,sun,A\nWhat is hot?,ice,sun,snow,1\n")
    recs = load_mcqa_file(csv, question="q", choices=["A", "B", "C"], answer="key")
    assert [r.answer for r in recs] == [0, 1]
    import pandas as pd

    pq = tmp_path / "q.parquet"
    pd.DataFrame([{**r, "answer": str(r["answer"])} for r in ROWS]).to_parquet(pq)
    assert [r.answer for r in load_mcqa_file(pq)] == [0, 1]


def test_missing_field_and_bad_answer_are_named(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_text(json.dumps({"question": "q", "options": ["a", "b"], "answer": 0}))
    with pytest.raises(ValueError, match=r"missing field\(s\) \['choices'\]"):
        load_mcqa_file(p)
    p.write_text(json.dumps({"question": "q", "choices": ["a", "b"], "answer": 5}))
    with pytest.raises(
        ValueError, match="bad.jsonl row 0: answer index 5 out of range for 2 choices"
    ):
        load_mcqa_file(p)
    with pytest.raises(ValueError, match="unsupported file type"):
        load_mcqa_file(tmp_path / "x.txt")
