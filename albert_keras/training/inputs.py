"""Pretraining input for `pretrain`: checks the TFRecords up front, then feeds every strategy the
same global batches.

The batches are a deterministic function of the files, the seed and the step, whatever the number
of workers or replicas: every input pipeline reads the same stream of global batches and keeps its
own rows of each. The cost is that each worker parses the whole global batch (parsing is a small
fraction of an ALBERT step); the gain is that a run on 1 device, N replicas or N workers computes
the same losses, and that resuming at step `s` only has to skip `s` batches.

Why not `albert_keras.data.pipeline.pretraining_dataset` (the general-purpose reader): it shards
files per input pipeline (so results depend on the worker count) and reshuffles on every new
iterator, while Keras opens an extra iterator to build the model under a strategy; both break the
exact equalities above, which pretraining here guarantees and tests.
"""

import gzip
import json
import os
import struct

from albert_keras.errors import AlbertInputError

_INT_FEATURES = ("input_ids", "input_mask", "segment_ids", "masked_lm_positions", "masked_lm_ids", "next_sentence_labels")
REQUIRED_FEATURES = _INT_FEATURES + ("masked_lm_weights",)


def _compression(path):
    return "GZIP" if str(path).endswith(".gz") else ""


def match_files(file_pattern):
    """Sorted files matching a glob (or several, comma-separated); an error when none match.

    Example:
    ```python
    files = match_files("tfrecords/wiki/part-*.tfrecord")
    ```
    """
    import tensorflow as tf

    patterns = [p.strip() for p in str(file_pattern).split(",") if p.strip()]
    # A directory means the TFRecords `albert-keras create-data` wrote into it.
    patterns = [os.path.join(p, "*.tfrecord*") if tf.io.gfile.isdir(p) else p for p in patterns]
    files = sorted({path for pattern in patterns for path in tf.io.gfile.glob(pattern)})
    # Absolute local paths: a rerun from another directory is the same run (see pretrain's resume check).
    files = [path if "://" in path else os.path.abspath(path) for path in files if not tf.io.gfile.isdir(path)]
    if not files:
        raise AlbertInputError(f"{file_pattern}: no TFRecord files match")
    return files


def inspect_records(files, vocab_size, max_seq_length=None, max_position_embeddings=None, sample_records=512):
    """Check the records before training: official schema, one sequence length, ids < vocab_size.

    Reads the first record of every file and up to `sample_records` records in all for the id
    check.

    Args:
        files: TFRecord paths (`.gz` = GZIP).
        vocab_size: the model's vocabulary size.
        max_seq_length: expected sequence length, or None to accept the files' (consistent) one.
        max_position_embeddings: the model's longest sequence.
        sample_records: records scanned for out-of-vocabulary ids.

    Returns:
        `(max_seq_length, max_predictions_per_seq)` of the records.

    Example:
    ```python
    seq_length, predictions = inspect_records(match_files("data/*.tfrecord"), vocab_size=30000)
    ```
    """
    import numpy as np
    import tensorflow as tf

    _check_manifests(files, vocab_size)
    lengths = None
    budget = sample_records
    for path in files:
        example = None
        count = 0
        try:
            # Read in plain Python, not with tf.data: no TensorFlow op may run before a
            # MultiWorkerMirroredStrategy is created, and these checks come first.
            for raw in _read_records(path):
                if count >= max(budget, 1):
                    break
                example = tf.train.Example.FromString(raw)
                features = example.features.feature
                if count == 0:
                    lengths = _check_schema(path, features, lengths)
                ids = np.concatenate([features["input_ids"].int64_list.value, features["masked_lm_ids"].int64_list.value])
                if ids.size and (ids.max() >= vocab_size or ids.min() < 0):
                    bad = int(ids.max() if ids.max() >= vocab_size else ids.min())
                    raise AlbertInputError(
                        f"{path}: record {count} holds token id {bad}, outside the model's vocabulary "
                        f"(vocab_size {vocab_size}); the data was made with another SentencePiece model"
                    )
                count += 1
        except (OSError, EOFError, _NotTFRecord) as error:
            raise AlbertInputError(f"{path}: not a readable TFRecord file ({error})") from None
        except Exception as error:  # noqa: BLE001 - protobuf's DecodeError has no stable import path
            if isinstance(error, AlbertInputError):
                raise
            raise AlbertInputError(f"{path}: record {count} is not a tf.train.Example ({error})") from None
        if example is None:
            raise AlbertInputError(f"{path}: holds no records")
        budget = max(budget - count, 0)
    seq_length, predictions = lengths
    if max_seq_length is not None and seq_length != max_seq_length:
        raise AlbertInputError(
            f"{files[0]}: records have sequence length {seq_length}, but --max-seq-length is {max_seq_length}"
        )
    if max_position_embeddings is not None and seq_length > max_position_embeddings:
        raise AlbertInputError(
            f"{files[0]}: records have sequence length {seq_length}, longer than the model's "
            f"max_position_embeddings ({max_position_embeddings})"
        )
    return seq_length, predictions


class _NotTFRecord(ValueError):
    pass


def _read_records(path):
    """Yield the records of a TFRecord file (framing: u64 length, u32 crc, data, u32 crc)."""
    opener = gzip.open if _compression(path) else open
    size_limit = os.path.getsize(path) * (1000 if _compression(path) else 1)
    with opener(path, "rb") as f:
        while True:
            header = f.read(12)
            if not header:
                return
            if len(header) < 12:
                raise _NotTFRecord("truncated record header")
            (length,) = struct.unpack("<Q", header[:8])
            if length > size_limit:
                raise _NotTFRecord(f"record length {length} exceeds the file size")
            data = f.read(length)
            if len(data) < length or len(f.read(4)) < 4:
                raise _NotTFRecord("truncated record")
            yield data


def _check_manifests(files, vocab_size):
    """`create-data` records its SentencePiece vocabulary size in `manifest.json`: compare it."""
    for directory in sorted({os.path.dirname(path) for path in files}):
        manifest_path = os.path.join(directory, "manifest.json")
        try:
            with open(manifest_path) as f:
                data_vocab = json.load(f).get("spm_model", {}).get("vocab_size")
        except (OSError, ValueError, AttributeError):
            continue
        if data_vocab is not None and int(data_vocab) != vocab_size:
            raise AlbertInputError(
                f"{manifest_path}: the data was made with a {data_vocab}-piece SentencePiece model, "
                f"but the model config has vocab_size {vocab_size}"
            )


def _check_schema(path, features, expected):
    missing = [name for name in REQUIRED_FEATURES if name not in features]
    if missing:
        raise AlbertInputError(
            f"{path}: records lack the ALBERT pretraining feature(s) {', '.join(missing)} "
            "(make them with `albert-keras create-data`)"
        )
    for name in _INT_FEATURES:
        if features[name].WhichOneof("kind") != "int64_list":
            raise AlbertInputError(f"{path}: feature '{name}' must be int64")
    if features["masked_lm_weights"].WhichOneof("kind") != "float_list":
        raise AlbertInputError(f"{path}: feature 'masked_lm_weights' must be float")
    seq_length = len(features["input_ids"].int64_list.value)
    predictions = len(features["masked_lm_ids"].int64_list.value)
    for name, length in (
        ("input_mask", seq_length),
        ("segment_ids", seq_length),
        ("masked_lm_positions", predictions),
        ("next_sentence_labels", 1),
    ):
        if len(features[name].int64_list.value) != length:
            raise AlbertInputError(f"{path}: feature '{name}' has length {len(features[name].int64_list.value)}, expected {length}")
    if len(features["masked_lm_weights"].float_list.value) != predictions:
        raise AlbertInputError(f"{path}: feature 'masked_lm_weights' has the wrong length")
    if expected is not None and (seq_length, predictions) != expected:
        raise AlbertInputError(
            f"{path}: records have sequence length {seq_length} and {predictions} predictions, other files "
            f"{expected[0]} and {expected[1]}"
        )
    return seq_length, predictions


def global_batches(files, global_batch_size, max_seq_length, max_predictions_per_seq, seed=12345, shuffle=True, repeat=True):
    """The stream of global batches (dicts in the official schema, int32 ids, float32 weights).

    Deterministic for given files and seed: files in sorted order, a seeded shuffle, no parallel
    nondeterminism.

    Example:
    ```python
    dataset = global_batches(files, 256, 128, 20)
    ```
    """
    import tensorflow as tf

    spec = {
        name: tf.io.FixedLenFeature([max_seq_length], tf.int64)
        for name in ("input_ids", "input_mask", "segment_ids")
    }
    spec["masked_lm_positions"] = tf.io.FixedLenFeature([max_predictions_per_seq], tf.int64)
    spec["masked_lm_ids"] = tf.io.FixedLenFeature([max_predictions_per_seq], tf.int64)
    spec["masked_lm_weights"] = tf.io.FixedLenFeature([max_predictions_per_seq], tf.float32)
    spec["next_sentence_labels"] = tf.io.FixedLenFeature([1], tf.int64)

    compression = _compression(files[0])
    dataset = tf.data.TFRecordDataset(list(files), compression_type=compression)
    if repeat:
        dataset = dataset.repeat()
    if shuffle:
        # Repeat comes first, so one shuffle runs over the endless stream; every new iterator of
        # this dataset (Keras makes one to build the model) must replay the same order.
        dataset = dataset.shuffle(10000, seed=seed, reshuffle_each_iteration=False)
    dataset = dataset.batch(global_batch_size, drop_remainder=True)

    def parse(serialized):
        parsed = tf.io.parse_example(serialized, spec)
        out = {name: tf.cast(value, tf.int32) for name, value in parsed.items() if value.dtype == tf.int64}
        out["masked_lm_weights"] = parsed["masked_lm_weights"]
        out["next_sentence_labels"] = tf.reshape(out["next_sentence_labels"], [-1])
        return out

    options = tf.data.Options()
    options.deterministic = True
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return dataset.map(parse, num_parallel_calls=tf.data.AUTOTUNE).prefetch(2).with_options(options)


def distributed_batches(strategy, make_global_dataset, global_batch_size, skip_batches=0):
    """Distribute a global-batch dataset so each replica gets its slice of each global batch.

    Args:
        strategy: the `tf.distribute.Strategy`.
        make_global_dataset: a no-argument function returning the global-batch `tf.data.Dataset`.
        global_batch_size: rows per global batch (divisible by `strategy.num_replicas_in_sync`).
        skip_batches: global batches to skip first (the data position of a resumed run).

    Returns:
        A distributed dataset for `model.fit`.

    Example:
    ```python
    data = distributed_batches(strategy, lambda: global_batches(files, 64, 128, 20), 64)
    model.fit(data, steps_per_epoch=100)
    ```
    """
    import tensorflow as tf

    replicas = strategy.num_replicas_in_sync
    if global_batch_size % replicas:
        raise AlbertInputError(
            f"--global-batch-size {global_batch_size} is not divisible by the {replicas} replicas"
        )
    per_replica = global_batch_size // replicas

    def dataset_fn(input_context):
        pipelines = input_context.num_input_pipelines
        per_pipeline = global_batch_size // pipelines
        start = input_context.input_pipeline_id * per_pipeline
        dataset = make_global_dataset()
        if skip_batches:
            dataset = dataset.skip(skip_batches)
        dataset = dataset.map(lambda batch: {k: v[start : start + per_pipeline] for k, v in batch.items()})
        if per_pipeline != per_replica:
            # Several local replicas: each takes the next per-replica slice, in order.
            dataset = dataset.unbatch().batch(per_replica, drop_remainder=True)
        return dataset.prefetch(2)

    return strategy.distribute_datasets_from_function(dataset_fn)


