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
    p.write_text(json.dumps({"question": "q", "opts": ["a", "b"], "answer": 0}))
    with pytest.raises(ValueError, match=r"missing field\(s\) \['choices'\].*known layouts"):
        load_mcqa_file(p)
    with pytest.raises(ValueError, match=r"missing field\(s\) \['options'\]"):
        load_mcqa_file(p, choices="options")  # named columns: no layout guessed
    p.write_text(json.dumps({"question": "q", "choices": ["a", "b"], "answer": 5}))
    with pytest.raises(
        ValueError, match="bad.jsonl row 0: answer index 5 out of range for 2 choices"
    ):
        load_mcqa_file(p)
    with pytest.raises(ValueError, match="unsupported file type"):
        load_mcqa_file(tmp_path / "x.txt")


def write_rows(path, rows):
    path.write_text("\n".join(json.dumps(r) for r in rows))
    return path


@pytest.mark.parametrize(
    ("row", "choices", "answer"),
    [
        (  # ARC: labels may be digits, answerKey one of them
            {
                "question": "q",
                "choices": {"text": ["a", "b", "c"], "label": ["1", "2", "3"]},
                "answerKey": "2",
            },
            ("a", "b", "c"),
            1,
        ),
        (  # OpenBookQA: question_stem
            {
                "question_stem": "q",
                "choices": {"text": ["a", "b"], "label": ["A", "B"]},
                "answerKey": "B",
                "id": "7",
            },
            ("a", "b"),
            1,
        ),
        ({"question": "q", "options": ["a", "b", "c"], "label": 2}, ("a", "b", "c"), 2),
        ({"question": "q", "options": ["a", "b"], "answer": "A"}, ("a", "b"), 0),
        ({"ctx": "q", "endings": ["a", "b", "c", "d"], "label": "3"}, ("a", "b", "c", "d"), 3),
        (
            {"question": "q", "opa": "a", "opb": "b", "opc": "c", "opd": "d", "cop": 1},
            ("a", "b", "c", "d"),
            1,
        ),
        ({"question": "q", "A": "a", "B": "b", "C": "c", "answer": "C"}, ("a", "b", "c"), 2),
    ],
)
def test_the_common_published_layouts_are_recognised(tmp_path, row, choices, answer):
    rec = load_mcqa_file(write_rows(tmp_path / "set.jsonl", [row]))[0]
    assert (rec.question, rec.choices, rec.answer, rec.context) == ("q", choices, answer, "")


def test_sciq_layout_keeps_the_answer_text_and_shuffles_its_place(tmp_path):
    rows = [
        {
            "question": f"q{i}",
            "distractor1": "x",
            "distractor2": "y",
            "distractor3": "z",
            "correct_answer": f"right{i}",
            "support": f"passage {i}",
        }
        for i in range(20)
    ]
    recs = load_mcqa_file(write_rows(tmp_path / "sciq.jsonl", rows))
    assert all(r.choices[r.answer] == f"right{i}" for i, r in enumerate(recs))
    assert all(
        sorted(r.choices) == sorted(["x", "y", "z", f"right{i}"]) for i, r in enumerate(recs)
    )
    assert len({r.answer for r in recs}) > 1  # the file puts it last; the records do not
    assert [r.context for r in recs] == [f"passage {i}" for i in range(20)]  # support: passage
    assert recs == load_mcqa_file(tmp_path / "sciq.jsonl")  # the same order every time
    assert load_mcqa_file(tmp_path / "sciq.jsonl", context=None)[0].context == ""


def test_a_passage_column_is_read_and_a_named_one_must_exist(tmp_path):
    p = write_rows(tmp_path / "ctx.jsonl", [{**ROWS[0], "context": "The sky is blue."}])
    assert load_mcqa_file(p)[0].context == "The sky is blue."
    with pytest.raises(ValueError, match=r"missing field\(s\) \['passage'\]"):
        load_mcqa_file(p, context="passage")


def test_labels_that_do_not_match_the_options_are_named(tmp_path):
    row = {"question": "q", "choices": {"text": ["a", "b"], "label": ["A"]}, "answerKey": "A"}
    with pytest.raises(ValueError, match="bad.jsonl row 0: 1 labels for 2 options"):
        load_mcqa_file(write_rows(tmp_path / "bad.jsonl", [row]))


def test_a_file_with_passages_shows_them_in_the_prompt(tmp_path):
    from vmoer_ppl.pipeline.config import FitConfig
    from vmoer_ppl.pipeline.run_data import run_records

    rows = [{"question": f"q {i}?", "choices": ["a", "b"], "answer": 0} for i in range(12)]
    plain = write_rows(tmp_path / "plain.jsonl", rows)
    passages = write_rows(tmp_path / "ctx.jsonl", [{**r, "support": "text"} for r in rows])
    kw = {"n_train": 6, "n_val": 2, "n_test": 2, "ood": ()}
    assert run_records(FitConfig().replace(data=str(plain), **kw))[1] is False
    sets, shown, _ = run_records(FitConfig().replace(data=str(passages), **kw))
    assert shown is True and all(r.context == "text" for r in sets["train"])


def test_a_json_object_holding_the_questions_in_one_field_is_read(tmp_path):
    p = tmp_path / "nested.json"
    p.write_text(json.dumps({"version": "1.0", "data": ROWS}))
    recs = load_mcqa_file(p)
    assert [r.question for r in recs] == [r["question"] for r in ROWS]
    assert [r.answer for r in recs] == [0, 1]
