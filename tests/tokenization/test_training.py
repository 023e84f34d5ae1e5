import os

import pytest

from albert_keras import tokenization
from albert_keras.corpus import embedded_corpus
from albert_keras.errors import AlbertInputError
from albert_keras.tokenization import (
    CLS_ID,
    MASK_ID,
    PAD_ID,
    SEP_ID,
    SPECIAL_PIECES,
    UNK_ID,
    load_sentencepiece,
    sentencepiece_checksum,
    train_sentencepiece,
)


def test_spm_model_has_albert_ids(spm_model_path):
    sp = load_sentencepiece(spm_model_path)
    assert [sp.id_to_piece(i) for i in range(5)] == list(SPECIAL_PIECES)
    assert (PAD_ID, UNK_ID, CLS_ID, SEP_ID, MASK_ID) == (0, 1, 2, 3, 4)
    assert sp.get_piece_size() == 1000
    # Official user-defined symbols follow at 5-12; control symbols never come out of text.
    assert [sp.id_to_piece(i) for i in range(5, 13)] == list(tokenization.OFFICIAL_USER_DEFINED_SYMBOLS)
    assert sp.is_control(CLS_ID) and sp.is_control(SEP_ID) and sp.is_control(MASK_ID)
    ids = sp.encode_as_ids("[CLS] a [SEP] b [MASK]")
    assert CLS_ID not in ids and SEP_ID not in ids and MASK_ID not in ids
    vocab_file = str(spm_model_path)[: -len(".model")] + ".vocab"
    assert open(vocab_file, encoding="utf-8").read().split("\n")[2].split("\t")[0] == "[CLS]"


def test_training_is_deterministic_and_lowercases(tmp_path, embedded_corpus_path, spm_model_path):
    again = train_sentencepiece([embedded_corpus_path], tmp_path / "again.model", vocab_size=1000)
    assert sentencepiece_checksum(again) == sentencepiece_checksum(spm_model_path)
    sp = load_sentencepiece(again)
    pieces = [sp.id_to_piece(i) for i in range(sp.get_piece_size())]
    assert all(p == p.lower() for p in pieces[5:])
    assert "▁the" in pieces


def test_training_from_strings_and_cased(tmp_path):
    from albert_keras.corpus import embedded_corpus

    texts = [s for doc in embedded_corpus()[:20] for s in doc] + ["Über Große Häuser."] * 20
    path = train_sentencepiece(iter(texts), tmp_path / "cased.model", vocab_size=300, lowercase=False)
    sp = load_sentencepiece(path)
    pieces = [sp.id_to_piece(i) for i in range(sp.get_piece_size())]
    assert any(p != p.lower() for p in pieces)  # cased pieces kept
    assert not any(c in "".join(pieces) for c in "Üä")  # accents stripped before training
    assert any("ß" in p for p in pieces)  # "ß" has no decomposition
    assert sorted(os.listdir(tmp_path)) == ["cased.model", "cased.vocab"]


def test_training_errors(tmp_path):
    with pytest.raises(AlbertInputError, match=r"too large for this corpus.*at most \d+ pieces.*--vocab-size"):
        train_sentencepiece(iter(["hello world"] * 10), tmp_path / "a.model", vocab_size=1000)
    with pytest.raises(AlbertInputError, match="no training text"):
        train_sentencepiece(iter(["", "  \t"]), tmp_path / "a.model", vocab_size=100)
    with pytest.raises(AlbertInputError, match="vocab_size 10 does not fit: Vocabulary size is smaller"):
        train_sentencepiece(iter(["hello world"] * 10), tmp_path / "a.model", vocab_size=10)
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"hello\nwor\xffld\n")
    with pytest.raises(AlbertInputError, match=r"bad.txt:2: not valid UTF-8"):
        train_sentencepiece(bad, tmp_path / "a.model", vocab_size=100)
    with pytest.raises(AlbertInputError, match="missing.txt: input file not found"):
        train_sentencepiece(tmp_path / "missing.txt", tmp_path / "a.model", vocab_size=100)
    assert sorted(os.listdir(tmp_path)) == ["bad.txt"]  # nothing half-written


def test_long_lines_are_cut_not_skipped(tmp_path):
    # One document per line, all longer than max_sentence_length: SentencePiece alone would skip
    # every line (and fail for lack of text); they are cut into sentences and word runs instead.
    from albert_keras.tokenization.training import _fit_line

    documents = [" ".join(doc) for doc in embedded_corpus()]
    long_documents = [d for d in documents if len(d.encode("utf-8")) > 300]
    assert len(long_documents) > 50
    one_line = tmp_path / "paragraphs.txt"
    one_line.write_text("\n".join(long_documents) + "\n", encoding="utf-8")
    path = train_sentencepiece(one_line, tmp_path / "long.model", vocab_size=1000, max_sentence_length=300)
    sp = load_sentencepiece(path)
    assert sp.get_piece_size() == 1000 and sp.piece_to_id("▁the") != 1
    for document in long_documents[:10]:
        parts = list(_fit_line(document, 300))
        assert len(parts) > 1 and all(len(p.encode("utf-8")) <= 300 for p in parts)
        assert " ".join(parts).split() == document.split()
    assert list(_fit_line("short line", 300)) == ["short line"]


def test_train_sentencepiece_is_importable_from_tokenization():
    from albert_keras.tokenization import training as tokenization_training

    assert tokenization.train_sentencepiece is tokenization_training.train_sentencepiece


def test_only_giant_words_is_an_input_error(tmp_path):
    with pytest.raises(AlbertInputError, match="no usable training text"):
        train_sentencepiece(iter(["x" * 500] * 5), tmp_path / "giant.model", vocab_size=50, max_sentence_length=100)
