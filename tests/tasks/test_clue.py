"""CLUE tasks by --glue-task name: readers, label sets, skips, C3 padding, submissions, one tiny run."""

import json

import pytest

from albert_keras.errors import AlbertInputError
from albert_keras.tasks import clue
from albert_keras.tasks.classification import ClassificationTask
from albert_keras.tasks.classification import MultipleChoiceTask
from albert_keras.tasks.glue import get_glue_task
from tests.finetune_data import write_jsonl


def read(path, name, metadata=None, labelled=True):
    return ClassificationTask().read(path, {"glue_task": name, "labelled": labelled}, metadata=metadata)


def test_names_resolve_like_glue_names():
    assert get_glue_task("TNEWS") is clue.CLUE_TASKS["tnews"]
    assert get_glue_task("wsc").name == "cluewsc2020" and get_glue_task("sst-2").name == "sst-2"
    tnews = clue.CLUE_TASKS["tnews"].labels
    assert len(tnews) == 15 and "105" not in tnews and "111" not in tnews and tnews[0] == "100" and tnews[-1] == "116"
    assert clue.CLUE_TASKS["iflytek"].labels == tuple(str(i) for i in range(119))
    with pytest.raises(AlbertInputError, match=r"unknown 'clew'.*\(GLUE\) or afqmc, tnews"):
        get_glue_task("clew")


def test_pair_tasks_read_the_distributed_files(tmp_path):
    directory = tmp_path / "afqmc"
    directory.mkdir()
    write_jsonl(directory / "train.json", [{"sentence1": "花呗怎么还", "sentence2": "花呗如何还款", "label": "1"},
                                           {"sentence1": "借呗", "sentence2": "花呗", "label": "0"}])
    data = read(directory, "afqmc")
    assert data.path.endswith("train.json") and data.metadata["labels"] == ["0", "1"]
    assert data.metadata["pair"] and data.metadata["metrics"] == ["accuracy"]
    first = data.examples[0]
    assert (first.text_a, first.text_b, first.label) == ("花呗怎么还", "花呗如何还款", "1")


def test_nli_rows_labelled_dash_are_skipped_and_counted(tmp_path, capsys):
    path = write_jsonl(tmp_path / "dev.json", [
        {"sentence1": "他来了", "sentence2": "他到了", "label": "entailment"},
        {"sentence1": "a", "sentence2": "b", "label": "-"},
        {"sentence1": "他没来", "sentence2": "他到了", "label": "contradiction"},
        {"sentence1": "c", "sentence2": "d", "label": "-"},
    ])
    data = read(path, "ocnli")
    assert [e.label for e in data.examples] == ["entailment", "contradiction"]
    assert [e.line for e in data.examples] == [1, 3]
    assert "skipped 2 records (label '-'" in capsys.readouterr().err
    # Unlabelled reading keeps every row (a test file's rows all count).
    assert len(read(path, "cmnli", metadata=data.metadata, labelled=False).examples) == 4


def test_label_outside_the_task_set_names_file_and_line(tmp_path):
    path = write_jsonl(tmp_path / "train.json", [{"sentence": "体育新闻", "label": "105"}])
    with pytest.raises(AlbertInputError, match=r"train\.json:1: label '105' is not one of the labels"):
        read(path, "tnews")


def test_csl_joins_keywords_with_spaces_as_the_first_text(tmp_path):
    path = write_jsonl(tmp_path / "train.json", [{"id": 7, "abst": "本文研究了分词。", "keyword": ["分词", "语料"],
                                                  "label": "1"}])
    example = read(path, "csl").examples[0]
    assert (example.text_a, example.text_b, example.id) == ("分词 语料", "本文研究了分词。", 7)


@pytest.mark.parametrize("text, span1, span2, expected", [
    ("小明把书给了小红，因为她需要。", ("小红", 6), ("她", 11), "小明把书给了_小红_，因为[她]需要。"),
    ("她说小红会来。", ("小红", 2), ("她", 0), "[她]说_小红_会来。"),
])
def test_wsc_marks_the_candidate_and_the_pronoun_as_clue_does(tmp_path, text, span1, span2, expected):
    path = write_jsonl(tmp_path / "train.json", [{
        "text": text, "label": "true",
        "target": {"span1_text": span1[0], "span1_index": span1[1], "span2_text": span2[0], "span2_index": span2[1]},
    }])
    data = read(path, "cluewsc2020")
    assert data.examples[0].text_a == expected and data.metadata["labels"] == ["true", "false"]
    assert not data.metadata["pair"]


def test_wsc_span_not_at_its_index_is_an_error(tmp_path):
    path = write_jsonl(tmp_path / "train.json", [{
        "text": "小明来了", "label": "false",
        "target": {"span1_text": "小明", "span1_index": 1, "span2_text": "了", "span2_index": 3},
    }])
    with pytest.raises(AlbertInputError, match=r"train\.json:1: target span1_text '小明' is not at span1_index 1"):
        read(path, "cluewsc2020")


def test_test_files_read_without_labels_keep_ids(tmp_path):
    directory = tmp_path / "tnews"
    directory.mkdir()
    write_jsonl(directory / "train.json", [{"sentence": "球赛", "label": "103"}, {"sentence": "股票", "label": "104"}])
    write_jsonl(directory / "test.json", [{"id": 0, "sentence": "电影"}, {"id": 1, "sentence": "游戏"}])
    train = read(directory, "tnews")
    test = read(directory, "tnews", metadata=train.metadata, labelled=False)
    assert test.path.endswith("test.json")
    assert [(e.text_a, e.label, e.id) for e in test.examples] == [("电影", None, 0), ("游戏", None, 1)]


def test_a_task_of_another_kind_names_its_task(tmp_path):
    path = write_jsonl(tmp_path / "train.json", [{"sentence": "x", "label": "1"}])
    with pytest.raises(AlbertInputError, match="c3 is a multiple-choice task; use --task multiple-choice"):
        read(path, "c3")
    with pytest.raises(AlbertInputError, match="cmrc2018 is a question-answering task"):
        read(path, "cmrc2018")


C3 = [
    [["男：今天比赛几点开始？", "女：改到下午三点了。"],
     [{"question": "比赛什么时候开始？", "choice": ["上午", "下午三点", "晚上"], "answer": "下午三点"},
      {"question": "谁在问？", "choice": ["男的", "女的"], "answer": "男的"}], "31-109"],
]


def test_c3_pads_to_four_choices_and_finds_the_answer(tmp_path):
    directory = tmp_path / "c3"
    directory.mkdir()
    (directory / "d-train.json").write_text(json.dumps(C3, ensure_ascii=False), encoding="utf-8")
    (directory / "m-train.json").write_text(json.dumps(C3[:1], ensure_ascii=False), encoding="utf-8")
    data = MultipleChoiceTask().read(directory, {"glue_task": "c3"})
    assert data.metadata == {"num_choices": 4, "metrics": ["accuracy"], "glue_task": "c3"}
    assert len(data.examples) == 4  # two questions from each of d- and m-
    first, second = data.examples[:2]
    assert first.context == "男：今天比赛几点开始？\n女：改到下午三点了。"
    assert first.choices == ["比赛什么时候开始？ 上午", "比赛什么时候开始？ 下午三点", "比赛什么时候开始？ 晚上",
                             "比赛什么时候开始？ 无效答案"]
    assert first.label == 1 and second.label == 0 and second.choices[2:] == ["谁在问？ 无效答案"] * 2


def test_c3_test_file_and_errors(tmp_path):
    unlabelled = [[C3[0][0], [{"question": "q", "choice": ["a", "b"], "answer": ""}], "t1"]]
    path = tmp_path / "test1.1.json"
    path.write_text(json.dumps(unlabelled), encoding="utf-8")
    examples, _ = clue.read_c3(tmp_path, "test", require_label=False)
    assert examples[0].label is None and len(examples[0].choices) == 4
    bad = [[["x"], [{"question": "q", "choice": ["a", "b"], "answer": "c"}], "1"]]
    (tmp_path / "d-dev.json").write_text(json.dumps(bad), encoding="utf-8")
    with pytest.raises(AlbertInputError, match=r"d-dev\.json: \[0\]\[1\]\[0\]: answer 'c' is not one of the choices"):
        clue.read_c3(tmp_path, "dev")
    with pytest.raises(AlbertInputError, match="no C3 train file"):
        clue.read_c3(tmp_path, "train")


def test_submission_lines(tmp_path):
    records = [{"line": 1, "label": "102", "id": 5, "probabilities": {}}, {"line": 2, "label": "0"}]
    assert clue.write_submission(records, tmp_path / "s.json") == 2
    lines = [json.loads(line) for line in (tmp_path / "s.json").read_text().splitlines()]
    assert lines == [{"id": 5, "label": "102"}, {"id": 1, "label": "0"}]


def test_tiny_tnews_finetune_predicts_a_submission(tmp_path, finetune_init_dir, capsys):
    """`finetune --glue-task tnews` on a task directory, then `predict` on its test.json."""
    from albert_keras.cli import main
    from albert_keras.training.finetune_commands import read_task_file

    directory = tmp_path / "tnews"
    directory.mkdir()
    rows = [{"sentence": f"the match {i}", "label": "103"} for i in range(8)]
    rows += [{"sentence": f"the stock {i}", "label": "104"} for i in range(8)]
    write_jsonl(directory / "train.json", rows)
    write_jsonl(directory / "dev.json", rows[::3])
    write_jsonl(directory / "test.json", [{"id": 10 + i, "sentence": f"the film {i}"} for i in range(5)])
    run = tmp_path / "run"
    assert main(["finetune", "--from-scratch",
                 "--task", "classification", "--glue-task", "tnews", "--init", finetune_init_dir,
                 "--train", str(directory), "--validation", str(directory), "--output", str(run),
                 "--num-train-steps", "2", "--batch-size", "8", "--max-seq-length", "16", "--verbose", "0"]) == 0
    stored = read_task_file(run / "pretrained")
    assert stored["metadata"]["labels"] == list(clue.TNEWS) and stored["metadata"]["glue_task"] == "tnews"
    out = tmp_path / "tnews_predict.json"
    assert main(["predict", "--model", str(run / "pretrained"), "--input", str(directory / "test.json"),
                 "--output", str(out)]) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [sorted(line) for line in lines] == [["id", "label"]] * 5
    assert [line["id"] for line in lines] == [10, 11, 12, 13, 14]
    assert {line["label"] for line in lines} <= set(clue.TNEWS)
    capsys.readouterr()
    assert main(["evaluate", "--model", str(run / "pretrained"), "--data", str(directory / "dev.json")]) == 0
    assert set(json.loads(capsys.readouterr().out.strip().splitlines()[-1])) == {"accuracy"}
