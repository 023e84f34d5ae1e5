"""The official ALBERT pretraining TFRecord schema, and a fast serializer for it.

Eight features per `tf.train.Example` (official-albert.md §1.6): `input_ids`, `input_mask`,
`segment_ids`, `token_boundary` (int64, `max_seq_length`), `masked_lm_positions`, `masked_lm_ids`
(int64, `max_predictions_per_seq`), `masked_lm_weights` (float32, same) and `next_sentence_labels`
(int64, 1). Files written here are read by the original `run_pretraining.py` and vice versa.

`serialize_instance` writes the `tf.train.Example` protobuf wire format directly with numpy. Building
`tf.train.Example` objects costs about 250 µs per 512-token instance on our CPUs, more than all of
instance creation, so the bytes are laid out here instead; tests check that TensorFlow parses them
to exactly the values a `tf.train.Example` would carry. This module does not import TensorFlow
(worker processes use it); `official_feature_spec` imports it on call.
"""

import numpy as np

FEATURE_NAMES = (
    "input_ids",
    "input_mask",
    "segment_ids",
    "token_boundary",
    "masked_lm_positions",
    "masked_lm_ids",
    "masked_lm_weights",
    "next_sentence_labels",
)

# Sequence-length int64 features, then prediction-length int64 features.
SEQUENCE_FEATURES = ("input_ids", "input_mask", "segment_ids", "token_boundary")
PREDICTION_FEATURES = ("masked_lm_positions", "masked_lm_ids")


def official_feature_spec(max_seq_length, max_predictions_per_seq, include_token_boundary=True):
    """The `tf.io.FixedLenFeature` spec that parses official ALBERT pretraining records.

    Args:
        max_seq_length: the records' sequence length.
        max_predictions_per_seq: the records' prediction slots.
        include_token_boundary: `run_pretraining.py` only reads `token_boundary` for its
            on-the-fly masking path; set False to leave it out.

    Returns:
        A dict name -> `tf.io.FixedLenFeature`.

    Example:
    ```python
    spec = official_feature_spec(128, 20)
    example = tf.io.parse_single_example(serialized, spec)
    ```
    """
    import tensorflow as tf

    spec = {name: tf.io.FixedLenFeature([max_seq_length], tf.int64) for name in SEQUENCE_FEATURES}
    if not include_token_boundary:
        del spec["token_boundary"]
    for name in PREDICTION_FEATURES:
        spec[name] = tf.io.FixedLenFeature([max_predictions_per_seq], tf.int64)
    spec["masked_lm_weights"] = tf.io.FixedLenFeature([max_predictions_per_seq], tf.float32)
    spec["next_sentence_labels"] = tf.io.FixedLenFeature([1], tf.int64)
    return spec


def _varint(value):
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _packed_varints(values):
    """Protobuf varints of non-negative ints (< 2**32), vectorized."""
    values = np.asarray(values).astype(np.uint32, copy=False)
    if values.size == 0:
        return b""
    top = int(values.max())
    if top < 0x80:
        return values.astype(np.uint8).tobytes()
    if top < 0x4000:
        # Two bytes at most (vocabularies up to 16k, positions): one uint16 per value, then drop
        # the high byte where it is not needed. About twice as fast as the general path.
        small = values.astype(np.uint16)
        more = small >= 0x80
        word = (small & 0x7F) | (more.view(np.uint8).astype(np.uint16) << 7) | ((small >> 7) << 8)
        keep = np.ones(2 * small.size, bool)
        keep[1::2] = more
        return word.astype("<u2", copy=False).view(np.uint8)[keep].tobytes()
    width = (top.bit_length() + 6) // 7
    out = np.empty((values.size, width), np.uint8)
    keep = np.empty((values.size, width), bool)
    keep[:, 0] = True
    rest = values
    for k in range(width):
        following = rest >> 7
        more = following > 0
        out[:, k] = (rest & 0x7F) | (more.view(np.uint8) << 7)
        if k + 1 < width:
            keep[:, k + 1] = more
        rest = following
    return out[keep].tobytes()


# Length prefixes of every message shorter than 64 KiB (a 512-token record is ~2 KiB).
_LENGTH_PREFIX = [_varint(n) for n in range(1 << 16)]


def _field(tag, payload):
    n = len(payload)
    return tag + (_LENGTH_PREFIX[n] if n < 65536 else _varint(n)) + payload


# Precomputed wire pieces: map-entry key fields, for each feature name.
_KEYS = {name: b"\x0a" + _varint(len(name)) + name.encode() for name in FEATURE_NAMES}


def _entry(name, feature):
    # Features.feature map entry: key (field 1) + value (field 2, a Feature message).
    return _field(b"\x0a", _KEYS[name] + _field(b"\x12", feature))


def _int64_feature(packed):
    # Feature.int64_list (field 3) -> Int64List.value (field 1, packed).
    return _field(b"\x1a", _field(b"\x0a", packed))


def _float_feature(packed):
    # Feature.float_list (field 2) -> FloatList.value (field 1, packed little-endian float32).
    return _field(b"\x12", _field(b"\x0a", packed))


class _Layout:
    """Wire-format pieces that depend only on the two lengths, computed once."""

    def __init__(self, max_seq_length, max_predictions_per_seq):
        self.max_seq_length = max_seq_length
        self.max_predictions = max_predictions_per_seq
        self.zeros = b"\x00" * max_seq_length
        self.ones = b"\x01" * max_seq_length
        # Every 0/1 feature packs to exactly one byte per value: fixed headers.
        self.bit_header = {
            name: self._header(name, max_seq_length) for name in ("input_mask", "segment_ids", "token_boundary")
        }
        weights_payload_length = 4 * max_predictions_per_seq
        self.weights_header = _entry("masked_lm_weights", _float_feature(b"\x00" * weights_payload_length))[
            :-weights_payload_length
        ]
        self.label = [_entry("next_sentence_labels", _int64_feature(bytes((label,)))) for label in (0, 1)]

    @staticmethod
    def _header(name, payload_length):
        return _entry(name, _int64_feature(b"\x00" * payload_length))[:-payload_length]


_LAYOUTS = {}


def serialize_instance(instance, max_seq_length, max_predictions_per_seq):
    """Serialize a `TrainingInstance` as a `tf.train.Example` in the official schema.

    Padding follows the official script: ids, mask, segment ids and token boundaries are padded
    with 0 to `max_seq_length`; positions and ids with 0 and weights with 0.0 to
    `max_predictions_per_seq`.

    Args:
        instance: an `instances.TrainingInstance` (unpadded).
        max_seq_length: padded sequence length.
        max_predictions_per_seq: padded prediction length.

    Returns:
        The serialized `tf.train.Example` bytes.

    Example:
    ```python
    record = serialize_instance(instance, 128, 20)
    tf.io.parse_single_example(record, official_feature_spec(128, 20))
    ```
    """
    layout = _LAYOUTS.get((max_seq_length, max_predictions_per_seq))
    if layout is None:
        layout = _LAYOUTS[(max_seq_length, max_predictions_per_seq)] = _Layout(max_seq_length, max_predictions_per_seq)
    length = len(instance.input_ids)
    pad = max_seq_length - length
    num_predictions = len(instance.masked_lm_positions)
    if pad < 0 or num_predictions > max_predictions_per_seq:
        raise ValueError(
            f"instance of length {length} with {num_predictions} predictions does not fit "
            f"max_seq_length={max_seq_length}, max_predictions_per_seq={max_predictions_per_seq}"
        )
    zeros = layout.zeros[:pad]
    prediction_pad = layout.zeros[: max_predictions_per_seq - num_predictions]
    weights = np.zeros(max_predictions_per_seq, "<f4")
    weights[:num_predictions] = 1.0
    body = b"".join(
        (
            _entry("input_ids", _int64_feature(_packed_varints(instance.input_ids) + zeros)),
            layout.bit_header["input_mask"], layout.ones[:length], zeros,
            layout.bit_header["segment_ids"], instance.segment_ids.astype(np.uint8, copy=False).tobytes(), zeros,
            layout.bit_header["token_boundary"], instance.token_boundary.astype(np.uint8, copy=False).tobytes(), zeros,
            _entry(
                "masked_lm_positions",
                _int64_feature(_packed_varints(instance.masked_lm_positions) + prediction_pad),
            ),
            _entry("masked_lm_ids", _int64_feature(_packed_varints(instance.masked_lm_ids) + prediction_pad)),
            layout.weights_header, weights.tobytes(),
            layout.label[int(instance.next_sentence_label)],
        )
    )
    # Example.features (field 1) -> Features message holding the map entries.
    return _field(b"\x0a", body)
