"""In-graph WordPiece (exact and TFLite routes) against the Python reference `WordPieceModel`."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from albert_keras.tokenization.wordpiece import WordPieceModel, read_wordpiece_vocab
from albert_keras.tokenization.wordpiece_graph import (
    WordPieceGraphTokenizer,
    code_point_tables,
    is_punctuation,
)
from tests.tokenization.wordpiece_fixtures import hard_strings, make_chinese_style_vocab

COUNT = 2000


@pytest.fixture(scope="module")
def tokens(tmp_path_factory):
    path = make_chinese_style_vocab(tmp_path_factory.mktemp("wordpiece"))
    with open(path, "rb") as f:
        return read_wordpiece_vocab(f.read())


@pytest.fixture(scope="module")
def texts():
    return list(hard_strings(COUNT, seed=3))


@pytest.fixture(scope="module")
def reference(tokens):
    return WordPieceModel(tokens)


@pytest.fixture(scope="module")
def tokenizer(tokens):
    return WordPieceGraphTokenizer(tokens)


def _mismatches(got, want, texts):
    return [(t, g, w) for t, g, w in zip(texts, got, want) if g != w]


def test_ids_and_offsets_equal_the_reference_eagerly(tokenizer, reference, texts):
    ids, starts, ends = tokenizer.tokenize_with_offsets(texts)
    expected = [reference.encode_with_offsets(t) for t in texts]
    assert not _mismatches(ids.to_list(), [e[0] for e in expected], texts)[:3]
    assert not _mismatches(starts.to_list(), [e[1] for e in expected], texts)[:3]
    assert not _mismatches(ends.to_list(), [e[2] for e in expected], texts)[:3]
    assert ids.dtype == tf.int32 and starts.dtype == tf.int64
    assert tokenizer.tokenize(texts).to_list() == ids.to_list()


def test_ids_equal_the_reference_in_tf_function_and_tf_data(tokenizer, reference, texts):
    sample = texts[:400]
    want = [reference.encode(t) for t in sample]
    traced = tf.function(tokenizer.tokenize, input_signature=[tf.TensorSpec([None], tf.string)])
    assert not _mismatches(traced(tf.constant(sample)).to_list(), want, sample)[:3]
    dataset = tf.data.Dataset.from_tensor_slices(sample).map(tokenizer.tokenize)
    assert [row.tolist() for row in dataset.as_numpy_iterator()] == want
    assert tokenizer.tokenize(sample[0]).numpy().tolist() == want[0]


@pytest.mark.parametrize(
    "text",
    ["", " \u3000\u00a0\t", "\x00\ufffd\x07\u200b", "ΟΔΟΣ σας ΑΣ.Β", "a" * 200, "a" * 201, "中\u0301a",
     "Ａ\u2028b\u2029c", "\U00020000\uf900\u8c48", "e\u0301\u0301x", "\U000e0001\U0010fffd\u0378"],
)
def test_edge_cases_equal_the_reference(tokens, text):
    for lowercase in (True, False):
        got = WordPieceGraphTokenizer(tokens, lowercase=lowercase).tokenize_with_offsets([text])
        want = WordPieceModel(tokens, lowercase=lowercase).encode_with_offsets(text)
        assert [t.to_list()[0] for t in got] == [list(w) for w in want], (text, lowercase)


def test_cased_route_and_line_ids(tokens, texts):
    sample = texts[:300]
    cased = WordPieceGraphTokenizer(tokens, lowercase=False).tokenize(sample).to_list()
    assert cased == [WordPieceModel(tokens, lowercase=False).encode(t) for t in sample]
    lines = WordPieceGraphTokenizer(tokens, id_layout="line").tokenize(sample).to_list()
    assert lines == [WordPieceModel(tokens, id_layout="line").encode(t) for t in sample]
    assert lines != cased


def test_punctuation_table_is_the_official_rule():
    tables = code_point_tables(True)
    flags = np.zeros(sys.maxunicode + 1, bool)
    for lo, hi in zip(tables["punct_starts"], tables["punct_ends"]):
        flags[lo : hi + 1] = True
    want = [cp for cp in range(sys.maxunicode + 1) if not 0xD800 <= cp <= 0xDFFF and is_punctuation(chr(cp))]
    assert np.flatnonzero(flags).tolist() == want


def test_saved_model_reloads_with_tensorflow_text_only(tokenizer, reference, texts, tmp_path):
    module = tf.Module()  # the tokenizer's tables are constants captured by the function

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def serve(text):
        ids, starts, ends = tokenizer.tokenize_with_offsets(text)
        return {"ids": ids.to_tensor(-1), "starts": starts.to_tensor(-1), "ends": ends.to_tensor(-1)}

    module.serve = serve
    export_dir = str(tmp_path / "saved_model")
    tf.saved_model.save(module, export_dir, signatures={"serving_default": serve})
    sample = texts[:200]
    np.save(tmp_path / "in.npy", np.array([t.encode("utf-8") for t in sample], dtype=object))
    script = textwrap.dedent(
        f"""
        import sys
        import numpy as np
        import tensorflow as tf
        import tensorflow_text  # registers FastWordpieceTokenizer's op
        assert not any(name.startswith("albert_keras") for name in sys.modules)
        text = np.load({str(tmp_path / 'in.npy')!r}, allow_pickle=True).astype(bytes)
        out = tf.saved_model.load({export_dir!r}).signatures["serving_default"](text=tf.constant(text))
        np.save({str(tmp_path / 'out.npy')!r}, np.stack([out[k].numpy() for k in ("ids", "starts", "ends")]))
        """
    )
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    got = np.load(tmp_path / "out.npy")
    for k, text in enumerate(sample):
        want = reference.encode_with_offsets(text)
        n = len(want[0])
        assert [got[i, k, :n].tolist() for i in range(3)] == list(want), text
        assert (got[:, k, n:] == -1).all()


def test_tflite_route_converts_and_runs_in_litert(tokens, reference, texts, tmp_path):
    pytest.importorskip("ai_edge_litert.interpreter")
    from albert_keras.export.tflite import interpreter

    tokenizer = WordPieceGraphTokenizer(tokens, tflite_compatible=True)
    module = tf.Module()

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serve(text):
        ids = tokenizer.tokenize(text)
        return {"ids": ids.flat_values, "row_splits": ids.row_splits}

    module.serve = serve
    export_dir = str(tmp_path / "tflite_saved_model")
    tf.saved_model.save(module, export_dir, signatures={"serving_default": serve})
    converter = tf.lite.TFLiteConverter.from_saved_model(export_dir, signature_keys=["serving_default"])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]  # no Flex ops
    converter.allow_custom_ops = True
    runner = interpreter(converter.convert()).get_signature_runner()
    sample = texts[:500]
    out = runner(text=np.array([t.encode("utf-8") for t in sample], dtype=object))
    splits, flat = out["row_splits"], out["ids"]
    got = [flat[splits[i] : splits[i + 1]].tolist() for i in range(len(sample))]
    assert got == tokenizer.tokenize(sample).to_list()
    want = [reference.encode(t) for t in sample]
    wrong = _mismatches(got, want, sample)
    # The documented gap: a capital sigma always lowers to the medial form in a per-code-point map.
    assert all("\u03a3" in text for text, _, _ in wrong), wrong[:3]
    assert len(wrong) < 0.1 * len(sample)
    plain = [t for t in sample if "\u03a3" not in t]
    assert len(plain) > 300


def test_tflite_normalizer_splits_every_code_point_as_the_reference():
    """Every code point between two letters, through the TFLite route's normalizer model and
    whitespace split, gives the reference's words (what FastWordpieceTokenizer then cuts)."""
    import tensorflow_text as tf_text

    from albert_keras.tokenization.wordpiece import basic_tokenize
    from albert_keras.tokenization.wordpiece_graph import official_normalizer_model

    code_points = [c for c in range(1, sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF]
    texts = ["a" + chr(c) + "b" for c in code_points]
    normalizer = tf_text.FastBertNormalizer(model_buffer=official_normalizer_model(True))
    words = tf_text.WhitespaceTokenizer().tokenize(normalizer.normalize(texts)).to_list()
    differ = [
        hex(c) for c, text, got in zip(code_points, texts, words)
        if basic_tokenize(text, True) != [w.decode("utf-8") for w in got]
    ]
    assert not differ, differ[:20]
