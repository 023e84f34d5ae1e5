"""Shared pytest fixtures. Append new fixtures below; keep existing ones unchanged."""

import pytest

# Vocabulary size of the shared tiny SentencePiece model (the 5 special pieces included).
SPM_VOCAB_SIZE = 1000


@pytest.fixture(scope="session")
def embedded_corpus_path(tmp_path_factory):
    """The embedded corpus as a text file: one sentence per line, blank lines between documents."""
    from albert_keras.data.corpus import write_embedded_corpus

    return write_embedded_corpus(tmp_path_factory.mktemp("corpus") / "embedded_corpus.txt")


@pytest.fixture(scope="session")
def spm_model_path(embedded_corpus_path, tmp_path_factory):
    """A real unigram SentencePiece model with ALBERT's ids (vocab `SPM_VOCAB_SIZE`, lowercased),
    trained once per session on the embedded corpus (about a second)."""
    from albert_keras.tokenization import train_sentencepiece

    path = tmp_path_factory.mktemp("spm") / "spiece.model"
    return train_sentencepiece(embedded_corpus_path, path, vocab_size=SPM_VOCAB_SIZE)
