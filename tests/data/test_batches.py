"""`data.batches`: the global-batch reader `pretrain` uses (static and dynamic masks), its checks."""

import os
import uuid

import numpy as np
import pytest
import tensorflow as tf

from albert_keras import io_utils
from albert_keras.data import batches
from albert_keras.data.pipeline import pretraining_dataset
from albert_keras.errors import AlbertInputError
from tests.data.conftest import PREDICTIONS
from tests.data.conftest import SEQ


@pytest.fixture(scope="module")
def files(embedded_records):
    return batches.match_files(embedded_records[0])


@pytest.fixture(scope="module")
def vocab_size(embedded_records):
    return embedded_records[1]["vocabulary"]["vocab_size"]


def _rows(dataset, count):
    out = list(dataset.take(count).as_numpy_iterator())
    return {k: np.concatenate([b[k] for b in out]) for k in out[0]}


def test_static_batches_are_the_records_in_the_pipelines_format(files, embedded_parsed):
    dataset = batches.global_batches(files, 16, SEQ, PREDICTIONS, shuffle=False, repeat=False)
    # One schema: the same structure, dtypes and shapes as the general-purpose pipeline.
    assert dataset.element_spec == pretraining_dataset(files, 16, SEQ, PREDICTIONS).element_spec
    rows = _rows(dataset, 10**6)
    n = len(rows["input_ids"])
    assert n == len(embedded_parsed["input_ids"]) // 16 * 16
    for name in ("input_ids", "masked_lm_positions", "masked_lm_weights"):
        np.testing.assert_array_equal(rows[name], embedded_parsed[name][:n])
    np.testing.assert_array_equal(rows["next_sentence_labels"], embedded_parsed["next_sentence_labels"][:n, 0])


def test_the_stream_is_a_function_of_files_seed_and_position(files, vocab_size):
    strategy = tf.distribute.get_strategy()
    for masking in ({}, {"dynamic_masking": True, "vocab_size": vocab_size}):
        def make(masking=masking):
            return batches.global_batches(files, 8, SEQ, PREDICTIONS, seed=3, **masking)

        stream = _rows(make(), 6)
        assert all(np.array_equal(stream[k], v) for k, v in _rows(make(), 6).items())  # a new iterator replays it
        # A resumed run skips the batches already trained on and sees exactly the rest.
        resumed = next(iter(batches.distributed_batches(strategy, make, 8, skip_batches=4)))
        for name, value in resumed.items():
            np.testing.assert_array_equal(value.numpy(), stream[name][32:40])


def test_dynamic_masks_undo_the_stored_ones_and_change_every_epoch(files, vocab_size, embedded_parsed):
    total = len(embedded_parsed["input_ids"])
    epoch = total // 8  # whole batches per pass (shuffle off: epoch e row r is record r)
    dataset = batches.global_batches(files, 8, SEQ, PREDICTIONS, shuffle=False, dynamic_masking=True,
                                     vocab_size=vocab_size, masked_lm_prob=0.15, ngram=3)
    rows = _rows(dataset, epoch + 2)
    stored = embedded_parsed
    original = stored["input_ids"].copy()
    for i in range(total):
        k = int(stored["masked_lm_weights"][i].sum())
        original[i, stored["masked_lm_positions"][i, :k]] = stored["masked_lm_ids"][i, :k]
    for i in range(16):
        k = int(rows["masked_lm_weights"][i].sum())
        positions = rows["masked_lm_positions"][i, :k]
        np.testing.assert_array_equal(rows["masked_lm_ids"][i, :k], original[i, positions])
        unmasked = np.setdiff1d(np.arange(SEQ), positions)
        np.testing.assert_array_equal(rows["input_ids"][i, unmasked], original[i, unmasked])
        assert (rows["input_ids"][i] < vocab_size).all()
    # Row 8 * epoch + i is record i again (next pass) with new masks; the stored ones are not reused.
    again = rows["masked_lm_positions"][8 * epoch : 8 * epoch + 16]
    assert (again != rows["masked_lm_positions"][:16]).any(axis=1).mean() > 0.8
    assert (rows["masked_lm_positions"][:16] != stored["masked_lm_positions"][:16]).any(axis=1).mean() > 0.8


def test_checks_name_the_file(files, vocab_size, tmp_path):
    assert batches.inspect_records(files, vocab_size, require_token_boundary=True) == (SEQ, PREDICTIONS)
    assert batches.manifest_settings(files)["ngram"] == 3
    with pytest.raises(AlbertInputError, match=r"vocab_size 100\b"):
        batches.inspect_records(files, 100)
    # Records without token_boundary (as some other tools write) train statically, not dynamically.
    stripped = tmp_path / "no-boundaries.tfrecord"
    with tf.io.TFRecordWriter(str(stripped)) as writer:
        for raw in tf.data.TFRecordDataset(files[0]).take(3).as_numpy_iterator():
            example = tf.train.Example.FromString(raw)
            del example.features.feature["token_boundary"]
            writer.write(example.SerializeToString())
    assert batches.inspect_records([str(stripped)], vocab_size) == (SEQ, PREDICTIONS)
    with pytest.raises(AlbertInputError, match=r"no-boundaries.tfrecord: records lack .* token_boundary \(dynamic"):
        batches.inspect_records([str(stripped)], vocab_size, require_token_boundary=True)
    with pytest.raises(AlbertInputError, match="no TFRecord files match"):
        batches.match_files(str(tmp_path / "none-*"))
    with pytest.raises(ValueError, match="vocab_size"):
        batches.global_batches(files, 8, SEQ, PREDICTIONS, dynamic_masking=True)


def test_records_on_another_filesystem(files, vocab_size):
    root = f"ram://batches-{uuid.uuid4().hex[:8]}/records"
    for path in files[:2] + [os.path.join(os.path.dirname(files[0]), "manifest.json")]:
        io_utils.copy(path, f"{root}/{os.path.basename(path)}", overwrite=True)
    remote = batches.match_files(root)
    assert remote == [f"{root}/{os.path.basename(p)}" for p in files[:2]]
    assert batches.inspect_records(remote, vocab_size) == (SEQ, PREDICTIONS)
    with pytest.raises(AlbertInputError, match=rf"{root}/manifest.json: the data was made with"):
        batches.inspect_records(remote, vocab_size + 1)
    local = _rows(batches.global_batches(files[:2], 8, SEQ, PREDICTIONS, seed=1), 2)
    theirs = _rows(batches.global_batches(remote, 8, SEQ, PREDICTIONS, seed=1), 2)
    np.testing.assert_array_equal(local["input_ids"], theirs["input_ids"])
    io_utils.rmtree(os.path.dirname(root))


def test_count_global_batches_counts_whole_batches_only(tmp_path):
    import tensorflow as tf

    from albert_keras.data.batches import count_global_batches

    path = str(tmp_path / "records.tfrecord")
    with tf.io.TFRecordWriter(path) as writer:
        for index in range(70):
            writer.write(tf.train.Example().SerializeToString() + bytes([index % 7]))
    assert count_global_batches([path], 32) == 2
    assert count_global_batches([path], 10) == 7
    assert count_global_batches([path], 10, limit=3) == 3
    assert count_global_batches([path], 71) == 0
