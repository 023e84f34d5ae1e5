"""`albert-keras quickstart` shrunk to seconds: every stage's output, clean console output, the
SavedModel answering in a process with only tensorflow + tensorflow_text, the int8 TFLite model run
by ai_edge_litert; and the quickstart's building blocks."""

import contextlib
import io
import json
import os
import re
import shlex
import subprocess
import sys

import numpy as np
import pytest

from albert_keras.cli import build_parser
from albert_keras.quickstart import NativeLogFilter
from albert_keras.quickstart import heldout_baselines
from albert_keras.quickstart import format_table
from albert_keras.quickstart import split_documents
from albert_keras.quickstart import topic_task

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--vocab-size", "1000", "--max-seq-length", "32", "--dupe-factor", "1", "--num-train-steps", "8",
        "--batch-size", "8", "--warmup", "2", "--hidden-size", "32", "--num-hidden-layers", "2",
        "--finetune-epochs", "1", "--topics", "3", "--per-topic", "24"]
STAGES = ("1 vocabulary", "2 pretraining data", "3 pretraining", "4 fine-tuning", "5 SavedModel", "6 TFLite int8")


@pytest.fixture(scope="module")
def quickstart_run(tmp_path_factory):
    output = tmp_path_factory.mktemp("quickstart") / "qs"
    env = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # the command must quiet TensorFlow itself
    result = subprocess.run([sys.executable, "-m", "albert_keras", "quickstart", "--output", str(output), *TINY],
                            capture_output=True, text=True, timeout=900, env=env, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    with open(output / "quickstart.json") as f:
        return result, json.load(f), output


def _check_every_stage_reports_its_output(quickstart_run):
    result, summary, output = quickstart_run
    table = result.stdout.strip().splitlines()[-len(STAGES):]
    for line, stage in zip(table, STAGES):
        assert line.startswith(stage), (line, stage)
    assert [row[0] for row in summary["table"]][: len(STAGES)] == [s if s != "4 fine-tuning" else
                                                                   "4 fine-tuning (topic of a sentence)" for s in STAGES]
    assert all(row[2] > 0 for row in summary["table"])  # seconds per stage

    assert os.path.isfile(summary["paths"]["spm_model"])
    assert summary["instances"]["train"] > 100 and summary["instances"]["heldout"] > 10
    pretraining = summary["pretraining"]
    assert pretraining["step"] == 8 and os.path.isdir(pretraining["pretrained_dir"])
    # The baselines are what the held-out records themselves give (heldout_baselines is tested on known
    # records below), so the table compares the model with the right numbers.
    expected = heldout_baselines(os.path.join(str(output), "tfrecords", "heldout", "part-*"))
    assert (pretraining["heldout_baselines"]["masked_lm_accuracy"],
            pretraining["heldout_baselines"]["sentence_order_accuracy"]) == pytest.approx(expected)
    assert isinstance(pretraining["warnings"], list)
    labels = json.load(open(os.path.join(summary["finetuning"]["pretrained"]["dir"], "finetune.json")))
    labels = labels["metadata"]["labels"]
    assert len(labels) == 3
    dev = [json.loads(line) for line in open(os.path.join(str(output), "topics", "dev.jsonl"))]
    # The console's "chance 1/topics" is the dev file's majority class: the topics are balanced.
    assert max(sum(r["label"] == label for r in dev) for label in labels) == len(dev) / 3
    from albert_keras.modeling import AlbertClassifier

    for name in ("pretrained", "random"):
        run = summary["finetuning"][name]
        assert os.path.isfile(os.path.join(run["dir"], "finetune.json"))
        # The reported accuracy is the saved model's on the dev file, recomputed here from its predictions
        # (a training figure, another checkpoint's or a made-up one would differ).
        classifier = AlbertClassifier.from_pretrained(run["dir"])
        predicted = classifier.predict([r["text"] for r in dev], verbose=0).argmax(-1)
        accuracy = float(np.mean([labels[i] == r["label"] for i, r in zip(predicted, dev)]))
        assert run["accuracy"] == pytest.approx(accuracy, abs=1e-6), name
    assert summary["saved_model"]["answer"] in labels and summary["tflite"]["answer"] in labels
    assert os.path.getsize(summary["tflite"]["path"]) > 0


def _check_console_output_is_clean(quickstart_run):
    result, _, _ = quickstart_run
    for stream in (result.stdout, result.stderr):
        assert "\x1b[" not in stream and "\r" not in stream  # not a terminal: no escape codes
    noise = [line for line in result.stderr.splitlines()
             if re.match(r"[IWEF]\d{4} ", line) or "absl::InitializeLog" in line or "XNNPACK" in line]
    assert not noise, noise
    assert "[6/6]" in result.stderr and "same as: albert-keras pretrain" in result.stderr
    printed = [line.split("same as: ", 1)[1] for line in result.stderr.splitlines() if "same as: " in line]
    assert len(printed) == 6
    parser = build_parser()
    for command in printed:  # every command the quickstart prints parses, in today's spellings
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            parser.parse_args(shlex.split(command)[1:])
        assert "deprecated" not in err.getvalue(), command


def _check_saved_model_answers_with_only_tensorflow_and_text(quickstart_run):
    _, summary, _ = quickstart_run
    check = (
        "import sys, tensorflow as tf, tensorflow_text\n"
        f"m = tf.saved_model.load({summary['saved_model']['dir']!r})\n"
        "out = m.signatures['serving_default'](text=tf.constant(['Lists are mutable sequences.']))\n"
        "assert not any(name in sys.modules for name in ('keras_hub', 'albert_keras'))\n"
        "print(out['labels'].numpy()[0].decode())\n"
    )
    loaded = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=300)
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    assert loaded.stdout.strip().startswith("topic")


def _check_tflite_model_runs_raw_text(quickstart_run):
    from albert_keras.export.tflite import interpreter

    _, summary, _ = quickstart_run
    runner = interpreter(summary["tflite"]["path"]).get_signature_runner()
    outputs = runner(text=np.array([b"A tuple cannot be changed."], dtype=object))
    probabilities = np.asarray(outputs["probabilities"])
    assert probabilities.shape == (1, 3) and abs(float(probabilities.sum()) - 1.0) < 1e-3


# One test, not four: under pytest-xdist a module fixture runs once per worker that takes one of its
# tests, and this one is a whole quickstart run (about a minute of a core).
@pytest.mark.slow
def test_quickstart_run(quickstart_run):
    _check_every_stage_reports_its_output(quickstart_run)
    _check_console_output_is_clean(quickstart_run)
    _check_saved_model_answers_with_only_tensorflow_and_text(quickstart_run)
    _check_tflite_model_runs_raw_text(quickstart_run)


def test_heldout_baselines_count_weighted_masks_and_the_majority_order(tmp_path):
    import tensorflow as tf

    def example(ids, weights, order):
        feature = {"masked_lm_ids": tf.train.Feature(int64_list=tf.train.Int64List(value=ids)),
                   "masked_lm_weights": tf.train.Feature(float_list=tf.train.FloatList(value=weights)),
                   "next_sentence_labels": tf.train.Feature(int64_list=tf.train.Int64List(value=[order]))}
        return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()

    with tf.io.TFRecordWriter(str(tmp_path / "part-0")) as writer:
        writer.write(example([5, 5, 7, 5], [1, 1, 1, 0], 1))  # the last 5 is padding (weight 0)
        writer.write(example([5, 9], [1, 1], 0))
    with tf.io.TFRecordWriter(str(tmp_path / "part-1")) as writer:
        writer.write(example([7, 0], [1, 0], 1))
    mlm, sop = heldout_baselines(str(tmp_path / "part-*"))
    assert mlm == pytest.approx(3 / 6)  # piece 5 is 3 of the 6 weighted masks (4 of 7 if padding counted)
    assert sop == pytest.approx(2 / 3)
    assert heldout_baselines(str(tmp_path / "none-*")) == (0.0, 0.0)


def test_split_documents_holds_out_whole_documents():
    documents = [[f"Sentence {i}."] for i in range(20)]
    train, held_out = split_documents(documents)
    assert len(train) + len(held_out) == 20 and len(held_out) == 3
    assert not {s for d in train for s in d} & {s for d in held_out for s in d}


def test_topic_task_is_balanced_and_splits_sentences(tmp_path):
    documents = [[f"Doc {d} sentence {i}." for i in range(n)] for d, n in enumerate([5, 12, 9, 30])]
    train, dev, labels = topic_task(documents, str(tmp_path), topics=3, dev_every=4)
    assert labels == ["topic1", "topic2", "topic3"]  # the three largest, in index order
    rows = {name: [json.loads(line) for line in open(path)] for name, path in (("train", train), ("dev", dev))}
    for name in rows:
        counts = {label: sum(r["label"] == label for r in rows[name]) for label in labels}
        assert len(set(counts.values())) == 1, counts  # balanced: 9 sentences per topic in all
    assert len(rows["train"]) + len(rows["dev"]) == 27
    assert not {r["text"] for r in rows["train"]} & {r["text"] for r in rows["dev"]}


def test_table_aligns_columns():
    text = format_table([("1 vocabulary", "a/spiece.model", 1.25, "1000 pieces"), ("2 data", "b/", 10.0, "x")])
    lines = text.splitlines()
    assert len(lines) == 4 and lines[1].startswith("-----")
    assert lines[0].index("made") == lines[2].index("a/") == lines[3].index("b/")
    assert lines[0].index("seconds") == lines[2].index("1.2") == lines[3].index("10.0")


def test_native_log_filter_drops_tensorflow_lines_only(capfd):
    with NativeLogFilter():
        os.write(2, b"I0000 00:00:1796131622.979565   24048 port.cc:153] oneDNN custom operations are on.\n")
        os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n")
        os.write(2, b"progress 50%\r")
        os.write(2, b"a real message\n")
    err = capfd.readouterr().err
    assert err == "progress 50%\ra real message\n"
