import os

import pytest

from albert_keras.errors import AlbertInputError
from albert_keras.tasks import glue
from albert_keras.tasks.classification import ClassificationTask
from albert_keras.tasks.classification import RegressionTask


def _write(directory, name, rows):
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, name), "w") as f:
        f.write("".join("\t".join(row) + "\n" for row in rows))


def test_cola_has_no_header_and_reports_matthews(tmp_path):
    _write(tmp_path / "CoLA", "train.tsv", [("gj04", "1", "", "the book was read ."), ("gj04", "0", "*", "book the read .")])
    data = ClassificationTask().read(str(tmp_path / "CoLA"), {"glue_task": "cola"})
    assert [(e.text_a, e.label) for e in data.examples] == [("the book was read .", "1"), ("book the read .", "0")]
    assert data.metadata["labels"] == ["0", "1"] and data.metadata["metrics"][0] == "matthews_corrcoef"


def test_pair_tasks_read_their_columns_and_labels(tmp_path):
    _write(tmp_path / "MRPC", "dev.tsv", [("Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"),
                                        ("1", "1", "2", "he said .", "he stated .")])
    train_meta = {"labels": ["0", "1"], "pair": True, "metrics": ["f1", "accuracy"]}
    data = ClassificationTask().read(str(tmp_path / "MRPC"), {"glue_task": "mrpc"}, metadata=train_meta)
    assert (data.examples[0].text_a, data.examples[0].text_b, data.examples[0].label) == ("he said .", "he stated .", "1")
    header = ["index"] + [f"c{i}" for i in range(10)] + ["gold_label"]
    row = ["0"] * 8 + ["a man sleeps .", "a man is awake .", "x", "contradiction"]
    _write(tmp_path / "MNLI", "train.tsv", [header, row, row[:-1] + ["neutral"], row[:-1] + ["entailment"]])
    _write(tmp_path / "MNLI", "dev_mismatched.tsv", [header, row[:-1] + ["neutral"]])
    task = ClassificationTask()
    train = task.read(str(tmp_path / "MNLI"), {"glue_task": "mnli-mm"})
    assert train.metadata["labels"] == ["contradiction", "entailment", "neutral"]
    dev = task.read(str(tmp_path / "MNLI"), {"glue_task": "mnli-mm"}, metadata=train.metadata)
    assert dev.path.endswith("dev_mismatched.tsv") and dev.examples[0].label == "neutral"
    bad = row[:-1] + ["maybe"]
    _write(tmp_path / "RTE", "train.tsv", [["index", "sentence1", "sentence2", "label"], ["0", "a", "b", "maybe"]])
    with pytest.raises(AlbertInputError, match=r"train\.tsv:2: label 'maybe' is not one of the labels"):
        task.read(str(tmp_path / "RTE"), {"glue_task": "rte"})
    assert bad


def test_sts_b_is_regression_with_pearson_and_spearman(tmp_path):
    header = [f"c{i}" for i in range(9)] + ["score"]
    _write(tmp_path / "STS-B", "train.tsv", [header, ["x"] * 7 + ["a cat .", "a dog .", "1.5"]])
    data = RegressionTask().read(str(tmp_path / "STS-B"), {"glue_task": "STSB"})
    assert data.examples[0].label == 1.5 and data.metadata["metrics"] == ["pearson", "spearman"]
    with pytest.raises(AlbertInputError, match="use --task regression"):
        ClassificationTask().read(str(tmp_path / "STS-B"), {"glue_task": "sts-b"})


def test_every_task_is_known_and_unknown_names_are_refused():
    assert set(glue.GLUE_TASKS) == {"cola", "sst-2", "mrpc", "sts-b", "qqp", "mnli", "mnli-mm", "qnli", "rte", "wnli"}
    assert glue.get_glue_task("SST2").primary_metric == "accuracy"
    assert glue.get_glue_task("qqp").metrics == ("accuracy", "f1")
    with pytest.raises(AlbertInputError, match="unknown 'glew'"):
        glue.get_glue_task("glew")


def test_score_uses_the_official_metrics():
    result = glue.score(("f1", "accuracy", "matthews_corrcoef"), [0, 1, 1, 0], [0, 1, 0, 0])
    assert result["accuracy"] == 0.75 and abs(result["f1"] - 2 / 3) < 1e-9 and 0 < result["matthews_corrcoef"] < 1
    assert glue.score(("pearson",), [1.0, 2.0, 3.0], [2.0, 4.0, 6.5])["pearson"] > 0.99
