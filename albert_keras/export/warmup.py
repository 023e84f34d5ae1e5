"""TF Serving warmup file: `assets.extra/tf_serving_warmup_requests`.

TF Serving replays the requests in this file (a TFRecord file of serialized
`tensorflow.serving.PredictionLog` protos, at most 1000 records) against a new model version before
it takes traffic, so the first real request does not pay for graph tracing and kernel setup.

Why the protos are declared here: the `PredictionLog` classes live in `tensorflow-serving-api`,
which pins TensorFlow versions and is not a dependency of this project. The few messages needed are
declared below with the field numbers of `tensorflow_serving/apis/{prediction_log,predict,model}.proto`.
`map<string, TensorProto> inputs = 2` is declared as the wire-identical
`repeated {string key = 1; bytes value = 2;}`, with the value holding a serialized
`tensorflow.TensorProto`, so nothing here depends on TensorFlow's proto classes. Files written
here parse with `tensorflow_serving.apis.prediction_log_pb2.PredictionLog` (checked in the tests
when that package is installed) and the reverse.
"""

import os

import numpy as np

from albert_keras.errors import AlbertInputError
from albert_keras.tokenization.sentencepiece import CLS_ID
from albert_keras.tokenization.sentencepiece import SEP_ID
from albert_keras.tokenization.sentencepiece import SPECIAL_IDS

WARMUP_DIR = "assets.extra"
WARMUP_FILE = "tf_serving_warmup_requests"
MAX_WARMUP_RECORDS = 1000  # TF Serving reads no more

_MESSAGES = None


def _message_classes():
    """Build the proto classes once, in a private descriptor pool (no clash with the real ones)."""
    global _MESSAGES
    if _MESSAGES is not None:
        return _MESSAGES
    from google.protobuf import descriptor_pb2
    from google.protobuf import descriptor_pool
    from google.protobuf import message_factory

    field = descriptor_pb2.FieldDescriptorProto
    file_proto = descriptor_pb2.FileDescriptorProto(
        name="albert_keras/tf_serving_warmup.proto", package="tensorflow.serving", syntax="proto3"
    )

    def message(name, *fields):
        proto = file_proto.message_type.add(name=name)
        for field_name, number, kind, type_name, repeated in fields:
            entry = proto.field.add(name=field_name, number=number, type=kind)
            entry.label = field.LABEL_REPEATED if repeated else field.LABEL_OPTIONAL
            if type_name:
                entry.type_name = ".tensorflow.serving." + type_name

    message(
        "ModelSpec",
        ("name", 1, field.TYPE_STRING, None, False),
        ("signature_name", 3, field.TYPE_STRING, None, False),
    )
    message(
        "TensorEntry",
        ("key", 1, field.TYPE_STRING, None, False),
        ("value", 2, field.TYPE_BYTES, None, False),  # a serialized tensorflow.TensorProto
    )
    message(
        "PredictRequest",
        ("model_spec", 1, field.TYPE_MESSAGE, "ModelSpec", False),
        ("inputs", 2, field.TYPE_MESSAGE, "TensorEntry", True),
    )
    message("PredictLog", ("request", 1, field.TYPE_MESSAGE, "PredictRequest", False))
    message("PredictionLog", ("predict_log", 6, field.TYPE_MESSAGE, "PredictLog", False))

    pool = descriptor_pool.DescriptorPool()
    pool.Add(file_proto)
    _MESSAGES = {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName("tensorflow.serving." + name))
        for name in ("ModelSpec", "TensorEntry", "PredictRequest", "PredictLog", "PredictionLog")
    }
    return _MESSAGES


def predict_log_bytes(inputs, signature_name="serving_default", model_name="albert"):
    """One serialized `PredictionLog` holding a `PredictRequest`.

    Args:
        inputs: dict of input name -> numpy array (or anything `tf.make_tensor_proto` takes).
        signature_name: the signature the request calls.
        model_name: the served model's name (TF Serving ignores it during warmup).

    Returns:
        bytes.

    Example:
    ```python
    record = predict_log_bytes({"text": np.array([b"hello"], object)})
    ```
    """
    import tensorflow as tf

    classes = _message_classes()
    log = classes["PredictionLog"]()
    request = log.predict_log.request
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    for key in sorted(inputs):
        entry = request.inputs.add(key=key)
        entry.value = tf.make_tensor_proto(inputs[key]).SerializeToString()
    return log.SerializeToString()


def parse_predict_log(record):
    """Inverse of `predict_log_bytes`: `(signature_name, model_name, {name: numpy array})`.

    Example:
    ```python
    signature, name, inputs = parse_predict_log(predict_log_bytes({"text": texts}))
    ```
    """
    import tensorflow as tf
    from tensorflow.core.framework import tensor_pb2

    log = _message_classes()["PredictionLog"].FromString(record)
    request = log.predict_log.request
    inputs = {}
    for entry in request.inputs:
        inputs[entry.key] = tf.make_ndarray(tensor_pb2.TensorProto.FromString(entry.value))
    return request.model_spec.signature_name, request.model_spec.name, inputs


def write_warmup_file(saved_model_dir, requests):
    """Write `requests` (serialized PredictionLogs) as `<dir>/assets.extra/tf_serving_warmup_requests`.

    Example:
    ```python
    write_warmup_file("saved_models/albert/1", [predict_log_bytes({"text": texts})])
    ```
    """
    import tensorflow as tf

    requests = list(requests)
    if not requests:
        raise AlbertInputError("warmup: no requests to write")
    if len(requests) > MAX_WARMUP_RECORDS:
        raise AlbertInputError(f"warmup: {len(requests)} requests; TF Serving reads at most {MAX_WARMUP_RECORDS}")
    directory = os.path.join(saved_model_dir, WARMUP_DIR)
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, WARMUP_FILE)
    with tf.io.TFRecordWriter(path) as writer:
        for record in requests:
            writer.write(record)
    return path


def read_warmup_file(saved_model_dir):
    """The requests of a warmup file, parsed: list of `(signature_name, model_name, inputs)`.

    Example:
    ```python
    [signature for signature, _, _ in read_warmup_file("saved_models/albert/1")]
    ```
    """
    import tensorflow as tf

    path = os.path.join(saved_model_dir, WARMUP_DIR, WARMUP_FILE)
    return [parse_predict_log(record.numpy()) for record in tf.data.TFRecordDataset(path)]


def replay_warmup_file(saved_model_dir, loaded=None):
    """Replay the warmup file against the SavedModel as TF Serving does, returning the outputs.

    Each record's inputs go to the signature it names; an error in any request is raised (TF
    Serving refuses to load a version whose warmup fails).

    Example:
    ```python
    for signature, outputs in replay_warmup_file("saved_models/albert/1"):
        print(signature, {k: v.shape for k, v in outputs.items()})
    ```
    """
    import tensorflow as tf

    loaded = loaded or tf.saved_model.load(saved_model_dir)
    results = []
    for signature_name, _, inputs in read_warmup_file(saved_model_dir):
        function = loaded.signatures[signature_name or "serving_default"]
        outputs = function(**{key: tf.constant(value) for key, value in inputs.items()})
        results.append((signature_name, {key: value.numpy() for key, value in outputs.items()}))
    return results


def default_requests(model, signature_names, texts, model_name="albert", vocabulary=None):
    """One warmup request per signature of an export, built from `texts`.

    Args:
        model: the exported Keras model (its kind decides the request shapes).
        signature_names: the export's signatures, one request each.
        texts: warmup texts for the text signatures.
        model_name: the TF Serving model name written into each request.
        vocabulary: the export's vocabulary (path, bytes or `Vocabulary`): the ids requests start
            and end with its own [CLS]/[SEP] (101/102 in a Chinese WordPiece vocabulary);
            None: SentencePiece's 2/3.

    Example:
    ```python
    requests = default_requests(classifier, ["serving_default", "serve_ids"], ["A text.", "Another."])
    ```
    """
    from albert_keras.export import signatures as sigs

    kind = sigs.model_kind(model)
    cls_id, sep_id, ordinary_id = CLS_ID, SEP_ID, len(SPECIAL_IDS)
    if vocabulary is not None:
        from albert_keras.tokenization.vocabulary import load_vocabulary

        special = load_vocabulary(vocabulary).special_ids
        # The first id that is none of the special pieces, so the request looks like real text.
        ordinary_id = min(set(range(len(special) + 1)) - set(special.values()))
        cls_id, sep_id = special["cls"], special["sep"]
    texts = np.array([t.encode("utf-8") for t in texts], dtype=object)
    requests = []
    for name in signature_names:
        if name == "serve_ids" or (name == "serving_default" and "tokenize" not in signature_names):
            shape = (len(texts), sigs.num_outputs(model), 8) if kind == sigs.MULTIPLE_CHOICE else (len(texts), 8)
            ids = np.full(shape, ordinary_id, dtype=np.int32)
            ids[..., 0], ids[..., -1] = cls_id, sep_id
            segments = np.zeros(shape, dtype=np.int32)
            segments[..., 4:] = 1
            inputs = {"token_ids": ids, "segment_ids": segments, "padding_mask": np.ones(shape, np.int32)}
        elif name == "serving_default" and kind == sigs.MULTIPLE_CHOICE:
            count = sigs.num_outputs(model)
            choices = np.array([[texts[(i + c) % len(texts)] for c in range(count)] for i in range(len(texts))], dtype=object)
            inputs = {"text": texts, "choices": choices}
        elif name == "serving_default" and kind == sigs.QUESTION_ANSWERER:  # export/question_answering.py
            inputs = {"question": texts, "context": texts[::-1]}
        elif name == "serve_text_pair":
            inputs = {"text": texts, "text_b": texts[::-1]}
        else:
            inputs = {"text": texts}
        requests.append(predict_log_bytes(inputs, name, model_name))
    return requests
