"""The folded SentencePiece model: ALBERT's normalization as the model's own rules gives training's ids,
in Python's SentencePiece, in tensorflow-text and inside a TFLite model."""

import numpy as np
import pytest
import sentencepiece
import tensorflow as tf

from albert_keras.export.albert_spm import FOLDED_NAME
from albert_keras.export.albert_spm import folded_spm_model
from albert_keras.export.albert_spm import folding_rules
from albert_keras.tokenization import encode_for_albert
from albert_keras.tokenization import load_sentencepiece
from albert_keras.tokenization.sentencepiece import preprocess_text
from tests.tokenization.test_sentencepiece import HARD_STRINGS


@pytest.fixture(scope="session")
def spm_proto(spm_model_path):
    with open(spm_model_path, "rb") as f:
        return f.read()


@pytest.fixture(scope="session")
def folded_proto(spm_proto):
    return folded_spm_model(spm_proto)


@pytest.fixture(scope="session")
def all_texts(corpus_sentences):
    return list(corpus_sentences) + HARD_STRINGS


def test_folded_model_keeps_pieces_and_scores(spm_proto, folded_proto):
    original = sentencepiece.SentencePieceProcessor(model_proto=spm_proto)
    folded = sentencepiece.SentencePieceProcessor(model_proto=folded_proto)
    assert folded.get_piece_size() == original.get_piece_size()
    for i in range(original.get_piece_size()):
        assert folded.id_to_piece(i) == original.id_to_piece(i)
        assert folded.get_score(i) == original.get_score(i)
        assert folded.is_control(i) == original.is_control(i)
    assert FOLDED_NAME.encode() in folded_proto
    # Cached: a second export does not rebuild the table.
    assert folded_spm_model(spm_proto) is folded_proto


@pytest.mark.parametrize("lowercase", [True, False], ids=["uncased", "cased"])
def test_folded_model_ids_equal_preprocess_then_encode(spm_proto, all_texts, lowercase):
    """Every corpus sentence and every hard string: the folded model alone gives the ids of
    `preprocess_text` + the original model (before the digit-comma rewrite, which works on ids)."""
    original = sentencepiece.SentencePieceProcessor(model_proto=spm_proto)
    folded = sentencepiece.SentencePieceProcessor(model_proto=folded_spm_model(spm_proto, lowercase=lowercase))
    differ = [t for t in all_texts if folded.encode(t) != original.encode(preprocess_text(t, lowercase))]
    assert differ == []


def test_rules_cover_quotes_accents_case_and_final_sigma(spm_proto):
    rules = folding_rules(spm_proto)
    assert rules["``"] == rules["''"] == '"'
    assert rules["É"] == "e" and rules["\u0301"] == ""
    assert rules["\u03a3"] == "\u03c2" and rules["\u03a3\u0391"] == "\u03c3\u03b1"
    cased = folding_rules(spm_proto, lowercase=False)
    assert "A" not in cased and cased["É"] == "E"


def test_tensorflow_text_and_tflite_tokenizer_give_training_ids(tiny_models, spm_model_path, all_texts):
    """The tokenizer-inside TFLite model (tensorflow-text ops only) packs the same ids as
    `encode_for_albert` (official normalization + digit-comma rewrite) on every text."""
    from albert_keras.export.tflite import convert_model
    from albert_keras.export.tflite import interpreter

    sp = load_sentencepiece(spm_model_path)
    model = tiny_models["token_classifier"]  # its outputs include the packed token ids
    tflite_bytes, packer = convert_model(model, spm_model=spm_model_path, with_tokenizer=True)
    texts = np.array([t.encode("utf-8") for t in all_texts], dtype=object)
    outputs = interpreter(tflite_bytes).get_signature_runner()(text=texts)
    in_graph = packer(tf.constant(texts))
    width = packer.sequence_length - 2
    differ = []
    for row, text in enumerate(all_texts):
        want = encode_for_albert(sp, text)[:width]
        length = int(outputs["padding_mask"][row].sum())
        got = list(outputs["token_ids"][row, 1 : length - 1])
        graph_length = int(in_graph["padding_mask"][row].numpy().sum())
        if got != want or list(in_graph["token_ids"][row, 1 : graph_length - 1].numpy()) != want:
            differ.append(text)
    assert differ == []


def test_precompiled_charsmap_reads_the_models_table(spm_proto, folded_proto):
    from albert_keras.export.albert_spm import precompiled_charsmap

    original = precompiled_charsmap(spm_proto)
    folded = precompiled_charsmap(folded_proto)
    # The trainer's default nmt_nfkc table is tens of kilobytes; folding replaces it.
    assert original and len(original) > 10_000
    assert folded and folded != original
    assert precompiled_charsmap(b"") is None
