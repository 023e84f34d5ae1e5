"""`finetune` through its Python API: classification and regression learned to well above chance, resume,
early stopping, the one-class warning, mixed precision, bad input, and MultiWorkerMirroredStrategy
with two worker processes."""

import json
import os

import numpy as np
import pytest

from albert_keras.errors import AlbertInputError
from albert_keras.training.finetune import finetune
from tests.finetune_data import regression_rows
from tests.finetune_data import sentiment_rows
from tests.finetune_data import write_csv
from tests.training.conftest import REPO
from tests.training.conftest import run_python_together
from tests.training.conftest import worker_tf_configs

FAST = dict(global_batch_size=8, learning_rate=1e-3, verbose=0)


@pytest.fixture(scope="module")
def sentiment_files(tmp_path_factory):
    directory = tmp_path_factory.mktemp("sentiment")
    return (write_csv(directory / "train.csv", ["sentence", "label"], sentiment_rows(96, seed=7)),
            write_csv(directory / "dev.csv", ["sentence", "label"], sentiment_rows(32, seed=8)))


def test_classification_learns_well_above_chance_and_the_best_model_is_the_result(finetune_init_dir, sentiment_files,
                                                                                 tmp_path):
    summary = finetune("classification", finetune_init_dir, *sentiment_files, tmp_path / "run",
                       options={"text_column": "sentence", "max_seq_length": 16, "from_scratch": True}, epochs=3,
                       **FAST)
    assert summary["step"] == 3 * (96 // 8) and summary["primary_metric"] == "accuracy"
    assert summary["best"]["metrics"]["accuracy"] >= 0.85  # chance 0.5
    with open(tmp_path / "run" / "evaluations.jsonl") as f:
        steps = [json.loads(line)["step"] for line in f]
    assert steps == [12, 24, 36]
    result = tmp_path / "run" / "pretrained"
    with open(result / "model.json") as f:
        assert json.load(f)["arguments"]["labels"] == ["negative", "positive"]
    with open(result / "finetune.json") as f:
        record = json.load(f)
    assert record["task"] == "classification" and record["options"]["text_column"] == "sentence"
    assert {"spiece.model", "tokenizer.json", "model.weights.h5"} <= set(os.listdir(result))


def test_regression_learns_a_correlated_score(finetune_init_dir, tmp_path):
    train = write_csv(tmp_path / "train.csv", ["text", "score"], regression_rows(96, seed=9))
    dev = write_csv(tmp_path / "dev.csv", ["text", "score"], regression_rows(32, seed=10))
    summary = finetune("regression", finetune_init_dir, train, dev, tmp_path / "run",
                       options={"label_column": "score", "max_seq_length": 16, "from_scratch": True}, epochs=4,
                       **FAST)
    assert summary["primary_metric"] == "pearson" and summary["best"]["metrics"]["pearson"] >= 0.8


def test_resume_continues_at_the_step_and_early_stopping_stops(finetune_init_dir, sentiment_files, tmp_path):
    from albert_keras.training.loop import TrainingSettings

    options = {"text_column": "sentence", "max_seq_length": 16, "from_scratch": True}
    settings = TrainingSettings(tmp_path / "run", num_train_steps=4, eval_every=2, optimizer="adamw",
                                precision="mixed_bfloat16", **FAST)
    first = finetune("classification", finetune_init_dir, sentiment_files[0], None, settings, options=options)
    assert first["step"] == 4 and first["resumed_from"] == 0 and first["precision"] == "mixed_bfloat16"
    second = finetune("classification", finetune_init_dir, sentiment_files[0], None, settings, options=options,
                      num_train_steps=6)
    assert second["resumed_from"] == 4 and second["step"] == 6 and second["steps_this_run"] == 2
    # A learning rate too small to change any prediction: no improvement after the first evaluation.
    stopped = finetune("classification", finetune_init_dir, *sentiment_files, tmp_path / "stop", options=options,
                       epochs=10, patience=1, eval_every=2, global_batch_size=16, learning_rate=1e-12, verbose=0)
    assert stopped["early_stopped"] and stopped["step"] == 4 and stopped["best"]["step"] == 2


def test_all_one_class_predictions_warn_with_the_step_and_the_fix(finetune_init_dir, sentiment_files, capsys):
    import keras

    from albert_keras.tasks.classification import ClassificationTask
    from albert_keras.training.finetune import _make_evaluator

    task = ClassificationTask()
    options = {"text_column": "sentence", "max_seq_length": 16}
    train = task.read(sentiment_files[0], options)
    dev = task.read(sentiment_files[1], options, metadata=train.metadata)
    model = task.build_model(finetune_init_dir, train.metadata, options)
    model.output_dense.bias.assign(np.array([20.0, 0.0], "float32"))  # always "negative"
    model.compile(keras.optimizers.Adam(), **task.compile_kwargs(train.metadata))
    model.optimizer.build(model.trainable_variables)
    evaluator = _make_evaluator(task, dev, options, "unused", "accuracy", None, False, train.metadata)
    evaluator.set_model(model)
    evaluator.on_epoch_end(0)
    err = capsys.readouterr().err
    assert "step 0: every validation prediction is 'negative' (1 of 2 classes)" in err
    assert "--learning-rate" in err and "--epochs" in err and "--warmup" in err


def test_bad_input_fails_before_anything_is_written(finetune_init_dir, spm_model_path, tmp_path):
    train = write_csv(tmp_path / "train.csv", ["sentence", "label"], [("a good film", "pos"), ("a bad film", "neg")])
    dev = write_csv(tmp_path / "dev.csv", ["sentence", "label"], [("a fine day", "pos"), ("dull", "meh")])
    with pytest.raises(AlbertInputError, match=r"dev\.csv:3: label 'meh' is not one of the labels \['neg', 'pos'\]"):
        finetune("classification", finetune_init_dir, train, dev, tmp_path / "out",
                 options={"text_column": "sentence", "from_scratch": True})
    assert not os.path.exists(tmp_path / "out")
    from albert_keras.config import AlbertConfig
    from albert_keras.modeling import AlbertEncoder
    from albert_keras.modeling import save_pretrained

    bare = save_pretrained(AlbertEncoder(AlbertConfig(vocab_size=1000, embedding_size=8, hidden_size=16,
                                                      num_hidden_layers=1, num_attention_heads=2,
                                                      intermediate_size=16)), tmp_path / "bare")
    with pytest.raises(AlbertInputError, match=r"bare: no vocabulary"):
        finetune("classification", bare, train, None, tmp_path / "out2",
                 options={"text_column": "sentence", "from_scratch": True})
    assert not os.path.exists(os.path.join(tmp_path, "out2", "pretrained"))


def test_multi_worker_mirrored_strategy_with_two_workers(finetune_init_dir, sentiment_files, tmp_path):
    worker = os.path.join(REPO, "tests", "training", "finetune_worker.py")
    run_python_together([([worker, finetune_init_dir, *sentiment_files, str(tmp_path), f"worker{index}"],
                          {"TF_CONFIG": tf_config}) for index, tf_config in enumerate(worker_tf_configs(2))],
                        timeout=400)
    summaries = []
    for index in range(2):
        with open(tmp_path / f"worker{index}.json") as f:
            summaries.append(json.load(f))
    chief, other = summaries
    assert chief["strategy"] == "CollectiveAllReduceStrategy" and chief["replicas"] == 2
    assert chief["step"] == other["step"] == 3 * (96 // 8)
    assert chief["validation"] == other["validation"]  # both workers score the same weights
    assert chief["best"]["metrics"]["accuracy"] >= 0.85  # chance 0.5
    assert os.path.isfile(tmp_path / "run" / "pretrained" / "finetune.json")  # the chief wrote the result


def test_the_former_settings_keyword_still_works_with_a_deprecation_warning(finetune_init_dir, sentiment_files,
                                                                            tmp_path):
    options = {"text_column": "sentence", "max_seq_length": 16, "from_scratch": True}
    with pytest.warns(DeprecationWarning, match=r"finetune\(settings=\.\.\.\) is deprecated: pass output_dir="):
        summary = finetune("classification", finetune_init_dir, sentiment_files[0], settings=tmp_path / "old",
                           options=options, num_train_steps=2, **FAST)
    assert summary["step"] == 2 and summary["pretrained_dir"] == str(tmp_path / "old" / "pretrained")
    with open(tmp_path / "old" / "summary.json") as f:
        assert json.load(f) == summary  # the end of the run (training.run_end) wrote what it returned
    with pytest.raises(TypeError, match="not both"), pytest.warns(DeprecationWarning):
        finetune("classification", finetune_init_dir, sentiment_files[0], None, tmp_path / "a", settings=tmp_path / "b")
