import io

import numpy as np
import pytest

from albert_keras.errors import AlbertInputError
from tests.representations.conftest import run_cli


def _reference(encoder_dir, texts):
    """The masked mean of the encoder's sequence output, L2-normalized, one text at a time."""
    import tensorflow as tf

    from albert_keras.modeling.pretrained import load_encoder
    from albert_keras.tokenization.layer import AlbertTokenizer

    encoder = load_encoder(encoder_dir)
    tokenizer = AlbertTokenizer(f"{encoder_dir}/spiece.model", sequence_length=32, pad_to_sequence_length=False)
    rows = []
    for text in texts:
        features = tokenizer(tf.constant([text]))
        sequence = np.asarray(encoder(features)["sequence_output"])[0]
        mean = sequence.mean(axis=0)
        rows.append(mean / np.linalg.norm(mean))
    return np.stack(rows)


def test_embed_is_the_normalized_masked_mean_in_input_order(encoder_dir, pretrainer_dir, corpus_sentences):
    from albert_keras.representations.embeddings import embed

    # Lengths vary, so bucketing reorders batches internally; the output must not be reordered.
    texts = corpus_sentences[:40:4] + ["Short.", "x " * 50]
    vectors = embed(encoder_dir, texts, batch_size=3, precision="float32")
    assert vectors.shape == (len(texts), 32) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(vectors, _reference(encoder_dir, texts), atol=2e-5)
    # A pretrainer's directory embeds with its encoder.
    np.testing.assert_allclose(embed(pretrainer_dir, texts, batch_size=5, precision="float32"), vectors, atol=1e-6)


def test_embed_to_file_streams_the_same_rows(encoder_dir, corpus_sentences, tmp_path):
    from albert_keras.representations.embeddings import SentenceEmbedder

    embedder = SentenceEmbedder(encoder_dir)
    texts = corpus_sentences[:70]
    path = embedder.embed_to_file(texts, tmp_path / "e.npy", batch_size=1, progress=False)  # 2 chunks of 64
    np.testing.assert_array_equal(np.load(path), embedder.embed(texts, batch_size=1, progress=False))


def test_progress_has_no_escape_codes_without_a_terminal():
    from albert_keras.representations.embeddings import _Progress

    stream = io.StringIO()
    progress = _Progress(10, enabled=True, stream=stream)
    progress.update(5)
    progress.update(10)
    text = stream.getvalue()
    assert "10/10 texts" in text and "\x1b" not in text and "\r" not in text


def test_read_texts_errors(tmp_path):
    from albert_keras.representations.embeddings import read_texts

    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    with pytest.raises(AlbertInputError, match="empty.txt: empty file"):
        read_texts(empty)
    gap = tmp_path / "gap.txt"
    gap.write_text("one\n\nthree\n")
    with pytest.raises(AlbertInputError, match="gap.txt line 2: blank line"):
        read_texts(gap)
    assert read_texts(gap, skip_blank=True) == ["one", "three"]


def test_embed_cli(encoder_dir, tmp_path):
    source = tmp_path / "texts.txt"
    source.write_text("The for statement loops.\nA function returns a value.\n")
    output = tmp_path / "out.npy"
    code, out, _ = run_cli("embed", "--model", encoder_dir, "--input", source, "--output", output)
    assert code == 0 and "2 x 32" in out
    assert np.load(output).shape == (2, 32)
    (tmp_path / "empty.txt").write_text("")
    code, _, err = run_cli("embed", "--model", encoder_dir, "--input", tmp_path / "empty.txt",
                           "--output", tmp_path / "never.npy")
    assert code == 2 and "empty file" in err and not (tmp_path / "never.npy").exists()
