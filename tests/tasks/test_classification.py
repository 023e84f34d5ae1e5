import numpy as np
import pytest

from albert_keras.errors import AlbertInputError
from albert_keras.tasks.classification import ClassificationTask
from albert_keras.tasks.classification import MultipleChoiceTask
from albert_keras.tasks.classification import RegressionTask
from albert_keras.tasks.registry import get_task
from tests.finetune_data import choice_records
from tests.finetune_data import write_csv
from tests.finetune_data import write_jsonl


def test_registry_names_the_three_tasks():
    assert isinstance(get_task("classification"), ClassificationTask)
    assert isinstance(get_task("regression"), RegressionTask) and get_task("regression").primary_metric == "pearson"
    assert isinstance(get_task("multiple-choice"), MultipleChoiceTask)
    with pytest.raises(AlbertInputError, match="unknown 'sentiment'"):
        get_task("sentiment")


def test_metadata_labels_and_metrics(tmp_path):
    path = write_csv(tmp_path / "t.csv", ["text", "label"], [("a", "x"), ("b", "y"), ("c", "z")])
    data = ClassificationTask().read(path, {})
    assert data.metadata == {"labels": ["x", "y", "z"], "pair": False, "metrics": ["accuracy", "macro_f1"]}
    data = ClassificationTask().read(path, {"labels": "z, y, x"})
    assert data.metadata["labels"] == ["z", "y", "x"]
    with pytest.raises(AlbertInputError, match=r"t\.csv:2: label 'x' is not one of the labels \['y', 'z'\]"):
        ClassificationTask().read(path, {"labels": ["y", "z"]})


def test_dataset_predict_and_evaluate_on_an_untrained_model(finetune_init_dir, tmp_path):
    path = write_csv(tmp_path / "t.csv", ["q", "a", "label"], [("what ?", "it is free .", "1"), ("why ?", "no", "0")] * 3)
    task = ClassificationTask()
    options = {"text_column": "q", "pair_column": "a", "max_seq_length": 16}
    data = task.read(path, options)
    model = task.build_model(finetune_init_dir, data.metadata, options)
    (x, y), = task.dataset(model, data, batch_size=6).take(1).as_numpy_iterator()
    assert x["token_ids"].shape == (6, 16) and x["segment_ids"].max() == 1 and list(y) == [1, 0] * 3
    records = list(task.predict(model, data, {}))
    assert [r["line"] for r in records] == [2, 3, 4, 5, 6, 7]
    assert all(set(r["probabilities"]) == {"0", "1"} and r["label"] in ("0", "1") for r in records)
    metrics, predicted = task.evaluation(model, data, {})
    assert set(metrics) == {"accuracy", "f1"} and predicted.shape == (6,)
    expected = float(np.mean(predicted == np.array([1, 0] * 3)))
    assert metrics["accuracy"] == pytest.approx(expected)


def test_multiple_choice_task_reads_its_choice_count(finetune_init_dir, tmp_path):
    path = write_jsonl(tmp_path / "m.jsonl", choice_records(4, num_choices=4))
    task = MultipleChoiceTask()
    data = task.read(path, {})
    assert data.metadata["num_choices"] == 4
    model = task.build_model(finetune_init_dir, data.metadata, {"max_seq_length": 16})
    records = list(task.predict(model, data, {}))
    assert len(records) == 4 and all(len(r["probabilities"]) == 4 for r in records)
    other = write_jsonl(tmp_path / "o.jsonl", choice_records(2, num_choices=3))
    with pytest.raises(AlbertInputError, match="3 choices, but the model has 4"):
        task.read(other, {}, metadata=data.metadata)
