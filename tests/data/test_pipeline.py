import os

import numpy as np
import pytest
import tensorflow as tf

from albert_keras.data.pipeline import DynamicMasker
from albert_keras.data.pipeline import pretraining_dataset
from albert_keras.data.pipeline import pretraining_dataset_fn
from tests.data.conftest import PREDICTIONS
from tests.data.conftest import SEQ

EXPECTED = {
    "input_ids": tf.int32, "input_mask": tf.int32, "segment_ids": tf.int32, "masked_lm_positions": tf.int32,
    "masked_lm_ids": tf.int32, "masked_lm_weights": tf.float32, "next_sentence_labels": tf.int32,
}


@pytest.fixture(scope="module")
def pattern(embedded_records):
    return os.path.join(embedded_records[0], "part-*")


def _all(dataset):
    batches = list(dataset.as_numpy_iterator())
    return {k: np.concatenate([b[k] for b in batches]) for k in batches[0]}


def test_batches_are_exactly_what_the_pretrainer_consumes(pattern):
    dataset = pretraining_dataset(pattern, 16, SEQ, PREDICTIONS, seed=1)
    assert {k: v.dtype for k, v in dataset.element_spec.items()} == EXPECTED
    spec = dataset.element_spec
    assert spec["input_ids"].shape == [16, SEQ] and spec["masked_lm_weights"].shape == [16, PREDICTIONS]
    assert spec["next_sentence_labels"].shape == [16]
    batch = next(iter(dataset))
    assert set(np.unique(batch["next_sentence_labels"].numpy())) <= {0, 1}


def test_one_evaluation_pass_reads_every_record_once(pattern, embedded_records, embedded_parsed):
    total = embedded_records[1]["statistics"]["instances"]
    data = _all(pretraining_dataset(pattern, 64, SEQ, PREDICTIONS, is_training=False, drop_remainder=False))
    assert len(data["input_ids"]) == total
    # Same multiset of examples as the files hold.
    ours = sorted(map(bytes, data["input_ids"].astype(np.int64)))
    reference = sorted(map(bytes, embedded_parsed["input_ids"].astype(np.int64)))
    assert ours == reference
    dropped = _all(pretraining_dataset(pattern, 64, SEQ, PREDICTIONS, is_training=False, drop_remainder=True))
    assert len(dropped["input_ids"]) == total // 64 * 64


def test_input_pipelines_read_disjoint_shards(pattern, embedded_records):
    total = embedded_records[1]["statistics"]["instances"]
    seen = []
    for pipelines in (2, 8):  # 4 files: sharded by file, then by record
        seen = []
        for index in range(pipelines):
            context = tf.distribute.InputContext(num_input_pipelines=pipelines, input_pipeline_id=index,
                                                 num_replicas_in_sync=pipelines)
            data = _all(pretraining_dataset(pattern, 8, SEQ, PREDICTIONS, is_training=False, drop_remainder=False,
                                            input_context=context))
            seen.append({bytes(row) for row in data["input_ids"].astype(np.int64)})
        assert sum(len(s) for s in seen) == len(set().union(*seen))
        assert len(set().union(*seen)) >= total - 5  # (identical rows would collapse; there are none or few)


def test_dataset_fn_under_a_strategy(pattern):
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    dataset_fn = pretraining_dataset_fn(pattern, 8, SEQ, PREDICTIONS, repeat=True, seed=2)
    distributed = strategy.distribute_datasets_from_function(dataset_fn)
    batch = next(iter(distributed))
    assert batch["input_ids"].shape == [8, SEQ]
    assert batch["next_sentence_labels"].shape == [8]


def test_dynamic_masking_restores_and_redraws_masks(pattern, embedded_records):
    vocab_size = embedded_records[1]["vocabulary"]["vocab_size"]
    static = _all(pretraining_dataset(pattern, 32, SEQ, PREDICTIONS, is_training=False, drop_remainder=False))
    dataset = pretraining_dataset(pattern, 32, SEQ, PREDICTIONS, is_training=False, drop_remainder=False,
                                  dynamic_masking=True, vocab_size=vocab_size, seed=5)
    # Exactly the structure of the static pipeline (which the pretrainer test trains on).
    assert dataset.element_spec == pretraining_dataset(pattern, 32, SEQ, PREDICTIONS, is_training=False,
                                                       drop_remainder=False).element_spec
    first, second = _all(dataset.take(20)), _all(dataset.take(20))
    n = len(first["input_ids"])
    # The original ids: static records with their masked positions filled back in.
    original = static["input_ids"][:n].copy()
    for i in range(n):
        k = int(static["masked_lm_weights"][i].sum())
        original[i, static["masked_lm_positions"][i, :k]] = static["masked_lm_ids"][i, :k]
    counts = {"mask": 0, "kept": 0, "random": 0}
    for i in range(n):
        length = first["input_mask"][i].sum()
        k = int(first["masked_lm_weights"][i].sum())
        positions = first["masked_lm_positions"][i, :k]
        np.testing.assert_array_equal(first["masked_lm_ids"][i, :k], original[i, positions])
        unmasked = np.setdiff1d(np.arange(SEQ), positions)
        np.testing.assert_array_equal(first["input_ids"][i, unmasked], original[i, unmasked])
        assert not np.isin(original[i, positions], [0, 2, 3]).any()
        assert np.all(np.diff(positions) > 0) and (positions < length).all()
        ids = first["input_ids"][i, positions]
        counts["mask"] += (ids == 4).sum()
        counts["kept"] += ((ids != 4) & (ids == original[i, positions])).sum()
        counts["random"] += ((ids != 4) & (ids != original[i, positions])).sum()
        assert not np.isin(ids[(ids != 4) & (ids != original[i, positions])], [0, 1, 2, 3, 4]).any()
    total = sum(counts.values())
    assert abs(counts["mask"] / total - 0.8) < 0.05 and abs(counts["random"] / total - 0.1) < 0.05
    targets = np.minimum(PREDICTIONS, np.maximum(1, np.round(0.15 * first["input_mask"].sum(1))))
    assert (first["masked_lm_weights"].sum(1) == targets).mean() > 0.98
    # Fresh masks on every pass over the data.
    assert (first["masked_lm_positions"] != second["masked_lm_positions"]).any(axis=1).mean() > 0.9


def test_dynamic_masking_needs_vocab_size(pattern):
    with pytest.raises(ValueError, match="vocab_size"):
        pretraining_dataset(pattern, 8, SEQ, PREDICTIONS, dynamic_masking=True)


def test_missing_files_are_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no TFRecord files"):
        pretraining_dataset(os.fspath(tmp_path / "part-*"), 8, SEQ, PREDICTIONS)


def test_albert_pretrainer_trains_on_the_pipeline(pattern, embedded_records):
    import keras

    from albert_keras import AlbertConfig
    from albert_keras import AlbertEncoder
    from albert_keras import AlbertPretrainer

    vocab_size = embedded_records[1]["vocabulary"]["vocab_size"]
    config = AlbertConfig(vocab_size=vocab_size, embedding_size=8, hidden_size=16, num_hidden_layers=2,
                          num_attention_heads=2, intermediate_size=32, max_position_embeddings=SEQ)
    keras.utils.set_random_seed(0)
    pretrainer = AlbertPretrainer(AlbertEncoder(config))
    pretrainer.compile(optimizer=keras.optimizers.Adam(1e-2))
    dataset = pretraining_dataset(pattern, 8, SEQ, PREDICTIONS, seed=0, repeat=True)
    fixed = tf.data.Dataset.from_tensors(next(iter(dataset)))

    def fixed_batch_losses():
        logs = pretrainer.evaluate(fixed, verbose=0, return_dict=True)
        return logs["masked_lm_loss"], logs["sentence_order_loss"]

    # Untrained (weights of stddev 0.02, the MLM decoder tied to them), every logit is near 0: the
    # losses are those of uniform guesses, ln(vocab) and ln(2), which a wrong loss would not give.
    mlm, sop = fixed_batch_losses()
    assert mlm == pytest.approx(np.log(vocab_size), rel=0.02) and sop == pytest.approx(np.log(2), rel=0.02)
    history = pretrainer.fit(dataset, steps_per_epoch=4, epochs=1, verbose=0, shuffle=False).history
    assert set(history) >= {"masked_lm_loss", "sentence_order_loss", "masked_lm_accuracy", "sentence_order_accuracy"}
    # A few steps on the pipeline's records already lower the loss of a batch from them.
    assert fixed_batch_losses()[0] < mlm - 0.1  # measured: 6.91 -> 6.65
