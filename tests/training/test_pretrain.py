"""`pretrain` end to end on real TFRecords: learning, outputs, logs, and input errors before training."""

import glob
import json
import os

import numpy as np
import pytest

from albert_keras.errors import AlbertInputError
from albert_keras.training.loop import epoch_segments as _segments
from albert_keras.training.pretrain import pretrain


@pytest.fixture(scope="module")
def trained_run(tiny_config_path, small_records, tmp_path_factory):
    output = tmp_path_factory.mktemp("run") / "out"
    summary = pretrain(
        tiny_config_path, small_records, str(output), global_batch_size=32, num_train_steps=400,
        num_warmup_steps=10, learning_rate=1e-3, optimizer="adamw", checkpoint_every=100, log_every=50,
        eval_files=small_records, eval_steps=2, verbose=0,
    )
    return summary, str(output)


def test_loss_falls_and_accuracies_beat_chance(trained_run):
    summary, _ = trained_run
    assert summary["step"] == 400 and summary["steps_this_run"] == 400
    # Chance: 1/1000 for a masked token (0.1 for always answering the most frequent piece), 0.5 for SOP.
    assert summary["train"]["masked_lm_accuracy"] > 0.2
    assert summary["train"]["sentence_order_accuracy"] > 0.8
    assert summary["eval"]["masked_lm_loss"] < 4.0  # from ln(1000) = 6.9 at initialization


def test_outputs_pretrained_directory_and_tensorboard(trained_run, tiny_config_path):
    import tensorflow as tf

    from albert_keras.modeling.pretrained import load_pretrained

    summary, output = trained_run
    model = load_pretrained(os.path.join(output, "pretrained"))
    assert type(model).__name__ == "AlbertPretrainer"
    assert json.load(open(os.path.join(output, "summary.json")))["step"] == 400
    checkpoints = sorted(os.listdir(os.path.join(output, "checkpoints")))
    assert checkpoints == ["ckpt-000000200", "ckpt-000000300", "ckpt-000000400"]  # keep the last 3

    tags = {}
    for path in glob.glob(os.path.join(output, "logs", "*", "events.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                tags.setdefault(os.path.basename(os.path.dirname(path)), {})[value.tag] = event.step
    for name in ("loss", "masked_lm_loss", "sentence_order_loss", "masked_lm_accuracy",
                 "sentence_order_accuracy", "learning_rate", "examples_per_second"):
        assert tags["train"][name] == 400, name
    assert tags["eval"]["masked_lm_accuracy"] == 400
    assert summary["examples_per_second"] > 0


def _own_sop_scores(pretrained_dir, records):
    """SOP accuracy, mean SOP loss and record count of a pretrained model on `records`, without Keras' evaluate."""
    import tensorflow as tf

    from albert_keras.data import batches
    from albert_keras.modeling.pretrained import load_pretrained

    model = load_pretrained(pretrained_dir)
    correct, losses, count = 0, [], 0
    for batch in batches.global_batches([records], 32, 32, 5, shuffle=False, repeat=False):
        logits = model(batch, training=False)["sop_logits"]
        labels = tf.reshape(batch["next_sentence_labels"], [-1])
        correct += int(tf.reduce_sum(tf.cast(tf.argmax(logits, -1, output_type=tf.int32) == labels, tf.int32)))
        losses.append(tf.keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True).numpy())
        count += int(labels.shape[0])
    return correct / count, float(np.concatenate(losses).mean()), count


def test_evaluation_scores_exactly_the_evaluation_records(trained_run, small_records):
    # Keras 3.15 counts a phantom batch when it evaluates a dataset of unknown length one step per
    # execution (352 examples for 320 records in the quickstart): the summary must equal the
    # model's own scores on the 64 records, computed here without Keras' evaluate.
    summary, output = trained_run
    accuracy, loss, count = _own_sop_scores(os.path.join(output, "pretrained"), small_records)
    assert count == 64
    assert summary["eval"]["sentence_order_accuracy"] == pytest.approx(accuracy, abs=1e-6)
    assert summary["eval"]["sentence_order_loss"] == pytest.approx(loss, abs=1e-4)


def test_evaluation_with_gradient_accumulation_scores_every_record(tiny_config_path, small_records, tmp_path):
    # Evaluation reads micro-batches of 16 here: all 64 records, not the first 2 x 16.
    summary = pretrain(
        tiny_config_path, small_records, str(tmp_path / "out"), global_batch_size=32, num_train_steps=4,
        num_warmup_steps=0, learning_rate=1e-3, optimizer="adamw", gradient_accumulation_steps=2,
        checkpoint_every=4, eval_files=small_records, eval_steps=100, verbose=0,
    )
    accuracy, loss, _ = _own_sop_scores(str(tmp_path / "out" / "pretrained"), small_records)
    assert summary["eval"]["sentence_order_accuracy"] == pytest.approx(accuracy, abs=1e-6)
    assert summary["eval"]["sentence_order_loss"] == pytest.approx(loss, abs=1e-4)


def test_evaluation_files_smaller_than_a_batch_are_refused(tiny_config_path, small_records, tmp_path):
    with pytest.raises(AlbertInputError, match="fewer records than one global batch"):
        pretrain(tiny_config_path, small_records, str(tmp_path / "out"), global_batch_size=128, num_train_steps=2,
                 eval_files=small_records, verbose=0)
    assert not os.path.exists(tmp_path / "out" / "pretrained")


def test_gradient_accumulation_matches_the_full_batch(tiny_config_path, small_records, tmp_path):
    import tensorflow as tf

    from albert_keras.modeling.pretrained import load_pretrained

    # The MLM loss divides by the sum of `masked_lm_weights`; accumulation can only normalize per
    # micro-batch, so it equals the full batch exactly when every micro-batch has the same sum.
    # Give every prediction slot weight 1 to make that so.
    path = tmp_path / "equal_weights.tfrecord"
    with tf.io.TFRecordWriter(str(path)) as writer:
        for record in tf.data.TFRecordDataset(small_records):
            example = tf.train.Example.FromString(record.numpy())
            weights = example.features.feature["masked_lm_weights"].float_list.value
            weights[:] = [1.0] * len(weights)
            writer.write(example.SerializeToString())
    runs = {}
    for accumulation in (1, 2):
        summary = pretrain(
            tiny_config_path, str(path), str(tmp_path / f"acc{accumulation}"), global_batch_size=16,
            num_train_steps=6, num_warmup_steps=0, learning_rate=1e-3, gradient_accumulation_steps=accumulation,
            checkpoint_every=3, verbose=0,
        )
        assert summary["step"] == 6
        runs[accumulation] = load_pretrained(str(tmp_path / f"acc{accumulation}" / "pretrained")).get_weights()
    for full, accumulated in zip(runs[1], runs[2]):
        np.testing.assert_allclose(full, accumulated, rtol=1e-4, atol=1e-6)


def test_segments_align_epochs_with_the_interval():
    assert _segments(0, 10, 4) == [(0, 2, 4), (2, 3, 2)]
    assert _segments(6, 10, 4) == [(1, 2, 2), (2, 3, 2)]
    assert _segments(5, 20, 5) == [(1, 4, 5)]
    assert _segments(10, 10, 5) == []


# --- bad input: one clear line, before any model is built ---------------------------------------


def _expect_error(match, config, files, tmp_path, **kwargs):
    with pytest.raises(AlbertInputError, match=match) as info:
        pretrain(config, files, str(tmp_path / "out"), num_train_steps=2, verbose=0, **kwargs)
    assert "\n" not in str(info.value)
    assert not os.path.exists(tmp_path / "out")  # nothing written before the checks pass


def test_no_matching_files(tiny_config_path, tmp_path):
    _expect_error("no TFRecord files match", tiny_config_path, str(tmp_path / "missing-*.tfrecord"), tmp_path)


def test_records_of_another_schema(tiny_config_path, tmp_path):
    import tensorflow as tf

    path = tmp_path / "classifier.tfrecord"
    with tf.io.TFRecordWriter(str(path)) as writer:
        feature = {"input_ids": tf.train.Feature(int64_list=tf.train.Int64List(value=[2, 5, 3])),
                   "label_ids": tf.train.Feature(int64_list=tf.train.Int64List(value=[1]))}
        writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    _expect_error("lack the ALBERT pretraining feature", tiny_config_path, str(path), tmp_path)


def test_not_a_tfrecord_file(tiny_config_path, tmp_path):
    path = tmp_path / "text.tfrecord"
    path.write_text("this is not a TFRecord file\n" * 10)
    _expect_error("not a readable TFRecord file", tiny_config_path, str(path), tmp_path)


def test_records_of_another_sequence_length(tiny_config_path, pretraining_records, tmp_path):
    _expect_error("sequence length 32, but --max-seq-length is 64", tiny_config_path, pretraining_records,
                  tmp_path, max_seq_length=64)


def test_records_longer_than_the_model(small_records, tmp_path):
    from tests.training.conftest import TINY_CONFIG

    config = dict(TINY_CONFIG, max_position_embeddings=16)
    from albert_keras.config import AlbertConfig

    _expect_error("longer than the model's max_position_embeddings", AlbertConfig.from_dict(config),
                  small_records, tmp_path)


def test_vocabulary_mismatch_via_manifest(pretraining_records, tmp_path):
    _expect_error("made with a 1000-token vocabulary, but the model config has vocab_size 30000", "albert-base-v2",
                  pretraining_records, tmp_path)


def test_vocabulary_mismatch_via_ids(small_records, tmp_path):
    from albert_keras.config import AlbertConfig
    from tests.training.conftest import TINY_CONFIG

    config = AlbertConfig.from_dict(dict(TINY_CONFIG, vocab_size=200))  # no manifest next to small_records
    _expect_error(r"token id \d+, outside the model's vocabulary \(vocab_size 200\)", config, small_records, tmp_path)


def test_cli_prints_one_line(tiny_config_path, tmp_path, capsys):
    from albert_keras.cli import main

    code = main(["pretrain", "--config", tiny_config_path, "--train-files", str(tmp_path / "none-*"),
                 "--output", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "no TFRecord files match" in err


def test_nan_loss_stops_naming_the_step(tiny_config_path, small_records, tmp_path):
    from albert_keras.training.checkpointing import TrainingDivergedError

    with pytest.raises(TrainingDivergedError, match=r"at step \d+: lower --learning-rate") as info:
        pretrain(tiny_config_path, small_records, str(tmp_path / "out"), global_batch_size=8, num_train_steps=30,
                 num_warmup_steps=0, learning_rate=1e12, optimizer="adamw", checkpoint_every=1, verbose=0)
    step = int(info.value.args[0].split("at step ")[1].split(":")[0])
    saved = sorted(os.listdir(tmp_path / "out" / "checkpoints"))
    # Every step before the divergence was checkpointed; the diverged one never is.
    assert saved and saved[-1] == f"ckpt-{step - 1:09d}"


def test_cli_dynamic_masking_flag_reaches_pretrain():
    from albert_keras.cli import build_parser

    base = ["pretrain", "--config", "c.json", "--train-files", "d", "--output-dir", "o"]
    assert build_parser().parse_args(base).dynamic_masking is False
    args = build_parser().parse_args(base + ["--dynamic-masking"])
    assert args.dynamic_masking is True and args.func.__module__ == "albert_keras.training.commands"
