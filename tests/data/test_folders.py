"""A data folder is read like a file: save_to_disk sets, their splits, and shards of one type."""

import json

import pytest

from vmoer_ppl.data import load_mcqa_file
from vmoer_ppl.data.folders import data_exists, data_label, is_data_path

ROWS = [
    {"question": f"Which is {i}?", "choices": [str(i), str(i + 1), str(i + 2)], "answer": i % 3}
    for i in range(6)
]


def dataset(rows):
    from datasets import Dataset

    return Dataset.from_list(rows)


def same(records, rows):
    return [(r.question, r.choices, r.answer) for r in records] == [
        (row["question"], tuple(row["choices"]), row["answer"]) for row in rows
    ]


def test_a_save_to_disk_folder_reads_as_its_jsonl_would(tmp_path):
    dataset(ROWS).save_to_disk(str(tmp_path / "mine"))
    jsonl = tmp_path / "mine.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in ROWS))
    from_folder, from_file = load_mcqa_file(tmp_path / "mine"), load_mcqa_file(jsonl)
    assert same(from_folder, ROWS)
    assert from_folder == from_file  # same records, source "mine" both ways


def test_a_dataset_dict_reads_every_split_in_order_and_errors_name_the_split(tmp_path):
    from datasets import DatasetDict

    folder = tmp_path / "sets"
    DatasetDict(train=dataset(ROWS[:4]), test=dataset(ROWS[4:])).save_to_disk(str(folder))
    assert same(load_mcqa_file(folder), ROWS)
    assert same(load_mcqa_file(folder / "test"), ROWS[4:])  # one split: its folder
    bad = [*ROWS[:1], {**ROWS[1], "answer": 7}]
    DatasetDict(train=dataset(ROWS[:3]), test=dataset(bad)).save_to_disk(str(tmp_path / "bad"))
    with pytest.raises(ValueError, match="bad/test row 1: answer index 7 out of range"):
        load_mcqa_file(tmp_path / "bad")


def test_a_split_name_that_leaves_the_folder_is_refused(tmp_path):
    from datasets import DatasetDict

    folder = tmp_path / "sets"
    DatasetDict(train=dataset(ROWS)).save_to_disk(str(folder))
    (folder / "dataset_dict.json").write_text(json.dumps({"splits": ["train", "../elsewhere"]}))
    with pytest.raises(ValueError, match="split '../elsewhere' is not a folder name"):
        load_mcqa_file(folder)


def test_parquet_shards_and_an_arrow_file_read_in_name_order(tmp_path):
    shards = tmp_path / "data"
    shards.mkdir()
    dataset(ROWS[3:]).to_parquet(str(shards / "train-00001-of-00002.parquet"))
    dataset(ROWS[:3]).to_parquet(str(shards / "train-00000-of-00002.parquet"))
    (shards / "README.md").write_text("not data")
    recs = load_mcqa_file(shards)
    assert same(recs, ROWS) and {r.source for r in recs} == {"data"}
    dataset(ROWS).save_to_disk(str(tmp_path / "saved"))
    arrow = next((tmp_path / "saved").glob("*.arrow"))
    assert same(load_mcqa_file(arrow), ROWS)


def test_a_glob_pattern_reads_one_split_of_a_snapshot_folder(tmp_path):
    snapshot = tmp_path / "data"
    snapshot.mkdir()
    dataset(ROWS[2:4]).to_parquet(str(snapshot / "train-00001-of-00002.parquet"))
    dataset(ROWS[:2]).to_parquet(str(snapshot / "train-00000-of-00002.parquet"))
    unlabelled = [{**r, "answer": -1} for r in ROWS[4:]]  # a hub test split without answers
    dataset(unlabelled).to_parquet(str(snapshot / "test-00000-of-00001.parquet"))
    recs = load_mcqa_file(snapshot / "train-*.parquet")
    assert same(recs, ROWS[:4]) and {r.source for r in recs} == {"train"}
    with pytest.raises(ValueError, match="test-00000-of-00001.parquet row 0: answer index -1"):
        load_mcqa_file(snapshot)  # the whole folder: the unlabelled split is named
    with pytest.raises(FileNotFoundError, match="matches no data file"):
        load_mcqa_file(snapshot / "validation-*.parquet")
    assert data_label(snapshot / "*.parquet") == "data"


def test_folders_that_cannot_be_read_as_one_set_say_what_to_pass(tmp_path):
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    dataset(ROWS).to_parquet(str(mixed / "a.parquet"))
    (mixed / "b.jsonl").write_text(json.dumps(ROWS[0]))
    with pytest.raises(ValueError, match=r"files of 2 types \(.jsonl, .parquet\)"):
        load_mcqa_file(mixed)
    snapshot = tmp_path / "snapshot"
    (snapshot / "ARC-Easy").mkdir(parents=True)
    (snapshot / "notes").mkdir()
    dataset(ROWS).to_parquet(str(snapshot / "ARC-Easy" / "test.parquet"))
    with pytest.raises(ValueError, match=r"its folders \['ARC-Easy'\] do: pass one of them"):
        load_mcqa_file(snapshot)
    with pytest.raises(ValueError, match="no data file"):
        load_mcqa_file(snapshot / "notes")
    apart = tmp_path / "apart"
    apart.mkdir()
    (apart / "a.jsonl").write_text(json.dumps(ROWS[0]))
    (apart / "b.jsonl").write_text(json.dumps({**ROWS[1], "extra": "x"}))
    with pytest.raises(ValueError, match=r"b.jsonl has the columns .*'extra'.*pass one of them"):
        load_mcqa_file(apart)
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("state.json", "dataset_info.json"):
        (broken / name).write_text("{}")
    with pytest.raises(ValueError, match="broken: not a datasets save_to_disk folder"):
        load_mcqa_file(broken)


def test_what_counts_as_local_data_and_its_label(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "folder.v2").mkdir()
    assert is_data_path("x.parquet") and is_data_path("folder.v2") and not is_data_path("arc_easy")
    assert data_label(tmp_path / "folder.v2") == "folder.v2"
    assert data_label(tmp_path / "x.v2.jsonl") == "x.v2"
    assert is_data_path("data/train-*") and not data_exists("data/train-*")


def test_a_run_reads_its_id_and_ood_sets_from_folders(tmp_path):
    from vmoer_ppl.pipeline.config import FitConfig
    from vmoer_ppl.pipeline.run_data import run_records

    rows = [{"question": f"q {i}?", "choices": ["a", "b", "c"], "answer": i % 3} for i in range(14)]
    dataset(rows[:12]).save_to_disk(str(tmp_path / "mine"))
    (tmp_path / "other").mkdir()
    dataset(ROWS).to_parquet(str(tmp_path / "other" / "part-0.parquet"))
    cfg = FitConfig().replace(
        data=str(tmp_path / "mine"), ood=(str(tmp_path / "other"),), n_train=6, n_val=2, n_test=2
    )
    sets, shown, label = run_records(cfg)
    assert label == "mine" and shown is False
    assert [len(sets[k]) for k in ("train", "val", "id:mine", "ood:other")] == [6, 2, 2, 6]
    missing = FitConfig().replace(data=str(tmp_path / "gone"), ood=())
    with pytest.raises(ValueError, match="a folder or glob pattern of them"):
        run_records(missing)
    one_split = cfg.replace(data=str(tmp_path / "other" / "part-*.parquet"), ood=(), n_test=1)
    assert run_records(one_split)[2] == "part"
    with pytest.raises(FileNotFoundError, match="no file matches"):
        run_records(cfg.replace(data=str(tmp_path / "other" / "test-*.parquet")))
    with pytest.raises(FileNotFoundError, match="--ood .*no file matches"):
        run_records(cfg.replace(ood=(str(tmp_path / "other" / "test-*.parquet"),)))


def test_compressed_files_are_read_as_their_type_and_named_as_given(tmp_path):
    import bz2
    import gzip
    import lzma

    text = "\n".join(json.dumps(r) for r in ROWS).encode()
    (tmp_path / "train.jsonl.gz").write_bytes(gzip.compress(text))
    recs = load_mcqa_file(tmp_path / "train.jsonl.gz")
    assert same(recs, ROWS) and {r.source for r in recs} == {"train"}
    shards = tmp_path / "shards"
    shards.mkdir()
    (shards / "a.jsonl.bz2").write_bytes(
        bz2.compress("\n".join(text.decode().split("\n")[:3]).encode())
    )
    (shards / "b.jsonl.xz").write_bytes(
        lzma.compress("\n".join(text.decode().split("\n")[3:]).encode())
    )
    assert same(load_mcqa_file(shards), ROWS) and is_data_path("x.csv.gz")
    (tmp_path / "latin1.jsonl.gz").write_bytes(
        gzip.compress('{"question": "caf\xe9"}'.encode("latin-1"))
    )
    with pytest.raises(ValueError, match=r"latin1.jsonl.gz line 1: not UTF-8"):
        load_mcqa_file(tmp_path / "latin1.jsonl.gz")
    (tmp_path / "cut.jsonl.gz").write_bytes(gzip.compress(text)[:20])
    with pytest.raises(ValueError, match=r"cut.jsonl.gz: cannot be decompressed"):
        load_mcqa_file(tmp_path / "cut.jsonl.gz")
    with pytest.raises(ValueError, match=r"unsupported file type '.gz'.*optionally compressed"):
        load_mcqa_file(tmp_path / "notes.gz")
