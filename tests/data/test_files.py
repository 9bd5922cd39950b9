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
        ({"Question": "q", "A": "a", "B": "b", "Answer": "B"}, ("a", "b"), 1),  # case aside
        ({"goal": "q", "sol1": "a", "sol2": "b", "label": 0}, ("a", "b"), 0),  # PIQA
        (  # SWAG: the ending0..3 run wins over sent1, sent2
            {"startphrase": "q", "sent1": "s", "sent2": "t"}
            | {f"ending{j}": x for j, x in enumerate("abcd")}
            | {"label": 2},
            ("a", "b", "c", "d"),
            2,
        ),
        ({"question": "q", "choices": ["a", "b", "c"], "answer": "c"}, ("a", "b", "c"), 2),
        (  # Social IQa: answerA..C, labels counted from 1 ("3": the option count)
            {"question": "q", "answerA": "a", "answerB": "b", "answerC": "c", "label": "3"},
            ("a", "b", "c"),
            2,
        ),
        ({"question": "q", "option_a": "a", "option_b": "b", "answer": "B"}, ("a", "b"), 1),
        ({"question": "q", "answers": ["a", "b", "c"], "label": 1}, ("a", "b", "c"), 1),  # ReClor
        ({"query": "q", "options": ["a", "b"], "correct_option": 1}, ("a", "b"), 1),  # LogiQA
        (  # MMLU-Pro: up to 10 options, the letter in "answer"
            {"question": "q", "options": list("abcdefghij"), "answer": "I", "answer_index": 8},
            tuple("abcdefghij"),
            8,
        ),
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
    upper = [{k.upper(): v for k, v in r.items()} for r in rows]  # a spreadsheet's export
    as_sciq = load_mcqa_file(write_rows(tmp_path / "SCIQ.jsonl", upper), source="sciq")
    assert as_sciq == recs


def test_medmcqa_layout_reads_its_columns_case_aside(tmp_path):
    csv = tmp_path / "med.csv"
    csv.write_text("Question,OPA,OPB,OPC,OPD,COP\nWhich bone?,femur,skull,rib,ulna,2\n")
    rec = load_mcqa_file(csv)[0]
    assert (rec.question, rec.choices, rec.answer) == (
        "Which bone?",
        ("femur", "skull", "rib", "ulna"),
        2,
    )


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


def test_numbered_columns_count_answers_from_0_or_1_as_the_file_says(tmp_path):
    wino = [  # WinoGrande: option1, option2 and answers "1" / "2"
        {"sentence": f"s{i} _", "option1": "a", "option2": "b", "answer": str(1 + i % 2)}
        for i in range(4)
    ]
    recs = load_mcqa_file(write_rows(tmp_path / "wino.jsonl", wino))
    assert [r.answer for r in recs] == [0, 1, 0, 1] and recs[0].question == "s0 _"
    copa = [  # COPA: choice1, choice2, labels 0 / 1, the premise read as the passage
        {"premise": f"p{i}", "choice1": "a", "choice2": "b", "question": "cause", "label": i % 2}
        for i in range(4)
    ]
    recs = load_mcqa_file(write_rows(tmp_path / "copa.jsonl", copa))
    assert [(r.question, r.context, r.answer) for r in recs[:2]] == [
        ("cause", "p0", 0),
        ("cause", "p1", 1),
    ]
    cosmos = [  # CosmosQA: answer0..3 beside the context and the label
        {"context": "c", "question": "q", "label": 3}
        | {f"answer{j}": x for j, x in enumerate("abcd")}
    ]
    rec = load_mcqa_file(write_rows(tmp_path / "cosmos.jsonl", cosmos))[0]
    assert (rec.choices, rec.answer, rec.context) == (("a", "b", "c", "d"), 3, "c")
    one = [{**wino[0], "answer": "1"}, {**wino[1], "answer": "1"}]  # "1" fits both readings
    with pytest.raises(ValueError, match=r"lies in 1..1, so whether it counts.*letters or 0-based"):
        load_mcqa_file(write_rows(tmp_path / "one.jsonl", one))


def test_a_race_article_is_the_passage_and_unknown_columns_are_named(tmp_path):
    race = {"article": "A text.", "question": "q", "options": ["a", "b"], "answer": "B"}
    rec = load_mcqa_file(write_rows(tmp_path / "race.jsonl", [race]))[0]
    assert (rec.context, rec.answer) == ("A text.", 1)
    odd = {"q": "q", "alts": ["a", "b"], "key": 0}
    with pytest.raises(ValueError, match=r"a question column \(question, question_stem, goal"):
        load_mcqa_file(write_rows(tmp_path / "odd.jsonl", [odd]))
    with pytest.raises(ValueError, match="neither a 0-based index, a letter A-B nor one option"):
        load_mcqa_file(write_rows(tmp_path / "t.jsonl", [{**race, "answer": "c"}]))


def test_prompts_cut_at_the_prefix_limit_are_counted_in_a_warning(tmp_path, caplog):
    import logging

    from tests.scoring.tiny_tokenizer import tiny_tokenizer
    from vmoer_ppl.pipeline.config import FitConfig
    from vmoer_ppl.pipeline.run_data import encode_sets
    from vmoer_ppl.scoring.batches import MAX_PREFIX_TOKENS, cut_prompts, encode_cloze

    long = " ".join(["very"] * MAX_PREFIX_TOKENS)
    rows = [
        {"question": f"what is {i} ?", "choices": ["blue", "red"], "answer": 0, "context": c}
        for i, c in enumerate([long, "sky"] * 6)
    ]
    path = write_rows(tmp_path / "ctx.jsonl", rows)
    enc = encode_cloze(load_mcqa_file(path), tiny_tokenizer(), with_context=True)
    assert enc["prompt_mask"].shape[1] == MAX_PREFIX_TOKENS and cut_prompts(enc) == 6
    cfg = FitConfig().replace(data=str(path), n_train=6, n_val=2, n_test=4, ood=())
    with caplog.at_level(logging.WARNING, logger="vmoer_ppl.pipeline.run_data"):
        enc, _, _ = encode_sets(cfg, tiny_tokenizer())
    n = {k: cut_prompts(v) for k, v in enc.items()}
    assert sum(n.values()) == 6 and f"{MAX_PREFIX_TOKENS} tokens or more were cut" in caplog.text
    assert all(f"{k} {v} of" in caplog.text for k, v in n.items() if v)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="vmoer_ppl.pipeline.run_data"):
        whole, _, _ = encode_sets(cfg.replace(max_prompt_tokens=512), tiny_tokenizer())
    assert "were cut" not in caplog.text  # --max-prompt-tokens 512 keeps every passage whole
    assert whole["train"]["prompt_mask"].sum(-1).max() > MAX_PREFIX_TOKENS


def test_answers_given_as_option_text_are_read_as_text_in_the_whole_file(tmp_path):
    rows = [  # numbers among numbers: "12" cannot be an index, so "2" is the option "2" too
        {"question": "q1", "choices": ["10", "11", "12", "13"], "answer": "12"},
        {"question": "q2", "choices": ["1", "2", "3", "4"], "answer": "2"},
    ]
    recs = load_mcqa_file(write_rows(tmp_path / "num.jsonl", rows))
    assert [r.choices[r.answer] for r in recs] == ["12", "2"]
    idx = [{**rows[1], "answer": "2"}, {**rows[1], "question": "q3", "answer": "0"}]
    recs = load_mcqa_file(write_rows(tmp_path / "idx.jsonl", idx))  # all read as indices
    assert [r.answer for r in recs] == [2, 0]


def test_ai2_jsonl_with_the_options_nested_in_the_question_is_read(tmp_path):
    rows = [  # ARC / OpenBookQA / CommonsenseQA / QASC as AI2 distributes them
        {
            "id": "arc1",
            "question": {
                "stem": "Which is a mammal?",
                "choices": [{"text": "whale", "label": "1"}, {"text": "shark", "label": "2"}],
            },
            "answerKey": "1",
        },
        {
            "answerKey": "C",
            "id": "csqa1",
            "question": {
                "question_concept": "door",
                "choices": [{"label": c, "text": t} for c, t in zip("ABC", "xyz", strict=True)],
                "stem": "A door is at a what?",
            },
        },
    ]
    recs = load_mcqa_file(write_rows(tmp_path / "ARC-Easy-Test.jsonl", rows))
    assert [(r.question, r.choices, r.answer) for r in recs] == [
        ("Which is a mammal?", ("whale", "shark"), 0),
        ("A door is at a what?", ("x", "y", "z"), 2),
    ]
    flat = [{"question": "q", "choices": ["a", "b"], "answer": 1}]  # a plain question: as before
    assert load_mcqa_file(write_rows(tmp_path / "flat.jsonl", flat))[0].answer == 1


MMLU_CSV = (  # MMLU's own data/test/<subject>_test.csv: no header, the answer's letter last
    '"Find the degree of Q(sqrt(2)) over Q.",0,4,2,6,C\n'
    '"Statement 1 | x. Statement 2 | y.","True, True","False, False","True, False",007,D\n'
)


def test_mmlu_csv_without_a_header_keeps_its_first_question_and_reads_cells_as_text(tmp_path):
    subjects = tmp_path / "test"
    subjects.mkdir()
    (subjects / "abstract_algebra_test.csv").write_text(MMLU_CSV)
    (subjects / "anatomy_test.csv").write_text('"Which bone?",femur,skull,rib,ulna,A\n')
    recs = load_mcqa_file(subjects / "abstract_algebra_test.csv")
    assert [(r.question, r.choices, r.answer) for r in recs] == [
        ("Find the degree of Q(sqrt(2)) over Q.", ("0", "4", "2", "6"), 2),
        (
            "Statement 1 | x. Statement 2 | y.",
            ("True, True", "False, False", "True, False", "007"),
            3,
        ),
    ]  # every row kept, "007" as written
    assert len(load_mcqa_file(subjects)) == 3  # every subject of the folder
    headed = tmp_path / "headed.csv"  # a header naming the parts is a header
    headed.write_text("question,A,B,C,D,answer\n" + MMLU_CSV)
    assert [r.choices[0] for r in load_mcqa_file(headed)] == ["0", "True, True"]
    trailing = tmp_path / "trailing.csv"  # an empty last header cell is not an answer letter
    trailing.write_text("q,A,B,\nWhat is blue?,sky,grass,\n")
    with pytest.raises(ValueError, match="missing field"):
        load_mcqa_file(trailing)


def test_truthfulqa_targets_become_options_shuffled_off_their_fixed_position(tmp_path):
    rows = [  # TruthfulQA's multiple-choice form: the correct option first in every row
        {
            "question": f"q{i}?",
            "mc1_targets": {"choices": [f"right{i}", "x", "y", "z"], "labels": [1, 0, 0, 0]},
            "mc2_targets": {"choices": [f"right{i}", "w", "x"], "labels": [1, 1, 0]},
        }
        for i in range(12)
    ]
    recs = load_mcqa_file(write_rows(tmp_path / "truthful_qa.jsonl", rows))
    assert all(r.choices[r.answer] == f"right{i}" for i, r in enumerate(recs))
    assert len({r.answer for r in recs}) > 1  # no longer always first
    assert recs == load_mcqa_file(tmp_path / "truthful_qa.jsonl")  # the same order every time
    two = [{**rows[0], "mc1_targets": {"choices": ["a", "b"], "labels": [1, 1]}}]
    with pytest.raises(ValueError, match="missing field"):  # two marked: not single choice
        load_mcqa_file(write_rows(tmp_path / "two.jsonl", two + rows[1:]))
