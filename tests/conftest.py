"""Shared pytest fixtures. Append new fixtures below; keep existing ones unchanged."""

import pytest

# Vocabulary size of the shared tiny SentencePiece model (the 5 special pieces included).
SPM_VOCAB_SIZE = 1000


@pytest.fixture(scope="session")
def embedded_corpus_path(tmp_path_factory):
    """The embedded corpus as a text file: one sentence per line, blank lines between documents."""
    from albert_keras.corpus import write_embedded_corpus

    return write_embedded_corpus(tmp_path_factory.mktemp("corpus") / "embedded_corpus.txt")


@pytest.fixture(scope="session")
def spm_model_path(embedded_corpus_path, tmp_path_factory):
    """A real unigram SentencePiece model with ALBERT's ids (vocab `SPM_VOCAB_SIZE`, lowercased),
    trained once per session on the embedded corpus (about a second)."""
    from albert_keras.tokenization import train_sentencepiece

    path = tmp_path_factory.mktemp("spm") / "spiece.model"
    return train_sentencepiece(embedded_corpus_path, path, vocab_size=SPM_VOCAB_SIZE)


@pytest.fixture(scope="session")
def finetune_init_dir(spm_model_path, tmp_path_factory):
    """A tiny randomly initialized ALBERT as a pretrained directory with the shared spiece.model:
    what the fine-tuning tests start from (rule-made data is learnable from scratch)."""
    from albert_keras.config import AlbertConfig
    from albert_keras.modeling import AlbertEncoder
    from albert_keras.modeling import save_pretrained

    config = AlbertConfig(vocab_size=SPM_VOCAB_SIZE, embedding_size=16, hidden_size=32, num_hidden_layers=2,
                          num_attention_heads=2, intermediate_size=64, max_position_embeddings=64,
                          hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                          # Wider than the official 0.02: at this width, words then reach [CLS]
                          # through attention from the start, and the rule-made tasks are learned
                          # in a few dozen steps instead of sitting at chance for hundreds.
                          initializer_range=0.1)
    directory = tmp_path_factory.mktemp("finetune_init") / "tiny"
    import keras

    keras.utils.set_random_seed(0)  # the same weights whichever test builds the fixture first
    save_pretrained(AlbertEncoder(config), directory, spm_model=str(spm_model_path))
    return str(directory)
