import os
import random
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_text as tf_text

from albert_keras.corpus import embedded_corpus
from albert_keras.errors import AlbertInputError
from albert_keras.tokenization import (
    AlbertTokenizer,
    encode_for_albert,
    load_sentencepiece,
    preprocess_text,
    tokenize_for_albert,
)
from tests.harness import run_layer_test
from tests.tokenization.test_sentencepiece import HARD_STRINGS

SEQ = 32


def truncate_seq_pair(tokens_a, tokens_b, max_length):
    """The official fine-tuning truncation (ALBERT's classifier_utils._truncate_seq_pair)."""
    while len(tokens_a) + len(tokens_b) > max_length:
        if len(tokens_a) > len(tokens_b):
            tokens_a.pop()
        else:
            tokens_b.pop()


def reference_pack(sp, texts_a, texts_b=None, sequence_length=SEQ, pad=True):
    """Packed inputs built in plain Python from `encode_for_albert`, the way the official code does."""
    rows = []
    for i, a in enumerate(texts_a):
        ids_a = encode_for_albert(sp, a)
        if texts_b is None:
            ids_a = ids_a[: sequence_length - 2]
            ids, segments = [2] + ids_a + [3], [0] * (len(ids_a) + 2)
        else:
            ids_b = encode_for_albert(sp, texts_b[i])
            truncate_seq_pair(ids_a, ids_b, sequence_length - 3)
            ids = [2] + ids_a + [3] + ids_b + [3]
            segments = [0] * (len(ids_a) + 2) + [1] * (len(ids_b) + 1)
        rows.append((ids, segments))
    width = sequence_length if pad else max(len(ids) for ids, _ in rows)
    out = {"token_ids": [], "segment_ids": [], "padding_mask": []}
    for ids, segments in rows:
        fill = width - len(ids)
        out["token_ids"].append(ids + [0] * fill)
        out["segment_ids"].append(segments + [0] * fill)
        out["padding_mask"].append([1] * len(ids) + [0] * fill)
    return {key: np.array(value, dtype=np.int32) for key, value in out.items()}


def assert_outputs_equal(actual, expected):
    assert sorted(actual) == ["padding_mask", "segment_ids", "token_ids"]
    for key in expected:
        value = np.asarray(actual[key])
        assert value.dtype == np.int32, key
        np.testing.assert_array_equal(value, expected[key], err_msg=key)


@pytest.fixture(scope="module")
def texts():
    sentences = [s for doc in embedded_corpus() for s in doc]
    rng = random.Random(0)
    sample = rng.sample(sentences, 150) + HARD_STRINGS
    sample += ["10,000, ok 1999, was 73, 38,000 and 12,345,678, 3,", "A 20,000, 30,000, 1,999, 4,5"]
    return sample


@pytest.mark.parametrize("use_fast_tokenizer", [False, True])
def test_singles_and_pairs_match_the_python_reference(spm_model_path, texts, use_fast_tokenizer):
    sp = load_sentencepiece(spm_model_path)
    tokenizer = AlbertTokenizer(spm_model_path, sequence_length=SEQ, use_fast_tokenizer=use_fast_tokenizer)
    assert_outputs_equal(tokenizer(texts), reference_pack(sp, texts))
    texts_b = texts[1:] + texts[:1]
    assert_outputs_equal(tokenizer((texts, texts_b)), reference_pack(sp, texts, texts_b))
    # Truncation happens: some rows are full, some are not.
    mask = tokenizer(texts)["padding_mask"].numpy()
    assert mask[:, -1].any() and not mask[:, -1].all()


@pytest.mark.parametrize("use_fast_tokenizer", [False, True])
def test_digit_comma_rewrite_in_graph(digit_model_path, texts, use_fast_tokenizer):
    sp = load_sentencepiece(digit_model_path)
    numbers = [t for t in texts if "," in t]
    raw = [p for t in numbers for p in sp.encode_as_pieces(preprocess_text(t))]
    assert any(len(p) > 1 and p[-1] == "," and p[-2].isdigit() for p in raw)  # the rewrite fires
    tokenizer = AlbertTokenizer(
        digit_model_path, sequence_length=SEQ, pad_to_sequence_length=False,
        use_fast_tokenizer=use_fast_tokenizer,
    )
    assert_outputs_equal(tokenizer(texts), reference_pack(sp, texts, pad=False))
    pairs_b = list(reversed(texts))
    assert_outputs_equal(tokenizer((texts, pairs_b)), reference_pack(sp, texts, pairs_b, pad=False))
    ragged = tokenizer.tokenize(numbers)
    # Against the piece-string path, independent of the id-level rewrite table.
    assert ragged.to_list() == [
        [sp.piece_to_id(p) for p in tokenize_for_albert(sp, preprocess_text(t))] for t in numbers
    ]
    plain = AlbertTokenizer(digit_model_path, sequence_length=SEQ, split_digit_comma=False)
    assert plain.tokenize(numbers).to_list() == [sp.encode_as_ids(preprocess_text(t)) for t in numbers]


def test_pair_truncation_equals_round_robin_trimmer(spm_model_path, texts):
    tokenizer = AlbertTokenizer(spm_model_path, sequence_length=17)
    texts_b = texts[3:] + texts[:3]
    out = tokenizer((texts, texts_b))
    trimmed = tf_text.RoundRobinTrimmer(17 - 3).trim([tokenizer.tokenize(texts), tokenizer.tokenize(texts_b)])
    ids, segments = tf_text.combine_segments(trimmed, start_of_sequence_id=2, end_of_segment_id=3)
    expected_ids, expected_mask = tf_text.pad_model_inputs(ids, 17)
    expected_segments, _ = tf_text.pad_model_inputs(segments, 17)
    np.testing.assert_array_equal(out["token_ids"], expected_ids)
    np.testing.assert_array_equal(out["segment_ids"], expected_segments)
    np.testing.assert_array_equal(out["padding_mask"], expected_mask)


def test_padding_to_longest_and_scalars(spm_model_path):
    tokenizer = AlbertTokenizer(spm_model_path, sequence_length=SEQ, pad_to_sequence_length=False)
    out = tokenizer(["a b c", "a"])
    assert out["token_ids"].shape[1] == int(out["padding_mask"].numpy().sum(axis=1).max()) < SEQ
    out = tokenizer(["word " * 100])
    assert out["token_ids"].shape == (1, SEQ)  # still truncated to sequence_length
    assert tokenizer(["", ""])["token_ids"].numpy().tolist() == [[2, 3], [2, 3]]
    single = tokenizer(tf.constant("a b c"))
    np.testing.assert_array_equal(single["token_ids"], tokenizer(["a b c"])["token_ids"][0])
    padded = AlbertTokenizer(spm_model_path, sequence_length=SEQ)
    assert padded(tf.constant("a b c"))["token_ids"].shape == (SEQ,)


def test_tf_data_and_tf_function(spm_model_path, texts):
    tokenizer = AlbertTokenizer(spm_model_path, sequence_length=SEQ)
    eager = tokenizer(texts)
    unbatched = tf.data.Dataset.from_tensor_slices(texts).map(tokenizer).batch(len(texts))
    assert_outputs_equal(next(iter(unbatched)), {k: v.numpy() for k, v in eager.items()})
    batched = tf.data.Dataset.from_tensor_slices((texts, texts)).batch(7).map(lambda a, b: tokenizer((a, b)))
    pairs = tokenizer((texts, texts))
    got = list(batched)
    np.testing.assert_array_equal(np.concatenate([g["token_ids"] for g in got]), pairs["token_ids"])
    function = tf.function(tokenizer, input_signature=[tf.TensorSpec([None], tf.string)])
    np.testing.assert_array_equal(function(tf.constant(texts))["token_ids"], eager["token_ids"])


def test_config_and_keras_file_round_trip(spm_model_path, tmp_path, texts):
    tokenizer = AlbertTokenizer(spm_model_path, sequence_length=SEQ, lowercase=True, name="albert_tokenizer")
    config = tokenizer.get_config()
    assert isinstance(config["vocabulary"], str)  # base64: JSON-serialisable, no file needed
    assert config["vocabulary_kind"] == "sentencepiece"
    inputs = keras.Input(shape=(), dtype="string", name="text")
    assert tokenizer(inputs)["token_ids"].shape == (None, SEQ)
    # The config round trip and a .keras file holding the layer: the shared harness.
    run_layer_test(AlbertTokenizer, {"vocabulary": str(spm_model_path), "sequence_length": SEQ, "lowercase": True},
                   np.array(texts, dtype=object), tmp_path)


def test_vocabulary_helpers(spm_model_path):
    tokenizer = AlbertTokenizer(spm_model_path, sequence_length=SEQ)
    sp = load_sentencepiece(spm_model_path)
    assert tokenizer.vocabulary_size() == sp.get_piece_size() == 1000
    assert [tokenizer.id_to_token(i) for i in range(5)] == ["<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]"]
    assert tokenizer.token_to_id("[MASK]") == 4 and tokenizer.token_to_id("▁the") == sp.piece_to_id("▁the")
    assert tokenizer.token_to_id("no-such-piece") == 1
    assert tokenizer.get_vocabulary()[14] == sp.id_to_piece(14)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tokenizer.id_to_token(1000)


def test_bad_arguments(spm_model_path, tmp_path):
    with pytest.raises(ValueError, match="sequence_length must be at least 3"):
        AlbertTokenizer(spm_model_path, sequence_length=2)
    tokenizer = AlbertTokenizer(spm_model_path, sequence_length=SEQ)
    with pytest.raises(ValueError, match="one or two segments"):
        tokenizer((["a"], ["b"], ["c"]))
    with pytest.raises(AlbertInputError, match="missing.model: vocabulary not found"):
        AlbertTokenizer(tmp_path / "missing.model")


def test_saved_model_reloads_with_only_tensorflow_and_tensorflow_text(digit_model_path, tmp_path, texts):
    # Keras' ExportArchive, as the export code uses it; the digit model exercises the rewrite tables.
    tokenizer = AlbertTokenizer(digit_model_path, sequence_length=SEQ)
    archive = keras.export.ExportArchive()
    archive.track(tokenizer)
    archive.add_endpoint(
        "serving_default",
        lambda a, b: tokenizer((a, b)),
        input_signature=[tf.TensorSpec([None], tf.string, name="a"), tf.TensorSpec([None], tf.string, name="b")],
    )
    export_dir = str(tmp_path / "saved_model")
    archive.write_out(export_dir, verbose=False)
    texts_b = texts[::-1]
    expected = tokenizer((texts, texts_b))
    np.save(tmp_path / "a.npy", np.array([t.encode("utf-8") for t in texts], dtype=object))
    np.save(tmp_path / "b.npy", np.array([t.encode("utf-8") for t in texts_b], dtype=object))
    script = textwrap.dedent(
        f"""
        import sys
        import numpy as np
        import tensorflow as tf
        import tensorflow_text  # registers the SentencePiece ops
        assert not any(name.startswith(("albert_keras", "keras_hub")) for name in sys.modules)
        a = np.load({str(tmp_path / 'a.npy')!r}, allow_pickle=True).astype(bytes)
        b = np.load({str(tmp_path / 'b.npy')!r}, allow_pickle=True).astype(bytes)
        out = tf.saved_model.load({export_dir!r}).signatures["serving_default"](
            a=tf.constant(a, tf.string), b=tf.constant(b, tf.string))
        np.save({str(tmp_path / 'out.npy')!r}, np.stack([out[k].numpy() for k in
                ("token_ids", "segment_ids", "padding_mask")]))
        """
    )
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    got = np.load(tmp_path / "out.npy")
    for index, key in enumerate(("token_ids", "segment_ids", "padding_mask")):
        np.testing.assert_array_equal(got[index], expected[key])


def test_fast_tokenizer_layer_converts_to_tflite(digit_model_path, texts):
    ai_edge_litert = pytest.importorskip("ai_edge_litert.interpreter")
    from tensorflow_text.core.pybinds import tflite_registrar

    tokenizer = AlbertTokenizer(digit_model_path, sequence_length=SEQ, use_fast_tokenizer=True, normalize=False)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="a"), tf.TensorSpec([None], tf.string, name="b")])
    def serve(a, b):
        return tokenizer((a, b))

    holder = tf.Module()
    holder.tokenizer = tokenizer
    converter = tf.lite.TFLiteConverter.from_concrete_functions([serve.get_concrete_function()], holder)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]  # no Flex delegate needed
    converter.allow_custom_ops = True
    interpreter = ai_edge_litert.InterpreterWithCustomOps(
        model_content=converter.convert(), custom_op_registerers=tflite_registrar.SELECT_TFTEXT_OPS
    )
    runner = interpreter.get_signature_runner()
    a = np.array([preprocess_text(t).encode("utf-8") for t in texts])
    b = a[::-1].copy()
    expected = reference_pack(load_sentencepiece(digit_model_path), texts, texts[::-1])
    assert_outputs_equal(runner(a=a, b=b), expected)
