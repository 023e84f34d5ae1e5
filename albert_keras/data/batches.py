"""Global pretraining batches, the same for any number of workers or replicas (what `pretrain` reads).

The batches are a deterministic function of the files, the seed and the step, whatever the number
of workers or replicas: every input pipeline reads the same stream of global batches and keeps its
own rows of each. The cost is that each worker parses the whole global batch (parsing is a small
fraction of an ALBERT step); the gain is that a run on 1 device, N replicas or N workers computes
the same losses, and that resuming at step `s` only has to skip `s` batches.

Why not `albert_keras.data.pipeline.pretraining_dataset` (the general-purpose reader): it shards
files per input pipeline (so results depend on the worker count) and reshuffles on every new
iterator, while Keras opens an extra iterator to build the model under a strategy; both break the
exact equalities above, which pretraining here guarantees and tests. Both readers share the
schema (`data.schema`) and the dynamic masker (`data.pipeline.DynamicMasker`).

Dynamic masking (`dynamic_masking=True`): every example gets fresh masks each time it is read,
drawn from stateless seeds `(seed, position of the example in the stream)`, so the masks too are
the same for any worker count and after a resume.
"""

import json
import os

from albert_keras import io_utils
from albert_keras.data import schema
from albert_keras.errors import AlbertInputError

MANIFEST_NAME = "manifest.json"


def match_files(file_pattern):
    """Sorted files matching a glob (or several, comma-separated); an error when none match.

    A directory stands for the TFRecords `albert-keras create-data` wrote into it. Works on any
    filesystem (`gs://bucket/tfrecords/*.tfrecord`).

    Example:
    ```python
    files = match_files("tfrecords/wiki/part-*.tfrecord")
    ```
    """
    patterns = [p.strip() for p in str(file_pattern).split(",") if p.strip()]
    patterns = [os.path.join(p, "*.tfrecord*") if io_utils.isdir(p) else p for p in patterns]
    files = sorted({path for pattern in patterns for path in io_utils.glob(pattern)})
    # Absolute local paths: a rerun from another directory is the same run (see pretrain's resume check).
    files = [io_utils.absolute(path) for path in files if not io_utils.isdir(path)]
    if not files:
        raise AlbertInputError(f"{file_pattern}: no TFRecord files match")
    return files


def manifest_settings(files):
    """The `create-data` settings recorded beside `files` (`manifest.json`), or `{}`.

    Example:
    ```python
    manifest_settings(match_files("tfrecords/demo"))["masked_lm_prob"]  # 0.15
    ```
    """
    for manifest in _manifests(files):
        return manifest.get("settings") or {}
    return {}


def _manifests(files):
    for directory in sorted({os.path.dirname(path) for path in files}):
        path = os.path.join(directory, MANIFEST_NAME)
        if not io_utils.exists(path):
            continue
        try:
            data = json.loads(io_utils.read_bytes(path).decode("utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict):
            yield data | {"_path": path}


def inspect_records(files, vocab_size, max_seq_length=None, max_position_embeddings=None, sample_records=512,
                    require_token_boundary=False):
    """Check the records before training: official schema, one sequence length, ids < vocab_size.

    Reads the first record of every file and up to `sample_records` records in all for the id
    check, in plain Python (no TensorFlow op may run before a MultiWorkerMirroredStrategy is
    created, and these checks come first).

    Args:
        files: TFRecord paths (`.gz` = GZIP), on any filesystem.
        vocab_size: the model's vocabulary size.
        max_seq_length: expected sequence length, or None to accept the files' (consistent) one.
        max_position_embeddings: the model's longest sequence.
        sample_records: records scanned for out-of-vocabulary ids.
        require_token_boundary: the records must carry `token_boundary` (dynamic masking).

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
            for raw in schema.read_records(path):
                if count >= max(budget, 1):
                    break
                example = tf.train.Example.FromString(raw)
                features = example.features.feature
                if count == 0:
                    lengths = schema.check_features(path, features, lengths, require_token_boundary)
                ids = np.concatenate([features["input_ids"].int64_list.value, features["masked_lm_ids"].int64_list.value])
                if ids.size and (ids.max() >= vocab_size or ids.min() < 0):
                    bad = int(ids.max() if ids.max() >= vocab_size else ids.min())
                    raise AlbertInputError(
                        f"{path}: record {count} holds token id {bad}, outside the model's vocabulary "
                        f"(vocab_size {vocab_size}); the data was made with another SentencePiece model"
                    )
                count += 1
        except (OSError, EOFError, schema.NotATFRecordFile) as error:
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


def manifest_vocabulary(manifest):
    """A manifest's vocabulary entry (`"vocabulary"`; `"spm_model"` in manifests before WordPiece), or None."""
    entry = manifest.get("vocabulary") or manifest.get("spm_model")
    return entry if isinstance(entry, dict) else None


def _check_manifests(files, vocab_size):
    """`create-data` records its vocabulary in `manifest.json`: compare its size; return the entry."""
    found = None
    for manifest in _manifests(files):
        entry = manifest_vocabulary(manifest)
        data_vocab = entry.get("vocab_size") if entry else None
        if data_vocab is not None and int(data_vocab) != vocab_size:
            raise AlbertInputError(
                f"{manifest['_path']}: the data was made with a {data_vocab}-token vocabulary, "
                f"but the model config has vocab_size {vocab_size}"
            )
        if entry and found and entry.get("sha256") != found.get("sha256"):
            raise AlbertInputError(f"{manifest['_path']}: the data files were made with different vocabularies")
        found = found or entry
    return found


def global_batches(files, global_batch_size, max_seq_length, max_predictions_per_seq, seed=12345, shuffle=True,
                   repeat=True, dynamic_masking=False, vocab_size=None, masked_lm_prob=0.15, ngram=3,
                   favor_shorter_ngram=True, do_whole_word_mask=True):
    """The stream of global batches (dicts in the official schema, int32 ids, float32 weights).

    Deterministic for given files and seed: files in sorted order, a seeded shuffle, no parallel
    nondeterminism, and (with `dynamic_masking`) masks from stateless per-example seeds.

    Args:
        files: TFRecord paths (all `.gz` or none).
        global_batch_size: rows per batch, all replicas together.
        max_seq_length, max_predictions_per_seq: the records' lengths.
        seed: the shuffle (and dynamic mask) seed.
        shuffle: shuffle with a 10,000-record buffer (False: file order).
        repeat: repeat forever.
        dynamic_masking: undo the stored masks and draw new ones for every read.
        vocab_size: the vocabulary size (required with `dynamic_masking`).
        masked_lm_prob, ngram, favor_shorter_ngram, do_whole_word_mask: the masking settings (use
            the data's: `manifest_settings`).

    Example:
    ```python
    dataset = global_batches(files, 256, 128, 20)
    ```
    """
    import tensorflow as tf

    if dynamic_masking and not vocab_size:
        raise ValueError("dynamic_masking needs vocab_size")
    spec = schema.official_feature_spec(max_seq_length, max_predictions_per_seq, include_token_boundary=dynamic_masking)
    dataset = tf.data.TFRecordDataset(list(files), compression_type=schema.compression_of(files[0]))
    if repeat:
        dataset = dataset.repeat()
    if shuffle:
        # Repeat comes first, so one shuffle runs over the endless stream; every new iterator of
        # this dataset (Keras makes one to build the model) must replay the same order.
        dataset = dataset.shuffle(10000, seed=seed, reshuffle_each_iteration=False)
    if dynamic_masking:
        from albert_keras.data.pipeline import DynamicMasker

        vocabulary = _check_manifests(files, vocab_size) if files else None
        masker = DynamicMasker(max_seq_length, max_predictions_per_seq, vocab_size, masked_lm_prob, ngram,
                               vocabulary=vocabulary, favor_shorter_ngram=favor_shorter_ngram,
                               do_whole_word_mask=do_whole_word_mask)
        mask_seed = tf.constant(int(seed), tf.int64)

        def parse_and_mask(index, record):
            example = schema.to_model_inputs(tf.io.parse_single_example(record, spec))
            return masker(example, tf.stack([mask_seed, index]))

        # The position in the (repeated, shuffled) stream keys the masks: the same for every
        # worker, new in every epoch, reproduced exactly after `skip` on resume.
        dataset = dataset.enumerate().map(parse_and_mask, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        dataset = dataset.batch(global_batch_size, drop_remainder=True)
    else:
        dataset = dataset.batch(global_batch_size, drop_remainder=True)
        dataset = dataset.map(
            lambda records: schema.to_model_inputs(tf.io.parse_example(records, spec)),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
    options = tf.data.Options()
    options.deterministic = True
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return dataset.prefetch(2).with_options(options)


def count_global_batches(files, global_batch_size, limit=None):
    """How many whole global batches `files` hold (at most `limit`): what one evaluation pass reads.

    Keras needs the number when it evaluates a dataset of unknown length: Keras 3.15's TensorFlow
    trainer, given such a dataset and `steps_per_execution=1`, counts one batch too many in every
    metric (measured: 352 examples for 320 records, so `sentence_order_accuracy` came out 0.469
    where the model scored 0.516). `pretrain` passes this count as `validation_steps`.

    Only the record framing is read (no parsing), so this costs a fraction of one evaluation.

    Args:
        files: TFRecord paths (all `.gz` or none).
        global_batch_size: rows per batch.
        limit: stop counting at this many batches (`None`: count them all).

    Returns:
        The number of batches, an int.

    Example:
    ```python
    steps = count_global_batches(match_files("tfrecords/heldout"), 256, limit=100)
    ```
    """
    import tensorflow as tf

    dataset = tf.data.TFRecordDataset(list(files), compression_type=schema.compression_of(files[0]))
    dataset = dataset.batch(int(global_batch_size), drop_remainder=True)
    if limit is not None:
        dataset = dataset.take(int(limit))
    return int(dataset.reduce(tf.constant(0, tf.int64), lambda count, _: count + 1).numpy())


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

    # Batches are copied to the replicas' devices ahead of the step (GPU/TPU), not inside it.
    options = tf.distribute.InputOptions(experimental_fetch_to_device=True)
    return strategy.distribute_datasets_from_function(dataset_fn, options=options)
