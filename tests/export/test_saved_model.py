"""SavedModel export: every signature of every model kind, reloaded in a fresh process without keras."""

import os
import pickle

import numpy as np
import pytest
import tensorflow as tf

from albert_keras.errors import AlbertInputError
from albert_keras.export import signatures as sigs
from albert_keras.export.saved_model import export_saved_model
from albert_keras.export.text import AlbertTextPacker
from albert_keras.export.warmup import read_warmup_file
from albert_keras.export.warmup import replay_warmup_file
from tests.export.conftest import BAD_TEXTS
from tests.export.conftest import NUM_CHOICES
from tests.export.conftest import SEQUENCE_LENGTH
from tests.export.conftest import run_python

# Runs in a fresh interpreter where keras, keras_hub, albert_keras and tensorflow_text (whose
# Python package imports keras) cannot be imported at all: TF-Text's kernels are registered from
# its op libraries, as a C++ server would link them.
BARE_LOADER = r"""
import glob, os, pickle, sys
for name in ("keras", "keras_hub", "albert_keras", "tensorflow_text", "tf_keras"):
    sys.modules[name] = None  # importing any of them now raises ImportError
import numpy as np
import tensorflow as tf
ops_dir = os.path.join(os.path.dirname(tf.__file__), "..", "tensorflow_text", "python", "ops")
for library in sorted(glob.glob(os.path.join(ops_dir, "_*.so"))):
    tf.load_op_library(library)
calls = pickle.load(open(sys.argv[1] if len(sys.argv) > 1 else CALLS, "rb"))
results, loaded = [], {}
for path, signature, inputs in calls:
    if path not in loaded:
        loaded[path] = tf.saved_model.load(path)
    function = loaded[path].signatures[signature]
    outputs = function(**{k: tf.constant(v) for k, v in inputs.items()})
    results.append({k: v.numpy() for k, v in outputs.items()})
pickle.dump({
    "results": results,
    "signatures": {p: sorted(m.signatures) for p, m in loaded.items()},
    "modules": sorted(m for m, v in sys.modules.items() if v is not None
                      and m.split(".")[0] in ("keras", "keras_hub", "albert_keras", "tensorflow_text")),
}, open(RESULTS, "wb"))
"""


def text_inputs(kind):
    """The inputs of `serving_default` (question answerers: `question`, `context`)."""
    texts = np.array(BAD_TEXTS, dtype=object)
    if kind == "multiple_choice":
        choices = np.array([[texts[(i + c) % len(texts)] for c in range(NUM_CHOICES)] for i in range(len(texts))], dtype=object)
        return {"text": texts, "choices": choices}
    if kind == "question_answerer":
        return {"question": texts[::-1].copy(), "context": texts}
    return {"text": texts}


def pair_inputs(kind):
    """The inputs of `serve_text_pair` (None for multiple choice, which has none)."""
    inputs = text_inputs(kind)
    if kind == "multiple_choice":
        return None
    if kind == "question_answerer":
        return {"text": inputs["question"], "text_b": inputs["context"]}
    return {"text": inputs["text"], "text_b": inputs["text"][::-1].copy()}


def first_texts(kind):
    """The `[B]` texts of the kind's first text input (what the `tokenize` test sends)."""
    inputs = text_inputs(kind)
    return inputs["question"] if kind == "question_answerer" else inputs["text"]


def empty_inputs(kind):
    inputs = {k: v[:0] for k, v in text_inputs(kind).items()}
    return inputs


def keras_outputs(model, packer, inputs):
    """What the Keras model gives for the text signature's inputs (the reference)."""
    text_b = inputs.get("text_b", inputs.get("choices"))
    features = sigs.text_features(
        model, packer, tf.constant(inputs["text"]), None if text_b is None else tf.constant(text_b)
    )
    outputs = sigs.task_outputs(model, features)
    return {k: v.numpy() for k, v in outputs.items()}, {k: v.numpy() for k, v in features.items()}


def serving_reference(model, packer, inputs):
    """What `serving_default` should give: the task outputs, or for a question answerer the
    sliced answer of `QuestionAnsweringServer` run eagerly."""
    if sigs.model_kind(model) != sigs.QUESTION_ANSWERER:
        return keras_outputs(model, packer, inputs)[0]
    from albert_keras.export.question_answering import QuestionAnsweringServer
    from albert_keras.tokenization import AlbertTokenizer

    tokenizer = AlbertTokenizer(packer.spm_proto, sequence_length=SEQUENCE_LENGTH)
    server = QuestionAnsweringServer(model, tokenizer, SEQUENCE_LENGTH)
    outputs = server(tf.constant(inputs["question"]), tf.constant(inputs["context"]))
    return {k: v.numpy() for k, v in outputs.items()}


def assert_outputs_equal(expected, actual, atol=1e-5):
    assert sorted(expected) == sorted(actual)
    for key, want in expected.items():
        got = actual[key]
        assert got.shape == want.shape, key
        if np.issubdtype(want.dtype, np.floating):
            assert np.all(np.isfinite(got)), key
            np.testing.assert_allclose(got, want, atol=atol, rtol=0, err_msg=key)
        else:
            np.testing.assert_array_equal(got, want, err_msg=key)


@pytest.fixture(scope="module")
def fresh_process_results(saved_models, tiny_models, spm_model_path, tmp_path_factory):
    """Call every signature of every export in one fresh bare-TensorFlow process."""
    packer = AlbertTextPacker(spm_model_path, SEQUENCE_LENGTH)
    calls, expected = [], []
    for kind, path in saved_models.items():
        model = tiny_models[kind]
        inputs = text_inputs(kind)
        calls.append((path, "serving_default", inputs))
        expected.append((kind, "serving_default", serving_reference(model, packer, inputs)))
        empty = empty_inputs(kind)
        calls.append((path, "serving_default", empty))
        # (Keras' eager path cannot run a batch of 0; shapes are checked below instead.)
        expected.append((kind, "serving_default/empty", None))
        pair = pair_inputs(kind)
        # A question answerer's ids are its (question, context) pair packed into one window.
        ids_reference, features = keras_outputs(model, packer, pair if kind == "question_answerer" else inputs)
        calls.append((path, "serve_ids", features))
        expected.append((kind, "serve_ids", ids_reference))
        texts = first_texts(kind)
        calls.append((path, "tokenize", {"text": texts}))
        expected.append((kind, "tokenize", {k: v.numpy() for k, v in packer(tf.constant(texts)).items()}))
        if pair is not None:
            calls.append((path, "serve_text_pair", pair))
            expected.append((kind, "serve_text_pair", keras_outputs(model, packer, pair)[0]))
    directory = tmp_path_factory.mktemp("fresh")
    calls_path, results_path = str(directory / "calls.pkl"), str(directory / "results.pkl")
    with open(calls_path, "wb") as f:
        pickle.dump(calls, f)
    code = f"CALLS = {calls_path!r}\nRESULTS = {results_path!r}\n" + BARE_LOADER
    run_python(code)
    with open(results_path, "rb") as f:
        results = pickle.load(f)
    return expected, results


def test_fresh_process_without_keras_matches_keras(fresh_process_results):
    expected, results = fresh_process_results
    assert results["modules"] == []  # no keras, keras_hub, albert_keras, tensorflow_text
    for (kind, signature, reference), actual in zip(expected, results["results"]):
        if reference is None:
            continue
        try:
            assert_outputs_equal(reference, actual)
        except AssertionError as error:
            raise AssertionError(f"{kind} {signature}: {error}") from None


def test_every_kind_has_its_signatures(fresh_process_results, saved_models):
    _, results = fresh_process_results
    for kind, path in saved_models.items():
        names = results["signatures"][path]
        expected = {"serving_default", "serve_ids", "tokenize"}
        if kind != "multiple_choice":
            expected.add("serve_text_pair")
        expected |= {"token_classifier": {"tag"}}.get(kind, set())
        assert set(names) == expected, kind


def test_question_answerer_serves_answers_sliced_from_the_context(fresh_process_results):
    """`serving_default` takes question/context and answers with a span of the context as sent;
    `serve_text_pair` gives token positions and no piece-rebuilt text."""
    expected, results = fresh_process_results
    got = {signature: actual for (kind, signature, _), actual in zip(expected, results["results"])
           if kind == "question_answerer"}
    served = got["serving_default"]
    assert sorted(served) == ["answer_end", "answer_start", "answer_text", "has_answer", "no_answer_score", "score"]
    contexts = [c.decode("utf-8", errors="replace") for c in text_inputs("question_answerer")["context"]]
    assert served["has_answer"].any()
    for k, context in enumerate(contexts):
        start, end = int(served["answer_start"][k]), int(served["answer_end"][k])
        if served["has_answer"][k]:
            assert 0 <= start < end <= len(context) and served["answer_text"][k].decode() == context[start:end]
        else:
            assert (start, end) == (-1, -1) and served["answer_text"][k] == b""
    assert sorted(got["serve_text_pair"]) == ["end_index", "no_answer_score", "span_probability", "span_score",
                                              "start_index"]


def test_bad_text_gives_finite_outputs_and_truncates(fresh_process_results):
    expected, results = fresh_process_results
    for (kind, signature, _), actual in zip(expected, results["results"]):
        if signature == "tokenize":
            # 5 texts padded to the longest, which the 100,000-character one makes the maximum.
            assert actual["token_ids"].shape == (len(BAD_TEXTS), SEQUENCE_LENGTH)
            assert (actual["token_ids"][:, 0] == 2).all()
            # The empty string packs to [CLS] [SEP].
            empty_row = list(first_texts(kind)).index(b"")
            assert actual["padding_mask"][empty_row].sum() == 2
        if signature == "serving_default/empty":
            assert all(v.shape[0] == 0 for v in actual.values()), kind
        for value in actual.values():
            if np.issubdtype(value.dtype, np.floating):
                assert np.all(np.isfinite(value)), (kind, signature)


def test_tensorflow_text_import_path_loads_without_keras_hub(saved_models):
    """The documented client path: `import tensorflow_text` (keras comes with it; nothing of ours)."""
    code = f"""
import sys
import tensorflow as tf
import tensorflow_text
served = tf.saved_model.load({saved_models["classifier"]!r})
out = served.signatures["serving_default"](text=tf.constant(["a test", ""]))
assert out["probabilities"].shape == (2, 3), out
assert "keras_hub" not in sys.modules and "albert_keras" not in sys.modules
print("ok", out["label_ids"].numpy().tolist())
"""
    assert run_python(code).startswith("ok")


def test_warmup_file_replays_against_the_model(saved_models):
    for kind, path in saved_models.items():
        records = read_warmup_file(path)
        signatures = sorted(name for name, _, _ in records)
        assert signatures == sorted(tf.saved_model.load(path).signatures), kind
        for signature, outputs in replay_warmup_file(path):
            for value in outputs.values():
                assert value.shape[0] == 2
                if np.issubdtype(value.dtype, np.floating):
                    assert np.all(np.isfinite(value))


def test_missing_sentencepiece_model_is_a_clear_error(tiny_models, tmp_path):
    """(Exporting the same model with only the ids signature works: test_commands.)"""
    with pytest.raises(AlbertInputError, match="SentencePiece model is required"):
        export_saved_model(tiny_models["classifier"], str(tmp_path / "m" / "1"))
    assert not os.path.exists(tmp_path / "m")
