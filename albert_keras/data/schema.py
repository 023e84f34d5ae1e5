"""The official ALBERT pretraining TFRecord schema, and a fast serializer for it.

Eight features per `tf.train.Example` (official-albert.md §1.6): `input_ids`, `input_mask`,
`segment_ids`, `token_boundary` (int64, `max_seq_length`), `masked_lm_positions`, `masked_lm_ids`
(int64, `max_predictions_per_seq`), `masked_lm_weights` (float32, same) and `next_sentence_labels`
(int64, 1). Files written here are read by the original `run_pretraining.py` and vice versa.

`serialize_instance` writes the `tf.train.Example` protobuf wire format directly with numpy. Building
`tf.train.Example` objects costs about 250 µs per 512-token instance on our CPUs, more than all of
instance creation, so the bytes are laid out here instead; tests check that TensorFlow parses them
to exactly the values a `tf.train.Example` would carry.

Reading: `official_feature_spec` (the parse spec), `to_model_inputs` (parsed features -> the dtypes
and shapes `AlbertPretrainer` trains on), `check_features` (a record's schema, with an error naming
the file) and `read_records` (a TFRecord file's records in plain Python, on any filesystem) are
the one definition both readers (`data.pipeline`, `data.batches`) use. This module does not
import TensorFlow at module level (worker processes use it).
"""

import gzip
import struct

import numpy as np

from albert_keras import io_utils
from albert_keras.errors import AlbertInputError

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
# What training reads; `token_boundary` only for dynamic masking.
INT_FEATURES = ("input_ids", "input_mask", "segment_ids", "masked_lm_positions", "masked_lm_ids", "next_sentence_labels")
REQUIRED_FEATURES = INT_FEATURES + ("masked_lm_weights",)


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


def to_model_inputs(features):
    """Parsed features (one record or a batch) -> what `AlbertPretrainer` trains on.

    int64 features become int32, `next_sentence_labels` loses its last axis ([B, 1] -> [B]).

    Example:
    ```python
    batch = to_model_inputs(tf.io.parse_example(records, official_feature_spec(128, 20)))
    ```
    """
    import tensorflow as tf

    out = {name: tf.cast(value, tf.int32) if value.dtype == tf.int64 else value for name, value in features.items()}
    if "next_sentence_labels" in out:
        out["next_sentence_labels"] = tf.squeeze(out["next_sentence_labels"], -1)
    return out


def check_features(path, features, expected=None, require_token_boundary=False):
    """Check one record's `tf.train.Example` features against the schema.

    Args:
        path: the file, for messages.
        features: `example.features.feature` (a protobuf map).
        expected: `(max_seq_length, max_predictions_per_seq)` other files had, or None.
        require_token_boundary: dynamic masking needs `token_boundary`.

    Returns:
        `(max_seq_length, max_predictions_per_seq)` of the record.

    Raises:
        AlbertInputError: naming the file and the feature.

    Example:
    ```python
    example = tf.train.Example.FromString(next(read_records(path)))
    seq, predictions = check_features(path, example.features.feature)
    ```
    """
    required = REQUIRED_FEATURES + (("token_boundary",) if require_token_boundary else ())
    missing = [name for name in required if name not in features]
    if missing:
        hint = (
            " (dynamic masking needs the word boundaries create-data writes)"
            if missing == ["token_boundary"]
            else " (make them with `albert-keras create-data`)"
        )
        raise AlbertInputError(f"{path}: records lack the ALBERT pretraining feature(s) {', '.join(missing)}{hint}")
    for name in INT_FEATURES + (("token_boundary",) if require_token_boundary else ()):
        if features[name].WhichOneof("kind") != "int64_list":
            raise AlbertInputError(f"{path}: feature '{name}' must be int64")
    if features["masked_lm_weights"].WhichOneof("kind") != "float_list":
        raise AlbertInputError(f"{path}: feature 'masked_lm_weights' must be float")
    seq_length = len(features["input_ids"].int64_list.value)
    predictions = len(features["masked_lm_ids"].int64_list.value)
    lengths = {"input_mask": seq_length, "segment_ids": seq_length, "masked_lm_positions": predictions,
               "next_sentence_labels": 1}
    if require_token_boundary:
        lengths["token_boundary"] = seq_length
    for name, length in lengths.items():
        if len(features[name].int64_list.value) != length:
            raise AlbertInputError(
                f"{path}: feature '{name}' has length {len(features[name].int64_list.value)}, expected {length}"
            )
    if len(features["masked_lm_weights"].float_list.value) != predictions:
        raise AlbertInputError(f"{path}: feature 'masked_lm_weights' has the wrong length")
    if expected is not None and (seq_length, predictions) != tuple(expected):
        raise AlbertInputError(
            f"{path}: records have sequence length {seq_length} and {predictions} predictions, other files "
            f"{expected[0]} and {expected[1]}"
        )
    return seq_length, predictions


class NotATFRecordFile(ValueError):
    """The bytes are not TFRecord framing."""


def compression_of(path):
    """`"GZIP"` for `.gz` files, else `""` (the `tf.data.TFRecordDataset` argument)."""
    return "GZIP" if str(path).endswith(".gz") else ""


def read_records(path):
    """Yield the records of a TFRecord file in plain Python (any filesystem; `.gz` = GZIP).

    For checks that must run before TensorFlow ops may (a MultiWorkerMirroredStrategy must be
    created first). Framing: u64 length, u32 crc, data, u32 crc; crcs are not verified here
    (tf.data verifies them when training reads the file).

    Raises:
        NotATFRecordFile: truncated framing or an impossible length.

    Example:
    ```python
    first = next(read_records("tfrecords/demo/part-00000-of-00008.tfrecord"))
    ```
    """
    compressed = bool(compression_of(path))
    size_limit = io_utils.getsize(path) * (1000 if compressed else 1)
    with io_utils.open_file(path, "rb") as raw:
        f = gzip.GzipFile(fileobj=raw, mode="rb") if compressed else raw
        while True:
            header = f.read(12)
            if not header:
                return
            if len(header) < 12:
                raise NotATFRecordFile("truncated record header")
            (length,) = struct.unpack("<Q", header[:8])
            if length > size_limit:
                raise NotATFRecordFile(f"record length {length} exceeds the file size")
            data = f.read(length)
            if len(data) < length or len(f.read(4)) < 4:
                raise NotATFRecordFile("truncated record")
            yield data


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
        # The whole masked_lm_weights entry for each number of real predictions.
        self.weights = [
            _entry("masked_lm_weights", _float_feature((np.arange(max_predictions_per_seq) < k).astype("<f4").tobytes()))
            for k in range(max_predictions_per_seq + 1)
        ]
        self.label = [_entry("next_sentence_labels", _int64_feature(bytes((label,)))) for label in (0, 1)]

    @staticmethod
    def _header(name, payload_length):
        return _entry(name, _int64_feature(b"\x00" * payload_length))[:-payload_length]


_LAYOUTS = {}


def _packed_groups(values, group_sizes):
    """Varint-pack the concatenation of several groups at once.

    Returns the packed bytes and the byte offset where each group starts (plus the end), so a
    group's packed values are `packed[offsets[i]:offsets[i + 1]]`.
    """
    values = np.asarray(values).astype(np.uint32, copy=False)
    packed = _packed_varints(values)
    nbytes = np.ones(values.size, np.int64)
    for bits in (7, 14, 21, 28):
        nbytes += values >= (1 << bits)
    byte_ends = np.concatenate([[0], np.cumsum(nbytes)])
    group_ends = np.concatenate([[0], np.cumsum(group_sizes)])
    return packed, byte_ends[group_ends].tolist()


def _layout(max_seq_length, max_predictions_per_seq):
    layout = _LAYOUTS.get((max_seq_length, max_predictions_per_seq))
    if layout is None:
        layout = _LAYOUTS[(max_seq_length, max_predictions_per_seq)] = _Layout(max_seq_length, max_predictions_per_seq)
    return layout


def serialize_instances(instances, max_seq_length, max_predictions_per_seq):
    """Serialize `TrainingInstance`s as `tf.train.Example`s in the official schema.

    Padding follows the official script: ids, mask, segment ids and token boundaries are padded
    with 0 to `max_seq_length`; positions and ids with 0 and weights with 0.0 to
    `max_predictions_per_seq`. The numeric work is done once for the whole list (one varint pass
    over all ids), so a long list costs a few microseconds of Python per record.

    Args:
        instances: a list of `instances.TrainingInstance` (unpadded).
        max_seq_length: padded sequence length.
        max_predictions_per_seq: padded prediction length.

    Returns:
        A list of serialized `tf.train.Example` bytes, one per instance.

    Example:
    ```python
    records = serialize_instances(instances, 128, 20)
    tf.io.parse_example(records, official_feature_spec(128, 20))
    ```
    """
    if not instances:
        return []
    layout = _layout(max_seq_length, max_predictions_per_seq)
    n = len(instances)
    lengths = np.fromiter((len(x.input_ids) for x in instances), np.int64, n)
    counts = np.fromiter((len(x.masked_lm_positions) for x in instances), np.int64, n)
    if lengths.max() > max_seq_length or counts.max() > max_predictions_per_seq:
        i = int(np.argmax((lengths > max_seq_length) | (counts > max_predictions_per_seq)))
        raise ValueError(
            f"instance of length {lengths[i]} with {counts[i]} predictions does not fit "
            f"max_seq_length={max_seq_length}, max_predictions_per_seq={max_predictions_per_seq}"
        )
    ids, id_offsets = _packed_groups(np.concatenate([x.input_ids for x in instances]), lengths)
    positions, position_offsets = _packed_groups(np.concatenate([x.masked_lm_positions for x in instances]), counts)
    labels, label_offsets = _packed_groups(np.concatenate([x.masked_lm_ids for x in instances]), counts)
    segments = np.concatenate([x.segment_ids for x in instances]).astype(np.uint8, copy=False).tobytes()
    boundaries = np.concatenate([x.token_boundary for x in instances]).astype(np.uint8, copy=False).tobytes()
    token_offsets = np.concatenate([[0], np.cumsum(lengths)]).tolist()
    zeros, ones = layout.zeros, layout.ones
    mask_header = layout.bit_header["input_mask"]
    segment_header = layout.bit_header["segment_ids"]
    boundary_header = layout.bit_header["token_boundary"]
    records = []
    for i, (length, count) in enumerate(zip(lengths.tolist(), counts.tolist())):
        pad = zeros[: max_seq_length - length]
        prediction_pad = zeros[: max_predictions_per_seq - count]
        t0, t1 = token_offsets[i], token_offsets[i + 1]
        body = b"".join(
            (
                _entry("input_ids", _int64_feature(ids[id_offsets[i] : id_offsets[i + 1]] + pad)),
                mask_header, ones[:length], pad,
                segment_header, segments[t0:t1], pad,
                boundary_header, boundaries[t0:t1], pad,
                _entry(
                    "masked_lm_positions",
                    _int64_feature(positions[position_offsets[i] : position_offsets[i + 1]] + prediction_pad),
                ),
                _entry("masked_lm_ids", _int64_feature(labels[label_offsets[i] : label_offsets[i + 1]] + prediction_pad)),
                layout.weights[count],
                layout.label[int(instances[i].next_sentence_label)],
            )
        )
        # Example.features (field 1) -> Features message holding the map entries.
        records.append(_field(b"\x0a", body))
    return records


def serialize_instance(instance, max_seq_length, max_predictions_per_seq):
    """Serialize one `TrainingInstance` (see `serialize_instances`, faster for many).

    Example:
    ```python
    record = serialize_instance(instance, 128, 20)
    tf.io.parse_single_example(record, official_feature_spec(128, 20))
    ```
    """
    return serialize_instances([instance], max_seq_length, max_predictions_per_seq)[0]
