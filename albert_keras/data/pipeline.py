"""tf.data input for ALBERT pretraining from official-schema TFRecords.

`pretraining_dataset` yields exactly the dict `AlbertPretrainer` trains on (official names, the
schema and conversions of `data.schema`, shared with `data.batches`, the reader `pretrain` uses):
`input_ids`, `input_mask`, `segment_ids`, `masked_lm_positions`, `masked_lm_ids` (int32
[B, T] / [B, P]), `masked_lm_weights` (float32 [B, P]) and `next_sentence_labels` (int32 [B]).

Files are listed, sharded per input pipeline (`tf.distribute.InputContext`), read with a parallel
interleave, shuffled, batched (optionally `drop_remainder` for TPUs and fixed shapes), parsed in
batches, and prefetched; every parallel stage is autotuned. `pretraining_dataset_fn` returns the
`dataset_fn(input_context)` that `strategy.distribute_datasets_from_function` expects.

Dynamic masking (`dynamic_masking=True`): the stored masks are undone (original ids restored from
`masked_lm_positions`/`masked_lm_ids`) and fresh n-gram whole-word masks are drawn in-graph for
every example, every epoch, from the stored `token_boundary`. It applies the rule of
`masking.MaskingSpec` (random word order, n ~ 1/n, shorter-n fallback, no overlap, the budget,
80/10/10 per token), the same spec the static masker `instances.InstanceMaker` takes its constants
from; `tests/data/test_masking.py` checks that both draw the same distribution on the same tokens.
Records therefore need `token_boundary`, which the official schema has.
"""

import numpy as np
import tensorflow as tf

from albert_keras.data.masking import MaskingSpec
from albert_keras.data.schema import compression_of
from albert_keras.data.schema import official_feature_spec
from albert_keras.data.schema import to_model_inputs
from albert_keras.tokenization.sentencepiece import CLS_ID
from albert_keras.tokenization.sentencepiece import MASK_ID
from albert_keras.tokenization.sentencepiece import SEP_ID
from albert_keras.tokenization.sentencepiece import SPECIAL_IDS

# Without a manifest's vocabulary entry: ALBERT's SentencePiece ids, whose special pieces are the
# first five ids, so random replacements come from 5..vocab_size-1.
_NUM_SPECIAL_IDS = len(SPECIAL_IDS)


def masking_ids(vocabulary_entry, vocab_size):
    """`(cls, sep, mask, replacement ids)` from a manifest's `"vocabulary"` entry (None: ALBERT's).

    Example:
    ```python
    masking_ids(None, 30000)[:3]  # (2, 3, 4)
    ```
    """
    if not vocabulary_entry or "special_ids" not in vocabulary_entry:
        return CLS_ID, SEP_ID, MASK_ID, np.arange(_NUM_SPECIAL_IDS, vocab_size, dtype=np.int32)
    special = vocabulary_entry["special_ids"]
    ranges = vocabulary_entry.get("replacement_ids") or [[0, vocab_size]]
    replacement = np.concatenate([np.arange(a, min(b, vocab_size), dtype=np.int32) for a, b in ranges])
    return int(special["cls"]), int(special["sep"]), int(special["mask"]), replacement


def _list_files(file_pattern):
    patterns = [file_pattern] if isinstance(file_pattern, (str, bytes)) else list(file_pattern)
    files = sorted(set(f for pattern in patterns for f in tf.io.gfile.glob(pattern)))
    if not files:
        raise FileNotFoundError(f"{file_pattern}: no TFRecord files match")
    return files


def _compression_of(files, compression):
    if compression != "auto":
        return compression or ""
    return "GZIP" if all(compression_of(f) for f in files) else ""


def pretraining_dataset(
    file_pattern,
    batch_size,
    max_seq_length,
    max_predictions_per_seq,
    is_training=True,
    shuffle_buffer_size=10000,
    seed=None,
    drop_remainder=True,
    repeat=False,
    input_context=None,
    compression="auto",
    cycle_length=None,
    dynamic_masking=False,
    vocab_size=None,
    masked_lm_prob=0.15,
    ngram=3,
    deterministic=None,
    vocabulary=None,
    favor_shorter_ngram=True,
    do_whole_word_mask=True,
):
    """A tf.data pipeline of pretraining batches from official ALBERT TFRecords.

    Args:
        file_pattern: a glob (or list of globs) of TFRecord shards, e.g. `tfrecords/NAME/part-*`.
        batch_size: examples per batch (per replica when used under a strategy).
        max_seq_length, max_predictions_per_seq: the records' lengths (see `manifest.json`).
        is_training: shuffle files and examples (False: one deterministic pass in file order).
        shuffle_buffer_size: examples in the shuffle buffer.
        seed: seed for file and example shuffling and dynamic masks.
        drop_remainder: drop the last partial batch (static batch shape; needed on TPU).
        repeat: repeat forever (use with `steps_per_epoch`).
        input_context: a `tf.distribute.InputContext`; shards the files (or, with fewer files
            than pipelines, the records) so each input pipeline reads a disjoint part.
        compression: `"auto"` (gzip when every file ends in `.gz`), `""` or `"GZIP"`.
        cycle_length: files read in parallel (default: autotuned, at most the number of files).
        dynamic_masking: draw new masks in-graph for every example each time it is read.
        vocab_size: vocabulary size (required with `dynamic_masking`).
        masked_lm_prob, ngram, favor_shorter_ngram, do_whole_word_mask: masking settings for
            `dynamic_masking` (use the data's: `batches.manifest_settings`).
        vocabulary: with `dynamic_masking`, the manifest's `"vocabulary"` entry (special ids and
            replacement ids); None: ALBERT's SentencePiece ids (replacements never special pieces).
        deterministic: element order of parallel stages (default: deterministic unless training).

    Returns:
        A `tf.data.Dataset` of dicts (no labels: the pretrainer computes its losses from them).

    Example:
    ```python
    dataset = pretraining_dataset("tfrecords/demo/part-*", batch_size=32,
                                  max_seq_length=128, max_predictions_per_seq=20)
    model.fit(dataset, epochs=1)
    ```
    """
    if dynamic_masking and not vocab_size:
        raise ValueError("dynamic_masking needs vocab_size")
    files = _list_files(file_pattern)
    compression_type = _compression_of(files, compression)
    if deterministic is None:
        deterministic = not is_training
    options = tf.data.Options()
    options.deterministic = deterministic
    if input_context is not None:
        # We shard per input pipeline ourselves; tf.distribute must not shard again.
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF

    dataset = tf.data.Dataset.from_tensor_slices(files)
    record_sharding = False
    if input_context is not None and input_context.num_input_pipelines > 1:
        if len(files) >= input_context.num_input_pipelines:
            dataset = dataset.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
        else:
            record_sharding = True
    if is_training:
        dataset = dataset.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.interleave(
        lambda f: tf.data.TFRecordDataset(f, compression_type=compression_type),
        cycle_length=cycle_length or min(len(files), 8),
        block_length=1,
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=deterministic,
    )
    if record_sharding:
        dataset = dataset.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
    if is_training:
        dataset = dataset.shuffle(shuffle_buffer_size, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()

    spec = official_feature_spec(max_seq_length, max_predictions_per_seq, include_token_boundary=dynamic_masking)
    if dynamic_masking:
        pipeline_seed = 0 if seed is None else int(seed)
        if input_context is not None:
            pipeline_seed = pipeline_seed * 1000 + input_context.input_pipeline_id
        seeds = tf.data.Dataset.random(seed=pipeline_seed, rerandomize_each_iteration=True).batch(2)
        masker = DynamicMasker(max_seq_length, max_predictions_per_seq, vocab_size, masked_lm_prob, ngram,
                               vocabulary=vocabulary, favor_shorter_ngram=favor_shorter_ngram,
                               do_whole_word_mask=do_whole_word_mask)

        def parse_and_mask(record, seed_pair):
            example = tf.io.parse_single_example(record, spec)
            return masker(to_model_inputs(example), seed_pair)

        dataset = tf.data.Dataset.zip((dataset, seeds))
        dataset = dataset.map(parse_and_mask, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
        dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    else:
        dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
        dataset = dataset.map(
            lambda records: to_model_inputs(tf.io.parse_example(records, spec)),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=deterministic,
        )
    dataset = dataset.prefetch(tf.data.AUTOTUNE)
    return dataset.with_options(options)


def pretraining_dataset_fn(file_pattern, global_batch_size, max_seq_length, max_predictions_per_seq, **kwargs):
    """A `dataset_fn(input_context)` for `strategy.distribute_datasets_from_function`.

    Each input pipeline reads its own shard of the files and batches
    `input_context.get_per_replica_batch_size(global_batch_size)` examples.

    Args:
        file_pattern, max_seq_length, max_predictions_per_seq: as `pretraining_dataset`.
        global_batch_size: the batch size summed over replicas.
        **kwargs: passed on to `pretraining_dataset`.

    Example:
    ```python
    strategy = tf.distribute.MirroredStrategy()
    dataset = strategy.distribute_datasets_from_function(
        pretraining_dataset_fn("tfrecords/demo/part-*", 64, 128, 20, repeat=True))
    ```
    """

    def dataset_fn(input_context):
        batch_size = input_context.get_per_replica_batch_size(global_batch_size)
        return pretraining_dataset(
            file_pattern, batch_size, max_seq_length, max_predictions_per_seq,
            input_context=input_context, **kwargs,
        )

    return dataset_fn


class DynamicMasker:
    """In-graph n-gram whole-word masking for one example (see the module docstring).

    Args:
        max_seq_length, max_predictions_per_seq: record lengths.
        vocab_size: vocabulary size.
        masked_lm_prob: share of tokens to mask before the `max_predictions_per_seq` cap.
        ngram: longest n-gram in words; p(n) is proportional to 1/n.
        vocabulary: the data manifest's `"vocabulary"` entry (special ids and the ids random
            replacements come from, as `create-data` used them); None: ALBERT's SentencePiece
            ids (replacements from 5..vocab_size-1).
        favor_shorter_ngram: False reverses the n-gram probabilities (the `create-data` flag).
        do_whole_word_mask: False masks single tokens, ignoring `token_boundary` (the flag).

    The settings become `self.spec`, a `masking.MaskingSpec`: every constant of the rule comes
    from it, as in the static masker (`InstanceOptions.masking_spec()`).

    Example:
    ```python
    masker = DynamicMasker(128, 20, vocab_size=30000)
    example = masker(parsed_example, tf.constant([1, 2], tf.int64))
    ```
    """

    def __init__(self, max_seq_length, max_predictions_per_seq, vocab_size, masked_lm_prob=0.15, ngram=3,
                 vocabulary=None, favor_shorter_ngram=True, do_whole_word_mask=True):
        self.spec = MaskingSpec(
            masked_lm_prob=masked_lm_prob, max_predictions_per_seq=max_predictions_per_seq, ngram=ngram,
            favor_shorter_ngram=favor_shorter_ngram, do_whole_word_mask=do_whole_word_mask,
        )
        self.cls_id, self.sep_id, self.mask_id, replacement = masking_ids(vocabulary, vocab_size)
        self._replacement_ids = tf.constant(replacement, tf.int32)
        self.max_seq_length = max_seq_length
        self.max_predictions = max_predictions_per_seq
        self.vocab_size = vocab_size
        self.masked_lm_prob = masked_lm_prob
        self.ngram = ngram
        # The budget per real length, from the spec's Python rounding (float32 in-graph rounding
        # differs at a few lengths, e.g. 190 tokens at 0.15).
        self._budgets = tf.constant(self.spec.budget_table(max_seq_length), tf.int32)
        self._log_probs = tf.constant(np.log(self.spec.ngram_probabilities())[None, :], tf.float32)

    def __call__(self, example, seed):
        seed = tf.cast(seed, tf.int64)
        seq = self.max_seq_length
        weights = example["masked_lm_weights"]
        positions = example["masked_lm_positions"]
        real = weights > 0
        # Undo the stored masks: put the original ids back at the masked positions.
        ids = tf.tensor_scatter_nd_update(
            example["input_ids"],
            tf.boolean_mask(positions, real)[:, None],
            tf.boolean_mask(example["masked_lm_ids"], real),
        )
        mask = example["input_mask"]
        candidate = (mask > 0) & (ids != self.cls_id) & (ids != self.sep_id)
        position = tf.range(seq)
        first_candidate = tf.reduce_min(tf.where(candidate, position, seq))
        if self.spec.do_whole_word_mask:
            starts = candidate & ((example["token_boundary"] > 0) | tf.equal(position, first_candidate))
        else:
            starts = candidate
        num_words = tf.reduce_sum(tf.cast(starts, tf.int32))
        # word_of[t] = index of the word containing candidate position t (-1 for non-candidates).
        word_of = tf.where(candidate, tf.cumsum(tf.cast(starts, tf.int32)) - 1, -1)
        word_length = tf.math.unsorted_segment_sum(
            tf.cast(candidate, tf.int32), tf.maximum(word_of, 0), seq
        )
        cumulative = tf.concat([[0], tf.cumsum(word_length)], 0)  # tokens before word w
        budget = tf.gather(self._budgets, tf.minimum(tf.reduce_sum(mask), seq))
        seeds = tf.random.experimental.stateless_split(seed, 4)
        order = tf.argsort(tf.random.stateless_uniform([seq], seeds[0]))
        order = tf.boolean_mask(order, order < num_words)
        drawn = tf.cast(
            tf.random.stateless_categorical(tf.tile(self._log_probs, [seq, 1]), 1, seeds[1])[:, 0], tf.int32
        ) + 1

        def body(k, masked, covered):
            word = order[k]
            n = drawn[k]

            def span(n_words):
                end = tf.minimum(word + n_words, num_words)
                return end, cumulative[end] - cumulative[word]

            def shrink(n_words):
                return n_words - 1

            def too_long(n_words):
                return (n_words >= 1) & (masked + span(n_words)[1] > budget)

            n = tf.while_loop(too_long, shrink, [n])[0]
            end, size = span(tf.maximum(n, 1))
            in_span = (tf.range(seq) >= word) & (tf.range(seq) < end)
            ok = (n >= 1) & ~tf.reduce_any(covered & in_span)
            covered = tf.where(ok, covered | in_span, covered)
            masked = tf.where(ok, masked + size, masked)
            return k + 1, masked, covered

        def cond(k, masked, covered):
            return (k < tf.size(order)) & (masked < budget)

        _, _, covered = tf.while_loop(
            cond, body, [tf.constant(0), tf.constant(0), tf.zeros([seq], tf.bool)]
        )
        selected = candidate & tf.gather(covered, tf.maximum(word_of, 0))
        new_positions = tf.cast(tf.where(selected)[:, 0], tf.int32)
        count = tf.size(new_positions)
        original = tf.gather(ids, new_positions)
        u = tf.random.stateless_uniform([count], seeds[2])
        v = tf.random.stateless_uniform([count], seeds[3])
        # An index into the replacement ids (for ALBERT's SentencePiece ids, id = 5 + index: the
        # same draws as sampling 5..vocab_size-1 directly).
        random_ids = tf.gather(self._replacement_ids, tf.random.stateless_uniform(
            [count], tf.random.experimental.stateless_fold_in(seeds[3], 1),
            minval=0, maxval=tf.size(self._replacement_ids), dtype=tf.int32,
        ))
        spec = self.spec
        replaced = tf.where(u < spec.mask_probability, self.mask_id,
                            tf.where(v < spec.keep_given_not_masked, original, random_ids))
        ids = tf.tensor_scatter_nd_update(ids, new_positions[:, None], replaced)
        pad = self.max_predictions - count
        result = {k: v for k, v in example.items() if k != "token_boundary"}
        result["input_ids"] = ids
        result["masked_lm_positions"] = tf.pad(new_positions, [[0, pad]])
        result["masked_lm_ids"] = tf.pad(original, [[0, pad]])
        result["masked_lm_weights"] = tf.pad(tf.ones([count], tf.float32), [[0, pad]])
        for name in ("masked_lm_positions", "masked_lm_ids", "masked_lm_weights"):
            result[name] = tf.ensure_shape(result[name], [self.max_predictions])
        return result
