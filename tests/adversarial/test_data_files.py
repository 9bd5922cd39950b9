"""Hostile or careless MCQA files: every bad row is named, nothing is coerced, no traceback."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vmoer_ppl.data.files import load_mcqa_file


def write(tmp_path, rows, name="qa.jsonl"):
    path = tmp_path / name
    path.write_text("\n".join(json.dumps(r) for r in rows))
    return path


GOOD = {"question": "q?", "choices": ["a", "b", "c"], "answer": 1}


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"answer": 1.7}, "answer 1.7 is neither"),
        ({"answer": True}, "answer True is neither"),
        ({"answer": "Z"}, "answer 'Z' is neither"),
        ({"answer": 5}, "out of range"),
        ({"question": None}, "question is missing"),
        ({"question": "  "}, "question is missing"),
        ({"choices": None}, "is not a list of options"),
        ({"choices": ["only"]}, "at least 2"),
        ({"choices": ["a", None]}, "option 1 is missing"),
    ],
)
def test_a_bad_row_is_refused_naming_file_and_row(tmp_path, bad, message):
    path = write(tmp_path, [GOOD, GOOD, {**GOOD, **bad}])
    with pytest.raises(ValueError, match=rf"qa.jsonl row 2: .*{message}"):
        load_mcqa_file(path)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "has no questions|cannot be read"),
        (b'{"question": "q", "choices": ["a", "b"], "answer": 0}\n{not json', "cannot be read"),
        (b'{"question": "\xff\xfe", "choices": ["a", "b"], "answer": 0}', "line 1: not UTF-8"),
    ],
)
def test_an_unreadable_file_is_named(tmp_path, content, message):
    path = tmp_path / "broken.jsonl"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=rf"broken.jsonl.*({message})"):
        load_mcqa_file(path)


def test_a_bad_csv_cell_names_its_row(tmp_path):
    path = tmp_path / "qa.csv"
    path.write_text('question,choices,answer\nq,"[""a"", ""b""]",0\nq,"[a, b",1\n')
    with pytest.raises(ValueError, match="qa.csv row 1: choices cell is not a JSON list"):
        load_mcqa_file(path)


texts = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12)
rows = st.fixed_dictionaries(
    {
        "question": st.one_of(texts, st.none(), st.just("")),
        "choices": st.one_of(st.lists(texts, min_size=0, max_size=7), st.none()),
        "answer": st.one_of(
            st.integers(-2, 8), st.floats(-1, 8), st.booleans(), st.sampled_from("ABCDZ")
        ),
    }
)


def valid(row) -> bool:
    n = len(row["choices"] or [])
    a = row["answer"]
    ok_answer = (
        (isinstance(a, int) and not isinstance(a, bool) and 0 <= a < n)
        or (isinstance(a, float) and a.is_integer() and 0 <= a < n)
        or (isinstance(a, str) and a in "ABCDEFGHIJ"[:n])
    )
    texts_ok = all(
        isinstance(t, str) and t.strip() for t in [row["question"], *(row["choices"] or [])]
    )
    return row["choices"] is not None and n >= 2 and ok_answer and texts_ok


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(rows, min_size=1, max_size=6))
def test_random_files_load_exactly_or_fail_naming_a_row(tmp_path, batch):
    path = write(tmp_path, batch, "gen.jsonl")
    try:
        records = load_mcqa_file(path)
    except ValueError as err:
        assert "gen.jsonl" in str(err)
        assert not all(valid(r) for r in batch) or "cannot be read" in str(err)
        return
    assert all(valid(r) for r in batch)
    assert len(records) == len(batch)
    for rec, row in zip(records, batch, strict=True):
        assert rec.choices == tuple(row["choices"]) and rec.question == row["question"]
        a = row["answer"]
        assert rec.answer == ("ABCDEFGHIJ".index(a) if isinstance(a, str) else int(a))


def test_a_huge_answer_option_is_cut_not_allocated(caplog):
    from tests.scoring.tiny_tokenizer import tiny_tokenizer
    from vmoer_ppl.data.records import MCQARecord
    from vmoer_ppl.scoring.batches import encode_cloze

    tok = tiny_tokenizer()
    huge = " ".join(["word"] * 20_000)
    recs = [
        MCQARecord("q?", ("short", huge), 0, "x", "0"),
        MCQARecord("r?", ("a", "b"), 1, "x", "1"),
    ]
    enc = encode_cloze(recs, tok, max_option=64)
    assert enc["option_ids"].shape[-1] == 64 and enc["option_mask"][0, 1].sum() == 64
    assert 0 < enc["option_chars"][0, 1] < len(huge) / 100
    assert "1 answer options longer than 64 tokens were cut" in caplog.text
