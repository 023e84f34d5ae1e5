import numpy as np
import tensorflow as tf

from albert_keras.data import schema
from albert_keras.data.instances import TrainingInstance


def _instance(ids, predictions, label=1):
    ids = np.asarray(ids, np.int32)
    positions = np.asarray(predictions, np.int32)
    return TrainingInstance(
        input_ids=ids,
        segment_ids=(np.arange(len(ids)) >= 2).astype(np.int8),
        token_boundary=(np.arange(len(ids)) % 2).astype(np.int8),
        masked_lm_positions=positions,
        masked_lm_ids=ids[positions] + 1,
        next_sentence_label=label,
    )


def _tf_example(instance, seq, predictions):
    """The same record built the slow way, with tf.train.Example, as the official script does."""
    n, p = len(instance.input_ids), len(instance.masked_lm_positions)

    def ints(values, length):
        values = [int(v) for v in values] + [0] * (length - len(values))
        return tf.train.Feature(int64_list=tf.train.Int64List(value=values))

    feature = {
        "input_ids": ints(instance.input_ids, seq),
        "input_mask": ints([1] * n, seq),
        "segment_ids": ints(instance.segment_ids, seq),
        "token_boundary": ints(instance.token_boundary, seq),
        "masked_lm_positions": ints(instance.masked_lm_positions, predictions),
        "masked_lm_ids": ints(instance.masked_lm_ids, predictions),
        "masked_lm_weights": tf.train.Feature(float_list=tf.train.FloatList(value=[1.0] * p + [0.0] * (predictions - p))),
        "next_sentence_labels": ints([instance.next_sentence_label], 1),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def test_official_feature_spec_names_dtypes_lengths():
    spec = schema.official_feature_spec(128, 20)
    assert list(spec) == list(schema.FEATURE_NAMES)
    for name in ("input_ids", "input_mask", "segment_ids", "token_boundary"):
        assert spec[name].shape == [128] and spec[name].dtype == tf.int64
    for name in ("masked_lm_positions", "masked_lm_ids"):
        assert spec[name].shape == [20] and spec[name].dtype == tf.int64
    assert spec["masked_lm_weights"].shape == [20] and spec["masked_lm_weights"].dtype == tf.float32
    assert spec["next_sentence_labels"].shape == [1]
    assert "token_boundary" not in schema.official_feature_spec(128, 20, include_token_boundary=False)


def test_fast_serializer_parses_like_tf_train_example():
    # Ids around every varint width boundary, including a 4-byte one.
    ids = [2, 0, 1, 127, 128, 255, 16383, 16384, 2**21 - 1, 2**21 + 5, 30000, 3]
    cases = [(_instance(ids, [1, 4, 9]), 16, 5), (_instance([2, 7, 3], [1], label=0), 3, 1),
             (_instance([2, 0, 127, 128, 255, 300, 16383, 3], [1, 2, 3, 6], label=0), 200, 4),
             (_instance(list(range(2, 40)), list(range(1, 30, 3)), 1), 40, 10)]
    for instance, seq, predictions in cases:
        spec = schema.official_feature_spec(seq, predictions)
        ours = tf.io.parse_single_example(schema.serialize_instance(instance, seq, predictions), spec)
        reference = tf.io.parse_single_example(_tf_example(instance, seq, predictions), spec)
        for name in schema.FEATURE_NAMES:
            np.testing.assert_array_equal(ours[name].numpy(), reference[name].numpy(), err_msg=name)
        # And the proto library reads it back to the same message.
        assert tf.train.Example.FromString(schema.serialize_instance(instance, seq, predictions)) == \
            tf.train.Example.FromString(_tf_example(instance, seq, predictions))


def test_serializer_rejects_instances_that_do_not_fit():
    instance = _instance(list(range(2, 12)), [1, 2, 3])
    for seq, predictions in ((9, 5), (10, 2)):
        try:
            schema.serialize_instance(instance, seq, predictions)
        except ValueError as error:
            assert "does not fit" in str(error)
        else:
            raise AssertionError("expected ValueError")


def test_batch_serialization_equals_one_by_one():
    rng = np.random.default_rng(0)
    instances = []
    for length in (3, 40, 17, 5, 40, 9):
        ids = rng.integers(0, 20000, length)
        ids[0], ids[-1] = 2, 3
        count = min(10, max(1, length // 4))
        instances.append(_instance(ids, np.sort(rng.choice(np.arange(1, length), count, replace=False)), length % 2))
    batch = schema.serialize_instances(instances, 40, 10)
    assert batch == [schema.serialize_instance(x, 40, 10) for x in instances]
    spec = schema.official_feature_spec(40, 10)
    parsed = tf.io.parse_example(batch, spec)
    reference = tf.io.parse_example([_tf_example(x, 40, 10) for x in instances], spec)
    for name in schema.FEATURE_NAMES:
        np.testing.assert_array_equal(parsed[name].numpy(), reference[name].numpy(), err_msg=name)
    assert schema.serialize_instances([], 40, 10) == []
