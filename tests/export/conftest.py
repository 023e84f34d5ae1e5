"""Tiny models and exports shared by the export tests (built once per session)."""

import os
import subprocess
import sys

import numpy as np
import pytest

SEQUENCE_LENGTH = 32
NUM_CLASSES = 3
NUM_TAGS = 4
NUM_CHOICES = 3

# Bad input for the text signatures: empty, huge, undecodable, mixed lengths.
BAD_TEXTS = [
    b"",
    ("word " * 20000).encode(),  # 100,000 characters
    b"\xff\xfe\xfa broken \xc3",
    b"Short.",
    "Ünïcödé, digits 1,234.5 and 9, commas".encode(),
]

KINDS = ("encoder", "classifier", "token_classifier", "question_answerer", "multiple_choice")


def tiny_config():
    from albert_keras.config import AlbertConfig

    return AlbertConfig(
        vocab_size=1000,
        embedding_size=16,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=SEQUENCE_LENGTH,
    )


@pytest.fixture(scope="session")
def tiny_models():
    """One seeded tiny encoder and every task model on top of it."""
    import keras

    from albert_keras.modeling.encoder import AlbertEncoder
    from albert_keras.modeling.task_models import AlbertClassifier
    from albert_keras.modeling.task_models import AlbertMultipleChoice
    from albert_keras.modeling.task_models import AlbertQuestionAnswerer
    from albert_keras.modeling.task_models import AlbertTokenClassifier

    keras.utils.set_random_seed(1)
    encoder = AlbertEncoder(tiny_config())
    return {
        "encoder": encoder,
        "classifier": AlbertClassifier(encoder, NUM_CLASSES),
        "token_classifier": AlbertTokenClassifier(encoder, NUM_TAGS),
        "question_answerer": AlbertQuestionAnswerer(encoder),
        "multiple_choice": AlbertMultipleChoice(encoder, NUM_CHOICES),
    }


@pytest.fixture(scope="session")
def corpus_sentences():
    from albert_keras.corpus import embedded_corpus

    return [sentence for document in embedded_corpus() for sentence in document]


@pytest.fixture(scope="session")
def trained_classifier(spm_model_path, corpus_sentences):
    """A tiny classifier trained on a learnable task: does the sentence contain a double quote?

    About half the corpus sentences do, and the quote is its own SentencePiece piece, so a few
    epochs give clearly non-random labels (about 0.9 held-out accuracy), which is what the int8
    label-agreement test needs to mean something.

    Returns:
        `(model, held_out_sentences, held_out_accuracy)`.
    """
    import keras
    import tensorflow as tf

    from albert_keras.export.text import AlbertTextPacker
    from albert_keras.modeling.encoder import AlbertEncoder
    from albert_keras.modeling.task_models import AlbertClassifier

    keras.utils.set_random_seed(0)
    model = AlbertClassifier(AlbertEncoder(tiny_config()), 2, dropout=0.0)
    packer = AlbertTextPacker(spm_model_path, SEQUENCE_LENGTH)
    train, held_out = corpus_sentences[:1500], corpus_sentences[1500:2100]

    def data(sentences):
        features = {k: v.numpy() for k, v in packer(tf.constant(sentences)).items()}
        return features, np.array(['"' in s for s in sentences], np.int32)

    model.compile(
        keras.optimizers.Adam(3e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    x, y = data(train)
    model.fit(x, y, batch_size=64, epochs=3, verbose=0)
    x, y = data(held_out)
    accuracy = model.evaluate(x, y, verbose=0)[1]
    return model, held_out, accuracy


@pytest.fixture(scope="session")
def saved_models(tiny_models, spm_model_path, tmp_path_factory):
    """Every model kind exported once as a SavedModel with all signatures and a warmup file."""
    from albert_keras.export.saved_model import export_saved_model

    root = tmp_path_factory.mktemp("saved_models")
    paths = {}
    for kind, model in tiny_models.items():
        paths[kind] = export_saved_model(model, str(root / kind / "1"), spm_model=spm_model_path)
    return paths


def run_python(code, timeout=300):
    """Run `code` in a fresh Python (this venv) and return its stdout; fail with its stderr."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, env=env
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return result.stdout


def serve_raw_texts_in_fresh_process(export_dir, signature, texts, tmp_path):
    """Outputs of `signature` for `texts` (str or bytes, invalid UTF-8 kept) in a fresh process with
    only tensorflow and tensorflow_text; an empty batch must give empty outputs there too."""
    import textwrap

    import numpy as np

    inputs = tmp_path / "texts.npy"  # bytes, so invalid UTF-8 travels as it is
    np.save(inputs, np.array(texts, dtype=object), allow_pickle=True)
    out = tmp_path / "out.npz"
    run_python(textwrap.dedent(f"""
        import sys
        import numpy as np
        import tensorflow as tf
        import tensorflow_text  # registers the SentencePiece and normalization ops
        assert "albert_keras" not in sys.modules
        serve = tf.saved_model.load({str(export_dir)!r}).signatures[{signature!r}]
        result = serve(text=tf.constant(list(np.load({str(inputs)!r}, allow_pickle=True))))
        empty = serve(text=tf.constant([], tf.string))
        assert all(v.shape[0] == 0 for v in empty.values()), empty
        np.savez({str(out)!r}, **{{k: v.numpy() for k, v in result.items()}})
    """))
    got = np.load(out, allow_pickle=True)
    return {key: got[key] for key in got.files}
