"""Runs that cannot fail silently: `finetune --seeds` judges each run against the validation set's
trivial baseline, retries degenerate ones, keeps the best model; `--recipe` and `--reinit-pooler`."""

import json
import os
import statistics

import numpy as np
import pytest

from albert_keras.cli import main
from albert_keras.errors import AlbertInputError
from albert_keras.training.seeds import finetune_seeds
from tests.finetune_data import regression_rows
from tests.finetune_data import sentiment_rows
from tests.finetune_data import write_csv

OPTIONS = {"text_column": "sentence", "max_seq_length": 16, "from_scratch": True}
FAST = dict(global_batch_size=8, verbose=0)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Balanced training data; a validation set that is 3/4 negative, so the majority baseline is 0.75,
    which a model that has learned nothing (an untrained head) seldom beats by luck."""
    directory = tmp_path_factory.mktemp("seeds")
    rows = sentiment_rows(64, seed=8)
    dev = [r for r in rows if r[1] == "negative"][:24] + [r for r in rows if r[1] == "positive"][:8]
    return (write_csv(directory / "train.csv", ["sentence", "label"], sentiment_rows(64, seed=7)),
            write_csv(directory / "dev.csv", ["sentence", "label"], dev))


def _evaluations(run_dir):
    with open(os.path.join(run_dir, "evaluations.jsonl")) as f:
        return [json.loads(line) for line in f]


def test_baselines_come_from_the_data():
    from albert_keras.tasks.registry import get_task
    from albert_keras.training.baselines import trivial_baseline

    task = get_task("classification")
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        dev = write_csv(os.path.join(tmp, "dev.csv"), ["sentence", "label"],
                        [("a", "x"), ("b", "y"), ("c", "y"), ("d", "y"), ("e", "z")])
        data = task.read(dev, OPTIONS)
        baseline = trivial_baseline(task, data, "accuracy")
        assert baseline["value"] == 0.6 and "'y'" in baseline["prediction"]
        regression = get_task("regression")
        scores = write_csv(os.path.join(tmp, "scores.csv"), ["text", "score"], regression_rows(12, seed=1))
        data = regression.read(scores, {"label_column": "score"})
        assert trivial_baseline(regression, data, "pearson")["value"] == 0.0


def test_tagging_and_intent_slot_baselines_come_from_the_data(tmp_path):
    from albert_keras.tasks.registry import get_task
    from albert_keras.training.baselines import trivial_baseline

    folder = tmp_path / "goo"
    folder.mkdir()
    # Intents: 3 x weather, 1 x music; frames with the majority intent and no slot: 2 of 4.
    (folder / "seq.in").write_text("rain today\nsun in paris\nweather please\nplay jazz\n")
    (folder / "seq.out").write_text("O O\nO O B-city\nO O\nO B-genre\n")
    (folder / "label").write_text("weather\nweather\nweather\nmusic\n")
    task = get_task("intent-slots")
    data = task.read(str(folder), {})
    assert trivial_baseline(task, data, "frame_accuracy")["value"] == 0.5
    assert trivial_baseline(task, data, "intent_accuracy")["value"] == 0.75
    conll = tmp_path / "eng.dev"
    conll.write_text("paris X B-LOC\nis X O\n\nrain X O\n")
    tagger = get_task("token-classification")
    tagged = tagger.read(str(conll), {})
    baseline = trivial_baseline(tagger, tagged, "f1")
    assert baseline["value"] == 0.0 and "'O'" in baseline["prediction"]


def test_a_run_that_cannot_learn_is_degenerate_and_is_retried_with_the_next_seed(finetune_init_dir, files, tmp_path,
                                                                                capsys):
    summary = finetune_seeds("classification", finetune_init_dir, *files, tmp_path / "out", seeds=1,
                             restart_degenerate=1, seed=3, options=OPTIONS, epochs=1, learning_rate=1e-12, **FAST)
    assert [run["seed"] for run in summary["runs"]] == [3, 4]
    assert summary["degenerate"] == [3, 4] and summary["counted_seeds"] == [4]
    first, second = summary["runs"]
    assert first["replaced"] and not second["replaced"]
    assert first["degenerate"]["step"] == 8 and "baseline 0.7500" in first["degenerate"]["why"]
    assert summary["baseline"]["value"] == 0.75
    err = capsys.readouterr().err
    assert "DEGENERATE run (seed 3)" in err and "retrying with seed 4" in err
    with open(tmp_path / "out" / "summary.json") as f:
        assert json.load(f)["degenerate"] == [3, 4]


def test_mean_std_best_from_real_runs_and_the_best_model_is_kept(finetune_init_dir, files, tmp_path):
    output = tmp_path / "out"
    # A good run first (seed 1), then the same directory asked for two seeds at a learning rate of 1e-12:
    # seed 1 is read back finished, seed 2 cannot learn. The good one must be the result.
    good = finetune_seeds("classification", finetune_init_dir, *files, output, seeds=1, seed=1, options=OPTIONS,
                          epochs=3, learning_rate=1e-3, **FAST)
    assert good["degenerate"] == [] and good["best"]["value"] > 0.75
    summary = finetune_seeds("classification", finetune_init_dir, *files, output, seeds=2, seed=1, options=OPTIONS,
                             epochs=1, learning_rate=1e-12, **FAST)
    assert summary["counted_seeds"] == [1, 2] and summary["degenerate"] == [2]
    values = [max(r["metrics"]["accuracy"] for r in _evaluations(output / "runs" / f"seed-{s}")) for s in (1, 2)]
    assert summary["mean"] == pytest.approx(statistics.fmean(values), abs=1e-6)
    assert summary["std"] == pytest.approx(statistics.stdev(values), abs=1e-6)
    assert summary["best"]["seed"] == 1 and summary["best"]["value"] == pytest.approx(max(values), abs=1e-6)
    # The kept model is seed 1's: the same weights; seed 2's weights are gone, its scores stay.
    kept = (output / "pretrained" / "model.weights.h5").read_bytes()
    assert kept == (output / "runs" / "seed-1" / "pretrained" / "model.weights.h5").read_bytes()
    assert not (output / "runs" / "seed-2" / "pretrained").exists()
    assert (output / "runs" / "seed-2" / "evaluations.jsonl").exists()


def test_the_command_line_runs_seeds_and_retries(finetune_init_dir, files, tmp_path):
    output = tmp_path / "cli"
    code = main(["finetune", "--from-scratch",
                 "--task", "classification", "--model", finetune_init_dir, "--train", files[0],
                 "--validation", files[1], "--output", str(output), "--text-column", "sentence",
                 "--max-seq-length", "16", "--batch-size", "8", "--learning-rate", "1e-12", "--epochs", "1",
                 "--seeds", "2", "--restart-degenerate", "1", "--seed", "5", "--quiet"])
    assert code == 0
    with open(output / "summary.json") as f:
        summary = json.load(f)
    # Seed 5 learns nothing and is replaced by 6; what 6 and 7 score at 1e-12 is their random heads' luck.
    first = summary["runs"][0]
    assert first["seed"] == 5 and first["degenerate"] is not None and first["replaced"]
    assert summary["counted_seeds"] == [6, 7] and [run["seed"] for run in summary["runs"]] == [5, 6, 7]
    assert summary["degenerate"] == [run["seed"] for run in summary["runs"] if run["degenerate"] is not None]
    assert (output / "pretrained" / "finetune.json").exists()
    assert main(["finetune", "--from-scratch",
                 "--task", "classification", "--model", finetune_init_dir, "--train", files[0],
                 "--output", str(tmp_path / "none"), "--seeds", "2", "--quiet"]) == 2


def test_seeds_need_a_validation_file(finetune_init_dir, files, tmp_path):
    with pytest.raises(AlbertInputError, match="--validation"):
        finetune_seeds("classification", finetune_init_dir, files[0], None, tmp_path / "x", seeds=2, options=OPTIONS)


def test_recipe_values_land_in_the_summary_and_explicit_flags_override_them(finetune_init_dir, files, tmp_path):
    from albert_keras.training.recipes import RECIPES

    output = tmp_path / "run"
    code = main(["finetune", "--from-scratch",
                 "--task", "classification", "--model", finetune_init_dir, "--train", files[0],
                 "--validation", files[1], "--output", str(output), "--text-column", "sentence",
                 "--max-seq-length", "16", "--recipe", "rte", "--num-train-steps", "4", "--batch-size", "8",
                 "--reinit-pooler", "--quiet"])
    assert code == 0
    with open(output / "summary.json") as f:
        settings = json.load(f)["settings"]
    rte = RECIPES["rte"]
    assert settings["recipe"] == "rte" and settings["learning_rate"] == rte["learning_rate"] == 3e-5
    assert settings["num_warmup_steps"] == rte["num_warmup_steps"] == 200
    # Explicit flags win over the recipe's 800 steps of 32.
    assert settings["num_train_steps"] == 4 and settings["global_batch_size"] == 8
    assert settings["reinit_pooler"] is True and settings["recipe_values"] == rte


def test_reinit_pooler_draws_fresh_pooler_weights_only(finetune_init_dir):
    from albert_keras.tasks.registry import get_task
    from albert_keras.training.finetune import reinit_pooler

    model = get_task("classification").build_model(finetune_init_dir, {"labels": ["a", "b"]}, {"max_seq_length": 16})
    before = {v.path: np.array(v.numpy()) for v in model.weights}
    assert reinit_pooler(model) == 2
    changed = sorted(path for path, value in before.items() if not np.array_equal(value, _value(model, path)))
    assert changed == sorted(v.path for v in model.encoder.pooled_dense.weights
                             if np.any(before[v.path] != 0))  # a zero bias stays zero


def _value(model, path):
    return next(np.array(v.numpy()) for v in model.weights if v.path == path)


def test_recipe_names_are_listed_and_unknown_ones_refused(capsys):
    from albert_keras.training.recipes import get_recipe

    with pytest.raises(SystemExit):
        main(["finetune", "--help"])
    out = capsys.readouterr().out
    assert "--recipe" in out and "sst-2" in out and "run_glue.sh" in out
    assert get_recipe("SST2")["num_train_steps"] == 20935
    with pytest.raises(AlbertInputError, match="unknown; the recipes"):
        get_recipe("squad")


def _flipping_fit(watch, steps_before=60, steps_after=40):
    """A real `fit` whose accuracy collapses on purpose: a linear model learns a rule, then the labels flip."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16 * (steps_before + steps_after), 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    y[16 * steps_before:] = 1 - y[16 * steps_before:]
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile(keras.optimizers.SGD(0.05), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="masked_lm_accuracy")])
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    model.fit(data, epochs=1, verbose=0, shuffle=False, callbacks=[watch])
    return model


def test_a_collapse_of_masked_lm_accuracy_is_reported_once_with_its_step(capsys):
    from albert_keras.training.callbacks import DivergenceWatch

    watch = DivergenceWatch(every_steps=10, loss_spike=None)  # the accuracy rule alone; windows of 3 intervals
    _flipping_fit(watch)
    # Interval means, recovered from Keras' running mean: high before the flip at step 60, low after.
    assert [step for step, _ in watch.history] == [10, 20, 30, 40, 50, 60, 70, 80]
    assert watch.history[5][1] > 0.8 and watch.history[6][1] < 0.4
    # Steps 60-80 average below half of the best window (40-60).
    assert watch.event["step"] == 80 and watch.event["best_step"] == 60 and watch.event["action"] == "warn"
    assert watch.event["value"] == pytest.approx(sum(v for _, v in watch.history[5:8]) / 3, abs=1e-5)
    err = capsys.readouterr().err
    assert err.count("divergence: step 80: masked_lm_accuracy") == 1
    steady = DivergenceWatch(every_steps=10)
    _flipping_fit(steady, steps_before=100, steps_after=0)
    assert steady.event is None and len(steady.history) == 10
    # With the loss rule too (the default), the flip is caught one interval after it: the loss of
    # steps 60-70 is above twice the median of the intervals before.
    both = DivergenceWatch(every_steps=10, verbose=False)
    _flipping_fit(both)
    assert both.event["step"] == 70 and both.event["reason"] == "loss spike"
    assert both.event["value"] > 2 * both.event["median"]


def test_on_divergence_stop_ends_training_at_the_collapse():
    from albert_keras.training.callbacks import DivergenceWatch

    watch = DivergenceWatch(every_steps=10, on_divergence="stop", verbose=False, loss_spike=None)
    model = _flipping_fit(watch)
    assert watch.event["step"] == 80 and int(model.optimizer.iterations.numpy()) == 80
    with pytest.raises(AlbertInputError, match="--on-divergence"):
        DivergenceWatch(on_divergence="rollback-nowhere")
