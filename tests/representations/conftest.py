"""Tiny pretrained directories shared by the representation tests (built once per session)."""

import pytest

# Dropout on: unsupervised SimCSE has no other noise.
TINY = dict(
    vocab_size=1000, embedding_size=16, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
    intermediate_size=64, max_position_embeddings=64, hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1,
)


def _pretrainer_dir(path, spm_model_path, seed):
    import keras

    from albert_keras.config import AlbertConfig
    from albert_keras.modeling.encoder import AlbertEncoder
    from albert_keras.modeling.pretrained import save_pretrained
    from albert_keras.modeling.pretrainer import AlbertPretrainer

    keras.utils.set_random_seed(seed)
    save_pretrained(AlbertPretrainer(AlbertEncoder(AlbertConfig(**TINY))), str(path), spm_model=str(spm_model_path),
                    tokenizer_settings={"lowercase": True, "sequence_length": 32})
    return str(path)


@pytest.fixture(scope="session")
def pretrainer_dir(spm_model_path, tmp_path_factory):
    """A randomly initialized tiny `AlbertPretrainer` directory with spiece.model (sequence length 32)."""
    return _pretrainer_dir(tmp_path_factory.mktemp("rep") / "pretrainer", spm_model_path, seed=0)


@pytest.fixture(scope="session")
def other_pretrainer_dir(spm_model_path, tmp_path_factory):
    """The same architecture with other weights (seed 1)."""
    return _pretrainer_dir(tmp_path_factory.mktemp("rep") / "other", spm_model_path, seed=1)


@pytest.fixture(scope="session")
def encoder_dir(pretrainer_dir, tmp_path_factory):
    """The pretrainer's encoder alone (no MLM head)."""
    from albert_keras.modeling.pretrained import load_encoder
    from albert_keras.modeling.pretrained import save_pretrained

    path = str(tmp_path_factory.mktemp("rep") / "encoder")
    save_pretrained(load_encoder(pretrainer_dir), path, spm_model=f"{pretrainer_dir}/spiece.model",
                    tokenizer_settings={"lowercase": True, "sequence_length": 32})
    return path


@pytest.fixture(scope="session")
def corpus_sentences():
    from albert_keras.corpus import embedded_corpus

    return [sentence for document in embedded_corpus() for sentence in document]


def run_cli(*argv):
    """`albert-keras argv...` in this process: (exit code, stdout, stderr)."""
    import contextlib
    import io

    from albert_keras.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()
