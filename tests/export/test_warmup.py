"""Warmup file: TFRecords of PredictionLog protos TF Serving can parse (replay: test_saved_model)."""

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2

from albert_keras.errors import AlbertInputError
from albert_keras.export.warmup import parse_predict_log
from albert_keras.export.warmup import predict_log_bytes
from albert_keras.export.warmup import read_warmup_file
from albert_keras.export.warmup import write_warmup_file


def _fields(data):
    """Decode one level of protobuf wire format: list of (field number, wire type, value)."""
    fields, i = [], 0

    def varint():
        nonlocal i
        shift = value = 0
        while True:
            byte = data[i]
            i += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return value

    while i < len(data):
        key = varint()
        number, wire = key >> 3, key & 7
        if wire == 2:
            length = varint()
            fields.append((number, wire, data[i : i + length]))
            i += length
        elif wire == 0:
            fields.append((number, wire, varint()))
        else:
            raise AssertionError(f"unexpected wire type {wire}")
    return fields


def test_record_round_trips_and_has_tf_serving_field_numbers():
    texts = np.array([b"hello", "Ünïcödé".encode()], dtype=object)
    ids = np.arange(6, dtype=np.int32).reshape(2, 3)
    record = predict_log_bytes({"text": texts, "token_ids": ids}, "serve_text_pair", "albert")
    signature, name, inputs = parse_predict_log(record)
    assert (signature, name) == ("serve_text_pair", "albert")
    assert list(inputs["text"]) == list(texts)
    np.testing.assert_array_equal(inputs["token_ids"], ids)

    # Field numbers of tensorflow_serving/apis: PredictionLog.predict_log = 6,
    # PredictLog.request = 1, PredictRequest.model_spec = 1 / inputs = 2 (map entries key = 1,
    # value = 2 holding a tensorflow.TensorProto), ModelSpec.name = 1 / signature_name = 3.
    (number, _, predict_log), = _fields(record)
    assert number == 6
    (number, _, request), = _fields(predict_log)
    assert number == 1
    request_fields = _fields(request)
    spec = dict((n, v) for n, _, v in _fields(request_fields[0][2]))
    assert request_fields[0][0] == 1 and spec == {1: b"albert", 3: b"serve_text_pair"}
    entries = [dict((n, v) for n, _, v in _fields(v)) for n, _, v in request_fields[1:]]
    assert all(n == 2 for n, _, _ in request_fields[1:])
    assert sorted(e[1] for e in entries) == [b"text", b"token_ids"]
    by_key = {entry[1]: entry[2] for entry in entries}
    np.testing.assert_array_equal(tf.make_ndarray(tensor_pb2.TensorProto.FromString(by_key[b"token_ids"])), ids)


def test_parses_with_tensorflow_serving_api_when_installed(tmp_path):
    prediction_log_pb2 = pytest.importorskip("tensorflow_serving.apis.prediction_log_pb2")
    record = predict_log_bytes({"text": np.array([b"hi"], dtype=object)}, "serving_default", "m")
    log = prediction_log_pb2.PredictionLog.FromString(record)
    assert log.predict_log.request.model_spec.signature_name == "serving_default"
    assert tf.make_ndarray(log.predict_log.request.inputs["text"]).tolist() == [b"hi"]


def test_file_written_and_read(tmp_path):
    records = [predict_log_bytes({"text": np.array([b"a"], dtype=object)}, "serving_default")] * 3
    path = write_warmup_file(str(tmp_path), records)
    assert path.endswith("assets.extra/tf_serving_warmup_requests")
    assert [r[0] for r in read_warmup_file(str(tmp_path))] == ["serving_default"] * 3
    with pytest.raises(AlbertInputError, match="at most 1000"):
        write_warmup_file(str(tmp_path), records * 400)


def test_ids_requests_start_and_end_with_the_vocabulary_special_ids(tmp_path):
    """A Chinese (BERT-layout) vocabulary's [CLS]/[SEP] are 101/102, not SentencePiece's 2/3."""
    from albert_keras import AlbertConfig, AlbertEncoder
    from albert_keras.export.warmup import default_requests
    from tests.tokenization.wordpiece_fixtures import make_chinese_style_vocab
    from tests.training.conftest import TINY_CONFIG

    vocab = make_chinese_style_vocab(tmp_path / "vocab.txt", duplicate=False)
    encoder = AlbertEncoder(AlbertConfig(**TINY_CONFIG))
    for vocabulary, (cls_id, sep_id, ordinary) in ((vocab, (101, 102, 1)), (None, (2, 3, 5))):
        (request,) = default_requests(encoder, ["serve_ids"], ["一"], vocabulary=vocabulary)
        ids = parse_predict_log(request)[2]["token_ids"]
        assert (ids[0, 0], ids[0, -1], ids[0, 1]) == (cls_id, sep_id, ordinary)
