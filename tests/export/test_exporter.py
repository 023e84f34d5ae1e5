"""`export_model`: machine-independent precision, settings from the directory, metadata, parity."""

import json
import logging
import os
import re

import numpy as np
import pytest
import tensorflow as tf

from albert_keras.errors import AlbertInputError
from albert_keras.export import exporter
from albert_keras.export import inference
from albert_keras.export.text import resolve_tokenizer
from tests.export.conftest import BAD_TEXTS

AMX_CPU = "processor : 0\nflags : fpu sse avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n"
AVX2_CPU = "processor : 0\nflags : fpu sse avx2 fma\n"


@pytest.fixture(scope="module")
def classifier_dir(tiny_models, spm_model_path, tmp_path_factory):
    from albert_keras.modeling.pretrained import save_pretrained

    return save_pretrained(
        tiny_models["classifier"], str(tmp_path_factory.mktemp("exporter") / "classifier"),
        spm_model=spm_model_path, tokenizer_settings={"lowercase": True, "sequence_length": 24},
    )


def _pretend_cpu(monkeypatch, tmp_path, flags):
    path = tmp_path / f"cpuinfo_{abs(hash(flags))}"
    path.write_text(flags)
    monkeypatch.setattr(inference, "CPUINFO_PATH", str(path))


def _variables(export_dir):
    """`{variable path: array}` of a SavedModel, keyed by each variable's saved full name.

    The checkpoint keys (`_all_variables/N`) follow the order in which tracing captured the
    variables, which is not stable between traces; the full names are.
    """
    from tensorflow.core.protobuf import trackable_object_graph_pb2

    reader = tf.train.load_checkpoint(os.path.join(export_dir, "variables", "variables"))
    graph = trackable_object_graph_pb2.TrackableObjectGraph()
    graph.ParseFromString(reader.get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH"))
    values = {}
    for node in graph.nodes:
        for attribute in node.attributes:
            # Dropout's seed-generator states are named by a per-process counter and unused at
            # inference (training=False); the two exports share a process, so they are left out.
            if attribute.name == "VARIABLE_VALUE" and "seed_generator" not in attribute.full_name:
                # A variable reachable from the tracked model and from the archive's variable list is
                # stored under both keys: every copy must hold the same value.
                value = reader.get_tensor(attribute.checkpoint_key)
                first = values.setdefault(attribute.full_name, value)
                assert first.tobytes() == value.tobytes(), attribute.full_name
    return values


def _call_every_signature(export_dir):
    loaded = tf.saved_model.load(export_dir)
    texts = tf.constant(BAD_TEXTS)
    features = loaded.signatures["tokenize"](text=texts)
    calls = {
        "serving_default": {"text": texts},
        "serve_text_pair": {"text": texts, "text_b": texts[::-1]},
        "tokenize": {"text": texts},
        "serve_ids": dict(features),
    }
    assert sorted(loaded.signatures) == sorted(calls)
    return {name: {k: v.numpy() for k, v in loaded.signatures[name](**inputs).items()} for name, inputs in calls.items()}


def test_the_same_directory_exports_the_same_model_on_any_machine(classifier_dir, tmp_path, monkeypatch, caplog):
    """With and without bfloat16 units (simulated /proc/cpuinfo), the default export is identical.

    Compared: every variable but dropout's seed-generator state (names and bytes), every signature's input/output specs and its
    outputs on the same inputs (bit-exact), and assets.extra/ (warmup requests and
    albert_keras.json) byte for byte. saved_model.pb itself is not compared: it embeds generated
    function names.
    """
    from albert_keras.inspection import saved_model_signatures

    exports = {}
    for name, flags in (("amx", AMX_CPU), ("avx2", AVX2_CPU)):
        _pretend_cpu(monkeypatch, tmp_path, flags)
        with caplog.at_level(logging.WARNING, logger="albert_keras"):
            exports[name] = exporter.export_model(classifier_dir, str(tmp_path / name / "sentiment"), verbose=False)
        assert not caplog.records  # float32 needs no bfloat16 units anywhere
    amx, avx2 = exports["amx"], exports["avx2"]
    a, b = _variables(amx), _variables(avx2)
    assert sorted(a) == sorted(b) and a
    for name in a:
        assert a[name].dtype == b[name].dtype and a[name].tobytes() == b[name].tobytes(), name
    assert saved_model_signatures(amx) == saved_model_signatures(avx2)
    outputs_a, outputs_b = _call_every_signature(amx), _call_every_signature(avx2)
    for signature, values in outputs_a.items():
        for key, value in values.items():
            np.testing.assert_array_equal(value, outputs_b[signature][key], err_msg=f"{signature} {key}")
    for name in sorted(os.listdir(os.path.join(amx, "assets.extra"))):
        with open(os.path.join(amx, "assets.extra", name), "rb") as f, open(os.path.join(avx2, "assets.extra", name), "rb") as g:
            assert f.read() == g.read(), name
    metadata = json.load(open(os.path.join(amx, "assets.extra", "albert_keras.json")))
    assert metadata["precision"] == "float32"
    import albert_keras
    from albert_keras.modeling.pretrained import pretrained_fingerprint

    assert metadata["albert_keras_version"] == albert_keras.__version__
    assert metadata["source_fingerprint"] == pretrained_fingerprint(classifier_dir)
    # The directory's tokenizer.json decides casing and the served sequence length.
    assert metadata["tokenizer"]["lowercase"] is True and metadata["tokenizer"]["sequence_length"] == 24
    assert outputs_a["tokenize"]["token_ids"].shape[1] == 24  # the 100,000-character text is cut at 24


def test_bfloat16_without_bfloat16_units_is_one_warning_and_the_same_export(
    classifier_dir, tmp_path, monkeypatch, caplog
):
    if tf.config.list_physical_devices("GPU"):
        pytest.skip("a GPU runs bfloat16 natively: nothing to warn about")
    _pretend_cpu(monkeypatch, tmp_path, AMX_CPU)
    with caplog.at_level(logging.WARNING, logger="albert_keras"):
        exporter._warn_without_native_units("bfloat16")
    assert not caplog.records
    _pretend_cpu(monkeypatch, tmp_path, AVX2_CPU)
    with caplog.at_level(logging.WARNING, logger="albert_keras"):
        bf16 = exporter.export_model(classifier_dir, str(tmp_path / "bf16"), precision="bfloat16", verbose=False)
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "cannot check bfloat16 speed" in warnings[0], warnings
    metadata = json.load(open(os.path.join(bf16, "assets.extra", "albert_keras.json")))
    assert metadata["precision"] == "bfloat16"
    f32 = exporter.export_model(classifier_dir, str(tmp_path / "f32"), verbose=False)
    got = tf.saved_model.load(bf16).signatures["serving_default"](text=tf.constant(BAD_TEXTS))["probabilities"]
    want = tf.saved_model.load(f32).signatures["serving_default"](text=tf.constant(BAD_TEXTS))["probabilities"]
    difference = np.abs(got.numpy() - want.numpy()).max()
    assert 0 < difference < 0.05  # it really computes in bfloat16, and stays close


def test_precision_is_never_auto_and_tflite_stays_float32(classifier_dir, tmp_path):
    with pytest.raises(AlbertInputError, match="'auto' is not an export setting"):
        exporter.export_model(classifier_dir, str(tmp_path / "a"), precision="auto")
    with pytest.raises(AlbertInputError, match="use --quantize"):
        exporter.export_model(classifier_dir, str(tmp_path / "b"), format="tflite", precision="bfloat16")
    with pytest.raises(AlbertInputError, match="pretrained directory not found"):
        exporter.export_model(str(tmp_path / "no_such_dir"), str(tmp_path / "c"))
    assert not os.path.exists(tmp_path / "a") and not os.path.exists(tmp_path / "b")


def test_overrides_that_disagree_with_the_directory_warn(classifier_dir, tmp_path, caplog):
    other_spm = tmp_path / "other.txt"  # another vocabulary (a WordPiece one) than the model's spiece.model
    other_spm.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="albert_keras"):
        spm, settings = resolve_tokenizer(classifier_dir, spm_model=str(other_spm), lowercase=False)
    text = caplog.text
    assert spm.source == str(other_spm)
    assert settings == {"kind": "wordpiece", "lowercase": False, "sequence_length": 24}
    assert "differs from" in text and "records lowercase; serving cased as asked" in text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="albert_keras"):
        _, settings = resolve_tokenizer(classifier_dir, lowercase=True)
    assert not caplog.records and settings["lowercase"] is True
    with pytest.raises(AlbertInputError, match="--vocab: .*not found"):
        resolve_tokenizer(classifier_dir, spm_model=str(tmp_path / "missing.model"))


@pytest.fixture(scope="module")
def cased_hf_dir(tmp_path_factory):
    """The Hugging Face tiny fixture with a cased SentencePiece model (100 pieces) and a tokenizer
    config saying `do_lower_case: false`."""
    import shutil

    from albert_keras.corpus import embedded_corpus
    from albert_keras.tokenization import train_sentencepiece
    from tests.convert.conftest import HF_FIXTURE

    root = tmp_path_factory.mktemp("cased_hf")
    source = shutil.copytree(HF_FIXTURE, root / "hf")
    # Letters, spaces and full stops only, so 100 pieces hold every character, both cases.
    lines = [re.sub(r"[^A-Za-z .]", "", s) for d in embedded_corpus() for s in d]
    corpus = root / "ascii.txt"
    corpus.write_text("\n".join(line for line in lines if line.strip()) + "\n")
    train_sentencepiece(str(corpus), str(source / "spiece.model"), vocab_size=100, lowercase=False)
    (source / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": False, "keep_accents": False}))
    return str(source)


def test_converted_hugging_face_model_serves_within_1e5_of_hugging_face(tmp_path):
    """Default export (no precision asked) of the HF fixture: pooled output within 1e-5."""
    from albert_keras.convert.huggingface import from_huggingface
    from tests.convert.conftest import HF_FIXTURE
    from tests.convert.conftest import TOLERANCE

    converted = from_huggingface(HF_FIXTURE, tmp_path / "converted")
    export_dir = exporter.export_model(converted, str(tmp_path / "served"), signature="ids", verbose=False)
    expected = np.load(os.path.join(HF_FIXTURE, "expected.npz"))
    served = tf.saved_model.load(export_dir).signatures["serving_default"](
        token_ids=tf.constant(expected["input_ids"], tf.int32),
        segment_ids=tf.constant(expected["token_type_ids"], tf.int32),
        padding_mask=tf.constant(expected["attention_mask"], tf.int32),
    )
    np.testing.assert_allclose(served["pooled_output"].numpy(), expected["pooled_output"], atol=TOLERANCE, rtol=0)


def test_cased_round_trip_convert_finetune_save_export_keeps_tokenizer_casing_and_labels(cased_hf_dir, tmp_path):
    """convert -> from_pretrained -> fit -> save_pretrained -> export: a cased model serves cased."""
    import keras

    from albert_keras.convert.huggingface import from_huggingface
    from albert_keras.inspection import inspect_artifact
    from albert_keras.modeling.pretrained import read_tokenizer_settings
    from albert_keras.modeling.task_models import AlbertClassifier
    from albert_keras.tokenization import AlbertTokenizer

    converted = from_huggingface(cased_hf_dir, tmp_path / "converted")
    assert read_tokenizer_settings(converted)["lowercase"] is False
    keras.utils.set_random_seed(0)
    model = AlbertClassifier.from_pretrained(converted, labels=["plain", "Capital"], sequence_length=16)
    model.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    texts = ["Hello World.", "hello world.", "The Sun.", "the sun."] * 4
    model.fit(texts, ["Capital", "plain"] * 8, batch_size=8, epochs=1, steps_per_epoch=2, verbose=0)
    finetuned = model.save_pretrained(tmp_path / "finetuned")
    assert read_tokenizer_settings(finetuned) == {"kind": "sentencepiece", "lowercase": False, "sequence_length": 16}
    with open(os.path.join(cased_hf_dir, "spiece.model"), "rb") as a, open(os.path.join(finetuned, "spiece.model"), "rb") as b:
        assert a.read() == b.read()

    export_dir = exporter.export_model(finetuned, str(tmp_path / "served"), verbose=False)
    report = inspect_artifact(export_dir)
    assert report["labels"] == ["plain", "Capital"] and report["class"] == "AlbertClassifier"
    assert report["tokenizer"]["lowercase"] is False and report["tokenizer"]["sequence_length"] == 16
    served = tf.saved_model.load(export_dir)
    text = tf.constant(["Hello World."])
    ids = served.signatures["tokenize"](text=text)["token_ids"].numpy()
    spm = os.path.join(cased_hf_dir, "spiece.model")
    cased = AlbertTokenizer(spm, sequence_length=16, lowercase=False, pad_to_sequence_length=False)(text)["token_ids"]
    lowered = AlbertTokenizer(spm, sequence_length=16, lowercase=True, pad_to_sequence_length=False)(text)["token_ids"]
    np.testing.assert_array_equal(ids, cased.numpy())
    assert ids.tolist() != lowered.numpy().tolist()  # the capitals reach the model
    outputs = served.signatures["serving_default"](text=text)
    probabilities = outputs["probabilities"].numpy()
    np.testing.assert_allclose(probabilities, keras.ops.softmax(model.predict(["Hello World."], verbose=0)), atol=1e-5)
    assert outputs["labels"].numpy().tolist() == [[b"plain", b"Capital"][int(np.argmax(probabilities[0]))]]
